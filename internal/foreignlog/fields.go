package foreignlog

import (
	"bytes"
	"time"
)

// Allocation-light field helpers shared by the parsers. They work on byte
// slices of the current line and turn into strings only what an
// Observation keeps.

// parseUint parses a non-negative decimal integer of at most 18 digits.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseStatus parses a three-digit HTTP status; "000" (CloudFront: the
// viewer went away before a response) gives 0.
func parseStatus(b []byte) (int, bool) {
	if len(b) != 3 {
		return 0, false
	}
	n, ok := parseUint(b)
	if !ok || (n != 0 && n < 100) {
		return 0, false
	}
	return int(n), true
}

// parseSeconds parses a non-negative decimal number of seconds such as
// "0.082" or "12" into a Duration, exact to the nanosecond, without going
// through float64. Anything beyond nine fractional digits is ignored.
func parseSeconds(b []byte) (time.Duration, bool) {
	if len(b) == 0 {
		return 0, false
	}
	intPart, frac := b, []byte(nil)
	if i := bytes.IndexByte(b, '.'); i >= 0 {
		intPart, frac = b[:i], b[i+1:]
		if len(frac) == 0 {
			return 0, false
		}
	}
	if len(intPart) == 0 || len(intPart) > 9 { // > 31 years is not a request
		return 0, false
	}
	secs, ok := parseUint(intPart)
	if !ok {
		return 0, false
	}
	var ns int64
	scale := int64(100_000_000)
	for i, c := range frac {
		if c < '0' || c > '9' {
			return 0, false
		}
		if i < 9 {
			ns += int64(c-'0') * scale
			scale /= 10
		}
	}
	return time.Duration(secs)*time.Second + time.Duration(ns), true
}

// digits2 parses exactly two ASCII digits.
func digits2(b []byte) (int, bool) {
	if len(b) != 2 || b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// parseDate parses "YYYY-MM-DD".
func parseDate(b []byte) (y, m, d int, ok bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, 0, 0, false
	}
	hi, ok1 := digits2(b[0:2])
	lo, ok2 := digits2(b[2:4])
	m, ok3 := digits2(b[5:7])
	d, ok4 := digits2(b[8:10])
	if !(ok1 && ok2 && ok3 && ok4) || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, 0, 0, false
	}
	return hi*100 + lo, m, d, true
}

// parseClock parses "HH:MM:SS".
func parseClock(b []byte) (h, m, s int, ok bool) {
	if len(b) != 8 || b[2] != ':' || b[5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digits2(b[0:2])
	m, ok2 := digits2(b[3:5])
	s, ok3 := digits2(b[6:8])
	if !(ok1 && ok2 && ok3) || h > 23 || m > 59 || s > 60 {
		return 0, 0, 0, false
	}
	return h, m, s, true
}

// dayCache remembers the last calendar day parsed: log lines arrive in
// time order, so nearly every line repeats the previous line's date.
type dayCache struct {
	key [10]byte
	day time.Time
	ok  bool
}

// at returns the UTC instant of date ("YYYY-MM-DD") and clock.
func (c *dayCache) at(date []byte, h, m, s, ns int) (time.Time, bool) {
	if !c.ok || !bytes.Equal(c.key[:], date) {
		y, mo, d, ok := parseDate(date)
		if !ok {
			return time.Time{}, false
		}
		c.day = time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
		if c.day.Day() != d { // 2021-02-30 normalises to March
			c.ok = false
			return time.Time{}, false
		}
		copy(c.key[:], date)
		c.ok = true
	}
	return c.day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(ns)), true
}

// interner turns small, highly repetitive fields (hosts, targets) into
// strings without allocating for the ones seen before. It stops growing at
// max entries so a log of unique values cannot grow it without bound.
type interner struct {
	m   map[string]string
	max int
}

func newInterner(max int) *interner {
	return &interner{m: make(map[string]string), max: max}
}

func (in *interner) get(b []byte) string {
	if s, ok := in.m[string(b)]; ok { // no allocation: map lookup by []byte
		return s
	}
	s := string(b)
	if len(in.m) < in.max {
		in.m[s] = s
	}
	return s
}

// method returns the request method as a string, without allocating for
// the common ones. A method must be an HTTP token of at most 32 bytes.
func method(b []byte) (string, bool) {
	switch string(b) {
	case "GET":
		return "GET", true
	case "POST":
		return "POST", true
	case "PUT":
		return "PUT", true
	case "DELETE":
		return "DELETE", true
	case "PATCH":
		return "PATCH", true
	case "HEAD":
		return "HEAD", true
	case "OPTIONS":
		return "OPTIONS", true
	}
	if len(b) == 0 || len(b) > 32 {
		return "", false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return "", false
		}
	}
	return string(b), true
}

// isTokenChar reports an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// validPath reports a request path the parsers accept: origin-form
// ("/..."), or "*" for OPTIONS, with no control bytes, spaces or '?'.
func validPath(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	if p[0] != '/' && !(len(p) == 1 && p[0] == '*') {
		return false
	}
	for _, c := range p {
		if c <= ' ' || c == 0x7f || c == '?' {
			return false
		}
	}
	return true
}

// validQuery reports a raw query with no control bytes or spaces.
func validQuery(q []byte) bool {
	for _, c := range q {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// splitTarget splits a request-target into path and raw query. An
// absolute-form target ("http://host:port/p?q", as ALB logs it and as a
// proxy client may send it to nginx) also yields its authority.
func splitTarget(t []byte) (authority, path, query []byte) {
	if i := bytes.Index(t, []byte("://")); i > 0 && t[0] != '/' {
		rest := t[i+3:]
		j := bytes.IndexAny(rest, "/?")
		if j < 0 {
			return rest, []byte("/"), nil
		}
		authority, t = rest[:j], rest[j:]
		if t[0] == '?' {
			return authority, []byte("/"), t[1:]
		}
	}
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		return authority, t[:i], t[i+1:]
	}
	return authority, t, nil
}

// hostOf strips a default port (80 for http/ws, 443 for https/wss/h2/grpcs)
// from an authority, as a browser would have left it out of Host.
func hostOf(authority []byte, scheme []byte) []byte {
	i := bytes.LastIndexByte(authority, ':')
	if i < 0 || bytes.IndexByte(authority[i:], ']') >= 0 {
		return authority
	}
	port := authority[i+1:]
	switch string(scheme) {
	case "http", "ws":
		if string(port) == "80" {
			return authority[:i]
		}
	case "https", "wss":
		if string(port) == "443" {
			return authority[:i]
		}
	}
	return authority
}

// unhex is the value of a hex digit, or -1.
func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// percentDecode undoes one level of %XX escaping into dst. It reports
// false on a malformed escape, leaving the caller to keep the raw bytes.
func percentDecode(dst, src []byte) ([]byte, bool) {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '%' {
			if i+2 >= len(src) {
				return dst, false
			}
			h, l := unhex(src[i+1]), unhex(src[i+2])
			if h < 0 || l < 0 {
				return dst, false
			}
			c = byte(h<<4 | l)
			i += 2
		}
		dst = append(dst, c)
	}
	return dst, true
}
