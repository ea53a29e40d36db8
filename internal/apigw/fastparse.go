package apigw

import (
	"bytes"
	"encoding/base64"
	"math"
	"net/http"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// parseFast reads the common shape of a function's answer in one pass over
// the payload, without encoding/json. It returns nil ("not mine") for
// anything outside the subset below, and then parseSlow decides, errors
// included; it never fails on its own. When it returns a response, that
// response is the one parseSlow would return (FuzzFastParseV1, V2 and
// Fields check it).
//
// The subset:
//   - JSON whitespace (space, tab, CR, LF) around one top-level object
//     (other Unicode space, which bytes.TrimSpace also trims: slow path);
//   - keys spelt without escapes, only statusCode (required), headers,
//     multiValueHeaders, body, isBase64Encoded and cookies, each at most
//     once; any other key or a repeated one: slow path;
//   - statusCode: three digits from 200 to 599, no sign, fraction or
//     exponent;
//   - headers: null or an object of string or null values;
//     multiValueHeaders: null or an object of null or arrays of string or
//     null; a name repeated within either object: slow path;
//   - cookies: null or an array of strings (checked but unused in 1.0);
//   - body: null or a string; isBase64Encoded: true, false or null;
//   - at most maxFastSpans strings (header names, values and cookies),
//     maxFastHeaders headers and maxFastMulti multiValueHeaders members.
//
// Strings are unquoted as encoding/json does: the JSON escapes, \u pairs,
// and U+FFFD for invalid UTF-8 and lone surrogates; a raw control byte or a
// bad escape is invalid JSON (slow path). A failed header name or value
// check, or a body that is not valid base64, goes to the slow path for its
// error. The payload is never aliased: header strings share one allocation
// and the body has its own.
func parseFast(payload []byte, v2 bool) *Response {
	if len(payload) > math.MaxInt32 {
		return nil
	}
	// On the stack: every list has a fixed room, and more is not mine.
	var s fastScan
	s.b = payload
	if !s.scan() {
		return nil
	}
	return s.build(v2)
}

// fspan is a JSON string in the payload: its content (quotes excluded) is
// b[start:end], n bytes once unquoted; plain means unquoting changes
// nothing. off is where build put it in the arena.
type fspan struct {
	start, end, n, off int32
	plain              bool
}

// fhdr is a headers member (val indexes spans) or, when multi, a
// multiValueHeaders member whose items are spans[val:to].
type fhdr struct {
	name, val, to int32
	null          bool
	key           string // the unquoted name, set by build
}

type fastScan struct {
	b []byte
	i int

	seen   uint8 // key bits
	status int
	body   fspan
	// cookies are spans[cookieFrom:cookieTo]
	cookieFrom, cookieTo  int32
	hasBody, base64       bool
	nspans, nhdrs, nmulti int32
	spans                 [maxFastSpans]fspan
	hdrs                  [maxFastHeaders]fhdr // headers
	multi                 [maxFastMulti]fhdr   // multiValueHeaders
}

const (
	keyStatus = 1 << iota
	keyHeaders
	keyMulti
	keyBody
	keyBase64
	keyCookies
)

// The room in fastScan, which also bounds the insertion sorts in build: a
// typical answer has a few headers.
const (
	maxFastSpans   = 96 // header names and values, cookies
	maxFastHeaders = 48
	maxFastMulti   = 16
)

func (s *fastScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips whitespace and reports whether the next byte is c, consuming
// it if so.
func (s *fastScan) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *fastScan) literal(word string) bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		s.i += len(word)
		return true
	}
	return false
}

func (s *fastScan) scan() bool {
	if !s.next('{') {
		return false
	}
	for {
		s.ws()
		sp, ok := s.str()
		if !ok || !sp.plain || !s.next(':') {
			return false
		}
		var bit uint8
		switch string(s.b[sp.start:sp.end]) {
		case "statusCode":
			bit, ok = keyStatus, s.statusCode()
		case "headers":
			bit, ok = keyHeaders, s.headers(false)
		case "multiValueHeaders":
			bit, ok = keyMulti, s.headers(true)
		case "body":
			bit = keyBody
			if !s.literal("null") {
				s.body, ok = s.str()
				s.hasBody = true
			}
		case "isBase64Encoded":
			bit = keyBase64
			switch {
			case s.literal("true"):
				s.base64 = true
			case s.literal("false"), s.literal("null"):
			default:
				ok = false
			}
		case "cookies":
			bit, ok = keyCookies, s.cookies()
		default:
			return false
		}
		if !ok || s.seen&bit != 0 {
			return false
		}
		s.seen |= bit
		if s.next('}') {
			break
		}
		if !s.next(',') {
			return false
		}
	}
	s.ws()
	return s.i == len(s.b) && s.seen&keyStatus != 0
}

