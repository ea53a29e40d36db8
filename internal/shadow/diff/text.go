package diff

import (
	"bytes"
	"strconv"
)

// maxLines is the most differing lines one text comparison lists; past
// them the rest of the body says little more.
const maxLines = 20

// text compares two text bodies line by line. The lines both share at
// the start and at the end are set aside first, so that one inserted or
// removed line is one difference, not a shift of every line after it;
// the lines between are compared index by index. Lines are read in
// place, never split into a list, so a body of a million short lines
// costs no more memory than one line.
func (c *comparison) text(a, b []byte) {
	a, b = trimFinalNewline(a), trimFinalNewline(b)
	// Common leading lines.
	pre, line := 0, 0
	for {
		la, ra, oka := cutLine(a)
		lb, rb, okb := cutLine(b)
		if !bytes.Equal(la, lb) || !oka || !okb {
			break
		}
		a, b, line = ra, rb, line+1
		pre = line
	}
	// Common trailing lines: a and b now start at the first line that may
	// differ.
	for len(a) > 0 && len(b) > 0 {
		la, ra, oka := cutLastLine(a)
		lb, rb, okb := cutLastLine(b)
		if !bytes.Equal(la, lb) || !oka || !okb {
			break
		}
		a, b = ra, rb
	}
	n := 0
	report := func(line int, kind string, x, y []byte) bool {
		n++
		if n > maxLines {
			c.add("...", KindMore, "", "")
			c.full = true
			return false
		}
		return c.add(lineAt(line), kind, short(x), short(y))
	}
	i := pre
	hasA, hasB := true, true
	for {
		var la, lb []byte
		if hasA {
			la, a, hasA = cutLine(a)
		}
		if hasB {
			lb, b, hasB = cutLine(b)
		}
		switch {
		case !hasA && !hasB:
			return
		case !hasB:
			if !report(i, KindMissing, la, nil) {
				return
			}
		case !hasA:
			if !report(i, KindAdded, nil, lb) {
				return
			}
		case !bytes.Equal(la, lb):
			if !report(i, KindChanged, la, lb) {
				return
			}
		}
		i++
	}
}

func lineAt(i int) string { return "body:line " + strconv.Itoa(i+1) }

// trimFinalNewline drops the newline that ends the last line. Below, a
// nil body has no lines left, an empty one a single empty line.
func trimFinalNewline(b []byte) []byte {
	if b == nil {
		b = []byte{}
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// cutLine cuts the first line off b, without its "\n" or "\r\n". ok is
// false when b has no lines left (nil).
func cutLine(b []byte) (line, rest []byte, ok bool) {
	if b == nil {
		return nil, nil, false
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.TrimSuffix(b, []byte("\r")), nil, true
	}
	return bytes.TrimSuffix(b[:i], []byte("\r")), b[i+1:], true
}

// cutLastLine cuts the last line off b. rest is nil when the line was the
// only one.
func cutLastLine(b []byte) (line, rest []byte, ok bool) {
	if b == nil {
		return nil, nil, false
	}
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 {
		return bytes.TrimSuffix(b, []byte("\r")), nil, true
	}
	return bytes.TrimSuffix(b[i+1:], []byte("\r")), b[:i], true
}
