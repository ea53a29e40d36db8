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
// the lines between are compared index by index.
func (c *comparison) text(a, b []byte) {
	la, lb := lines(a), lines(b)
	pre := 0
	for pre < len(la) && pre < len(lb) && bytes.Equal(la[pre], lb[pre]) {
		pre++
	}
	suf := 0
	for suf < len(la)-pre && suf < len(lb)-pre && bytes.Equal(la[len(la)-1-suf], lb[len(lb)-1-suf]) {
		suf++
	}
	ma, mb := la[pre:len(la)-suf], lb[pre:len(lb)-suf]
	n := 0
	more := func() bool {
		n++
		if n > maxLines {
			c.add("...", KindMore, "", "")
			c.full = true
			return false
		}
		return true
	}
	i := 0
	for ; i < len(ma) && i < len(mb); i++ {
		if bytes.Equal(ma[i], mb[i]) {
			continue
		}
		if !more() || !c.add(lineAt(pre+i), KindChanged, short(ma[i]), short(mb[i])) {
			return
		}
	}
	for j := i; j < len(ma); j++ {
		if !more() || !c.add(lineAt(pre+j), KindMissing, short(ma[j]), "") {
			return
		}
	}
	for j := i; j < len(mb); j++ {
		if !more() || !c.add(lineAt(pre+j), KindAdded, "", short(mb[j])) {
			return
		}
	}
}

func lineAt(i int) string { return "body:line " + strconv.Itoa(i+1) }

// lines splits a body into lines without their "\n" or "\r\n"; a final
// newline does not start another line.
func lines(b []byte) [][]byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	ls := bytes.Split(b, []byte("\n"))
	for i, l := range ls {
		ls[i] = bytes.TrimSuffix(l, []byte("\r"))
	}
	return ls
}