func (s *fastScan) statusCode() bool {
	s.ws()
	b := s.b[s.i:]
	if len(b) < 3 || b[0] < '2' || b[0] > '5' || !isDigit(b[1]) || !isDigit(b[2]) || len(b) > 3 && isDigit(b[3]) {
		return false
	}
	s.status = int(b[0]-'0')*100 + int(b[1]-'0')*10 + int(b[2]-'0')
	s.i += 3
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// addStr scans a string and keeps it in spans.
func (s *fastScan) addStr() bool {
	s.ws()
	sp, ok := s.str()
	if !ok || s.nspans == maxFastSpans {
		return false
	}
	s.spans[s.nspans] = sp
	s.nspans++
	return true
}

// headers scans headers (an object of strings) or, if multi,
// multiValueHeaders (an object of string arrays); either may be null, and
// so may a member's value or an array's item.
func (s *fastScan) headers(multi bool) bool {
	if s.literal("null") {
		return true
	}
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		h := fhdr{name: s.nspans}
		if !s.addStr() || !s.next(':') {
			return false
		}
		h.val = s.nspans
		switch {
		case s.literal("null"):
			h.null = true
		case !multi:
			if !s.addStr() {
				return false
			}
		default:
			if !s.array() {
				return false
			}
		}
		h.to = s.nspans
		switch {
		case multi && s.nmulti < maxFastMulti:
			s.multi[s.nmulti] = h
			s.nmulti++
		case !multi && s.nhdrs < maxFastHeaders:
			s.hdrs[s.nhdrs] = h
			s.nhdrs++
		default:
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// array scans an array of strings and nulls into spans, nulls dropped.
func (s *fastScan) array() bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !s.literal("null") && !s.addStr() {
			return false
		}
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// cookies scans null or an array of strings (a null item, which
// encoding/json reads as "", is left to the slow path).
func (s *fastScan) cookies() bool {
	if s.literal("null") {
		return true
	}
	s.cookieFrom = s.nspans
	if !s.next('[') {
		return false
	}
	if !s.next(']') {
		for {
			if !s.addStr() {
				return false
			}
			if s.next(']') {
				break
			}
			if !s.next(',') {
				return false
			}
		}
	}
	s.cookieTo = s.nspans
	return true
}

// str scans the JSON string at s.i, checking it as encoding/json's scanner
// does and measuring it as its unquote would write it.
func (s *fastScan) str() (fspan, bool) {
	b, i := s.b, s.i
	if i >= len(b) || b[i] != '"' {
		return fspan{}, false
	}
	i++
	sp := fspan{start: int32(i), plain: true}
	n := 0
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			sp.end, sp.n = int32(i), int32(n)
			s.i = i + 1
			return sp, true
		case c < ' ':
			return fspan{}, false
		case c == '\\':
			sp.plain = false
			if i+1 >= len(b) {
				return fspan{}, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				n++
				i += 2
			case 'u':
				rr := getu4(b[i:])
				if rr < 0 {
					return fspan{}, false
				}
				i += 6
				if utf16.IsSurrogate(rr) {
					// A pair, or U+FFFD for the first half and the
					// next escape read on its own.
					if dec := utf16.DecodeRune(rr, getu4(b[i:])); dec != unicode.ReplacementChar {
						n += utf8.RuneLen(dec)
						i += 6
						continue
					}
					rr = unicode.ReplacementChar
				}
				n += utf8.RuneLen(rr)
			default:
				return fspan{}, false
			}
		case c < utf8.RuneSelf:
			n++
			i++
		default:
			// The closing quote is not a continuation byte, so decoding
			// past it reads what decoding up to it would.
			rr, size := utf8.DecodeRune(b[i:])
			if rr == utf8.RuneError && size == 1 {
				sp.plain = false
				n += utf8.RuneLen(utf8.RuneError)
			} else {
				n += size
			}
			i += size
		}
	}
	return fspan{}, false
}

// getu4 decodes \uXXXX at the start of s, or returns -1 (encoding/json's).
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendUnquoted appends the content of a string str has checked, unquoted
// as encoding/json's unquoteBytes does.
func appendUnquoted(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch s[r+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, dec)
						r += 6
						continue
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // " \ /
				dst = append(dst, s[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}

// appendSpan appends sp's unquoted content.
func (s *fastScan) appendSpan(dst []byte, sp fspan) []byte {
	if sp.plain {
		return append(dst, s.b[sp.start:sp.end]...)
	}
	return appendUnquoted(dst, s.b[sp.start:sp.end])
}

// build applies parseSlow's rules to what scan found, or returns nil where
// parseSlow would fail.
func (s *fastScan) build(v2 bool) *Response {
	// Every header name, value and cookie, unquoted into one string.
	spans := s.spans[:s.nspans]
	total := 0
	for _, sp := range spans {
		total += int(sp.n)
	}
	var arena string
	if total > 0 {
		buf := make([]byte, 0, total)
		for k := range spans {
			spans[k].off = int32(len(buf))
			buf = s.appendSpan(buf, spans[k])
		}
		if len(buf) != total {
			return nil // a measuring bug; the slow path is right
		}
		// buf is never written again.
		arena = unsafe.String(unsafe.SliceData(buf), len(buf))
	}
	str := func(k int32) string {
		sp := spans[k]
		return arena[sp.off : sp.off+sp.n]
	}
	hdrs, multi := s.hdrs[:s.nhdrs], s.multi[:s.nmulti]
	if !sortHeaders(hdrs, str) || !sortHeaders(multi, str) {
		return nil
	}

	nvals := 0
	for _, h := range hdrs {
		if !h.null {
			nvals++
		}
	}
	h := make(http.Header, nvals+len(multi)+1)
	vals := make([]string, nvals)
	for _, hd := range hdrs {
		if hd.null {
			continue
		}
		v := str(hd.val)
		if !validName(hd.key) || !validValue(v) {
			return nil
		}
		vals[0] = v
		h[http.CanonicalHeaderKey(hd.key)] = vals[:1:1]
		vals = vals[1:]
	}

	// multiValueHeaders replaces what headers set, once per canonical name.
	var replaced [maxFastMulti]string
	nreplaced := 0
	for _, m := range multi {
		if m.null {
			continue
		}
		if !validName(m.key) {
			return nil
		}
		key := http.CanonicalHeaderKey(m.key)
		seen := false
		for _, r := range replaced[:nreplaced] {
			if r == key {
				seen = true
				break
			}
		}
		if !seen {
			replaced[nreplaced] = key
			nreplaced++
			delete(h, key)
		}
		for k := m.val; k < m.to; k++ {
			v := str(k)
			if !validValue(v) {
				return nil
			}
			h[key] = append(h[key], v)
		}
	}

	if v2 && s.cookieTo > s.cookieFrom {
		old := h["Set-Cookie"]
		set := make([]string, len(old), len(old)+int(s.cookieTo-s.cookieFrom))
		copy(set, old)
		for k := s.cookieFrom; k < s.cookieTo; k++ {
			v := str(k)
			if !validValue(v) {
				return nil
			}
			set = append(set, v)
		}
		h["Set-Cookie"] = set
	}
	dropHopByHop(h)

	resp := &Response{Status: s.status, Header: h}
	switch {
	case s.base64:
		src := s.b[s.body.start:s.body.end]
		if !s.hasBody {
			src = nil
		} else if !s.body.plain {
			src = appendUnquoted(make([]byte, 0, s.body.n), src)
		}
		body := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
		n, err := base64.StdEncoding.Decode(body, src)
		if err != nil {
			return nil
		}
		resp.Body = body[:n]
	case s.hasBody && s.body.n > 0 && bodyAllowed(s.status):
		resp.Body = s.appendSpan(make([]byte, 0, s.body.n), s.body)
	}
	if !bodyAllowed(s.status) {
		resp.Body = nil
	}
	return resp
}

// sortHeaders sorts members by unquoted name, as parseSlow's sortedKeys
// does, so that names equal but for case resolve the same way. A name given
// twice (a map keeps the last) is refused.
func sortHeaders(hs []fhdr, str func(int32) string) bool {
	for k := range hs {
		hs[k].key = str(hs[k].name)
	}
	for k := 1; k < len(hs); k++ {
		for j := k; j > 0 && hs[j].key < hs[j-1].key; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
	for k := 1; k < len(hs); k++ {
		if hs[k].key == hs[k-1].key {
			return false
		}
	}
	return true
}
