// Package h1 is turnout's own HTTP/1.1 server path (issue 20): [Parse]
// reads request heads as RFC 9112 says, strictly, and without allocating
// per request (a [Request] is reused from one request to the next), and
// [Server] serves connections with them, for handlers that cannot tell it
// from net/http's http.Server. It exists because net/http's server
// machinery was half of turnout's CPU distance to nginx (docs/performance.md).
//
// What Server does differently from net/http, invisibly to a handler:
//   - An idle keep-alive connection holds no buffer: it waits for
//     readability through syscall.RawConn, whose callback takes a pooled
//     buffer only for a read that returns bytes. BenchmarkIdleConns
//     measured 5.8–6.4 KB per idle connection (goroutine stack and
//     structs; sockets excluded) against net/http's 22.4–25.5 KB.
//   - A response that fits the pooled 4 KB body buffer leaves with its
//     head in one write, with a Content-Length; a larger or flushed one is
//     chunked (close-delimited for HTTP/1.0), as net/http decides.
//   - No background read per request. The client hanging up still
//     cancels r.Context(): on Linux, a connection whose handler is still
//     running after a sweep period (1–2 ms) has its socket registered,
//     once for the connection's life, with the server's one epoll
//     instance, for the client's close only; a request on it then costs
//     no goroutine, timer or system call for the watch. Elsewhere the
//     handler gets a goroutine that waits for readability with a MSG_PEEK
//     recv (see conn.armWatch).
//   - Beyond what building the *http.Request needs (the head as one
//     string that the header's keys and values slice, the header map and
//     its values, the URL, the Request, its context), the loop allocates
//     nothing. BenchmarkServer (loopback keep-alive GET, 13-byte body, both
//     ends in one process, 2 shared cores, 5 interleaved runs of 20000;
//     go test -run '^$' -bench BenchmarkServer -benchtime 20000x):
//     Server 23.8–31.2 µs, 23.2–25.2 µs CPU, 8 allocs/op (one is the
//     handler's); net/http 29.8–41.9 µs, 28.2–32.1 µs CPU, 13–14 allocs/op.
//
// Where it differs from net/http, deliberately or for now:
//   - Plain connections and HTTP/1.1 only: no TLS handshake of its own,
//     no HTTP/2, no h2c ("PRI * HTTP/2.0" is answered 505).
//   - Parse refuses more than net/http (below); a request line longer
//     than MaxHeaderBytes is 414, a longer head 431. MaxHeaderBytes is the
//     exact limit, where net/http allows 4 KB more.
//   - Empty lines (CRLF) before a request line are skipped, as RFC 9112
//     §2.2 recommends; net/http skips them only after a POST.
//   - r.Context() carries http.LocalAddrContextKey but not
//     http.ServerContextKey (its value must be an *http.Server).
//   - The ResponseWriter and its header map are reused by the next request
//     on the connection: neither may be used after the handler returns (as
//     net/http documents). Header changes after WriteHeader are ignored
//     when the handler asks for Header() again; changes made through a map
//     fetched before WriteHeader still count until the head is sent.
//   - Connections that are not a syscall.Conn (wrappers) work, holding a
//     pooled buffer while idle, watched for the client hanging up with a
//     one-byte read as net/http does. A wrapper that passes SyscallConn
//     through sees no Read call while the connection waits and usually
//     none for a request's head: it must follow requests through
//     ConnState, whose Active comes at a request's first bytes (net/http
//     says Active once the head is read).
//   - Closing a connection with input possibly unread, Server half-closes
//     and reads for up to 500 ms until the client closes (net/http sleeps
//     500 ms), so that the client gets the response before a reset.
//
// The parser refuses everything net/http's http.ReadRequest refuses (a fuzz
// test holds it to that) and more, where accepting would let two parsers
// disagree about where a request ends:
//   - lines end in CRLF only; a bare LF or a bare CR is refused (RFC 9112
//     §2.2), where net/http accepts a bare LF;
//   - one SP between the request line's parts (§3); no empty lines before it;
//   - no obs-fold (§5.2), no whitespace before a field's colon (§5.1);
//   - Content-Length is digits only; repeated, it must repeat the same
//     digits (§6.3 ¶5 allows "equal values"; net/http wants the same bytes);
//   - Transfer-Encoding is exactly "chunked", once, on HTTP/1.1 only, and
//     never with Content-Length (§6.3 ¶3: turnout refuses rather than
//     letting Transfer-Encoding win and closing, as net/http does);
//   - HTTP/1.1 needs exactly one valid Host (§3.2); HTTP/1.0 at most one;
//   - a chunked request may not announce trailers (the Trailer field):
//     net/http refuses some of those, and turnout forwards none.
package h1

import (
	"bytes"
)

// Error is a request head the parser refuses; Status is the answer a server
// gives (400, 414, 417, 431, 501 or 505) before closing the connection.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "h1: " + e.Reason }

// The errors Parse returns. They are values, so that refusing allocates
// nothing either; compare with ==.
var (
	// ErrIncomplete is not a refusal: buf holds no complete head yet and
	// is still under the limit. Read more and call Parse again.
	ErrIncomplete = &Error{0, "incomplete request head"}

	ErrHeadTooLarge       = &Error{431, "request head larger than the limit"}
	ErrURITooLong         = &Error{414, "request line larger than the head limit"}
	ErrLineEnding         = &Error{400, "line not ended by CRLF"}
	ErrRequestLine        = &Error{400, "malformed request line"}
	ErrMethod             = &Error{400, "malformed method"}
	ErrTarget             = &Error{400, "malformed request target"}
	ErrVersion            = &Error{400, "malformed HTTP version"}
	ErrVersionUnsupported = &Error{505, "HTTP version not supported"}
	ErrConnect            = &Error{501, "CONNECT not implemented"}
	ErrFieldLine          = &Error{400, "malformed header field line"}
	ErrObsFold            = &Error{400, "obsolete line folding"}
	ErrFieldName          = &Error{400, "invalid header field name"}
	ErrFieldValue         = &Error{400, "invalid header field value"}
	ErrHost               = &Error{400, "missing, repeated or invalid Host"}
	ErrContentLength      = &Error{400, "invalid or conflicting Content-Length"}
	ErrTransferEncoding   = &Error{400, "invalid Transfer-Encoding"}
	ErrTEUnsupported      = &Error{501, "transfer coding other than chunked"}
	ErrTEAndCL            = &Error{400, "both Transfer-Encoding and Content-Length"}
	ErrTrailer            = &Error{400, "a chunked request announcing trailers"}
	ErrExpect             = &Error{417, "expectation other than 100-continue"}
)

// Field is one header field line; Name and Value point into the parsed
// buffer. Value has no leading or trailing whitespace.
type Field struct {
	Name, Value []byte
}

// Request is a parsed request head. Its byte slices point into the buffer
// given to Parse and are valid until that buffer is reused. Reuse one
// Request per connection: Parse resets it and keeps Fields' capacity.
type Request struct {
	// Method is interned for the methods of RFC 9110 §9 (no allocation);
	// another method costs one allocation.
	Method string
	// Target is the request-target as sent: origin-form ("/p?q"),
	// absolute-form ("http://h/p") or "*" (OPTIONS only).
	Target []byte
	// ProtoMinor is 0 for HTTP/1.0, 1 for HTTP/1.1.
	ProtoMinor int
	// Fields are the header field lines in order, Host and framing
	// fields included.
	Fields []Field

	// Host is the Host field's value; empty when an HTTP/1.0 request
	// has none.
	Host []byte
	// ContentLength is the body's length, -1 when there is no
	// Content-Length (the body is chunked, or there is none).
	ContentLength int64
	// Chunked is true when Transfer-Encoding is chunked.
	Chunked bool
	// Close is true when the connection closes after this request:
	// "Connection: close", or HTTP/1.0 without "Connection: keep-alive"
	// (RFC 9112 §9.3).
	Close bool
	// Expect100 is true for "Expect: 100-continue" (RFC 9110 §10.1.1).
	Expect100 bool
	// HeadLen is the head's length in bytes, the final CRLF included:
	// the body (or the next request) starts at buf[HeadLen].
	HeadLen int
}

// Proto returns "HTTP/1.0" or "HTTP/1.1".
func (r *Request) Proto() string {
	if r.ProtoMinor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

func (r *Request) reset() {
	fields := r.Fields[:0]
	*r = Request{Fields: fields, ContentLength: -1}
}

// Parse parses the request head at the start of buf into r. maxHead is the
// largest head accepted (limits.max_header_bytes), request line included.
// It returns ErrIncomplete when buf holds no complete head yet, and another
// *Error when the head is refused; r is then unspecified.
func Parse(r *Request, buf []byte, maxHead int) error {
	r.reset()
	lineStart := 0
	var fieldErr error
	for {
		nl := bytes.IndexByte(buf[lineStart:], '\n')
		if nl < 0 {
			if len(buf) >= maxHead {
				return tooLarge(lineStart)
			}
			return ErrIncomplete
		}
		end := lineStart + nl // index of '\n'
		if end+1 > maxHead {
			return tooLarge(lineStart)
		}
		if end == lineStart || buf[end-1] != '\r' {
			return ErrLineEnding
		}
		line := buf[lineStart : end-1]
		if bytes.IndexByte(line, '\r') >= 0 {
			return ErrLineEnding
		}
		if lineStart == 0 {
			if err := r.parseRequestLine(line); err != nil {
				return err
			}
		} else if len(line) == 0 {
			r.HeadLen = end + 1
			break
		} else if fieldErr == nil {
			// Keep scanning to the head's end on a bad field only
			// to tell an oversized head (431) from a bad one.
			fieldErr = r.parseField(line)
		}
		lineStart = end + 1
	}
	if fieldErr != nil {
		return fieldErr
	}
	return r.framing()
}

// tooLarge is the error for a head over the limit: 414 when the request
// line alone is (RFC 9112 §3: the target is too long to parse), else 431.
func tooLarge(lineStart int) error {
	if lineStart == 0 {
		return ErrURITooLong
	}
	return ErrHeadTooLarge
}

func (r *Request) parseRequestLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return ErrRequestLine
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return ErrRequestLine
	}
	method, target, version := line[:sp1], rest[:sp2], rest[sp2+1:]
	if len(method) == 0 || !isToken(method) {
		return ErrMethod
	}
	r.Method = internMethod(method)
	switch {
	case string(version) == "HTTP/1.1":
		r.ProtoMinor = 1
	case string(version) == "HTTP/1.0":
		r.ProtoMinor = 0
	case len(version) == 8 && string(version[:5]) == "HTTP/" &&
		isDigit(version[5]) && version[6] == '.' && isDigit(version[7]):
		return ErrVersionUnsupported
	default:
		return ErrVersion
	}
	if r.Method == "CONNECT" {
		return ErrConnect
	}
	if !validTarget(target, r.Method == "OPTIONS") {
		return ErrTarget
	}
	r.Target = target
	return nil
}

// parseField parses one field line (RFC 9112 §5): a token, a colon right
// after it, optional whitespace, the value, optional whitespace.
func (r *Request) parseField(line []byte) error {
	if line[0] == ' ' || line[0] == '\t' {
		return ErrObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return ErrFieldLine
	}
	name := line[:colon]
	if len(name) == 0 || !isToken(name) {
		return ErrFieldName // whitespace before the colon included (§5.1)
	}
	value := trimOWS(line[colon+1:])
	for _, c := range value {
		if !valueByte[c] {
			return ErrFieldValue
		}
	}
	r.Fields = append(r.Fields, Field{name, value})
	return nil
}

// framing reads what the fields say about the connection and the body.
func (r *Request) framing() error {
	hosts, te := 0, 0
	connClose, keepAlive := false, false
	var cl []byte
	for _, f := range r.Fields {
		switch {
		case equalFold(f.Name, "host"):
			hosts++
			if !validHost(f.Value) {
				return ErrHost
			}
			r.Host = f.Value
		case equalFold(f.Name, "content-length"):
			// A repeat must be the same bytes: "5" and "05" are one
			// length, but net/http refuses them, and so do we.
			if cl != nil && !bytes.Equal(f.Value, cl) {
				return ErrContentLength
			}
			n, ok := parseContentLength(f.Value)
			if !ok {
				return ErrContentLength
			}
			cl, r.ContentLength = f.Value, n
		case equalFold(f.Name, "transfer-encoding"):
			te++
			if te > 1 || len(f.Value) == 0 {
				return ErrTransferEncoding
			}
			if !equalFold(f.Value, "chunked") {
				return ErrTEUnsupported
			}
			r.Chunked = true
		case equalFold(f.Name, "connection"):
			connClose = connClose || hasToken(f.Value, "close")
			keepAlive = keepAlive || hasToken(f.Value, "keep-alive")
		case equalFold(f.Name, "expect"):
			if !equalFold(f.Value, "100-continue") || r.Expect100 {
				return ErrExpect
			}
			r.Expect100 = true
		}
	}
	if hosts > 1 || (hosts == 0 && r.ProtoMinor == 1) {
		return ErrHost
	}
	if r.Chunked {
		if r.ProtoMinor == 0 {
			return ErrTransferEncoding // §6.1: a 1.0 recipient cannot know it
		}
		if r.ContentLength >= 0 {
			return ErrTEAndCL
		}
		for _, f := range r.Fields {
			if equalFold(f.Name, "trailer") {
				return ErrTrailer
			}
		}
	}
	r.Close = connClose || (r.ProtoMinor == 0 && !keepAlive)
	return nil
}

// methods are interned so that parsing the common ones allocates nothing.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

func internMethod(b []byte) string {
	for _, m := range methods {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

// validTarget accepts origin-form, absolute-form with an http or https
// scheme, and "*" for OPTIONS (RFC 9112 §3.2). Every byte is visible
// ASCII; no fragment; every '%' starts a valid escape. Authority-form is
// CONNECT's, refused before this.
func validTarget(t []byte, options bool) bool {
	if len(t) == 0 {
		return false
	}
	if len(t) == 1 && t[0] == '*' {
		return options
	}
	if t[0] != '/' {
		var rest []byte
		switch {
		case hasPrefixFold(t, "http://"):
			rest = t[len("http://"):]
		case hasPrefixFold(t, "https://"):
			rest = t[len("https://"):]
		default:
			return false
		}
		end := bytes.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		if !validAuthority(rest[:end]) {
			return false
		}
		t = rest[end:]
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c <= ' ' || c >= 0x7f || c == '#':
			return false
		case c == '%':
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
		}
	}
	return true
}

// validAuthority accepts a reg-name or IPv4 host (letters, digits, '-',
// '.') with an optional port of digits: stricter than RFC 3986, so that
// nothing url.ParseRequestURI refuses gets through.
func validAuthority(a []byte) bool {
	host := a
	if i := bytes.IndexByte(a, ':'); i >= 0 {
		host = a[:i]
		port := a[i+1:]
		if len(port) == 0 {
			return false
		}
		for _, c := range port {
			if !isDigit(c) {
				return false
			}
		}
	}
	if len(host) == 0 {
		return false
	}
	for _, c := range host {
		if !(isAlnum(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validHost checks a Host value (RFC 9110 §7.2): a host with an optional
// port, or an IPv6 literal in brackets.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for _, c := range h {
		if !hostByte[c] {
			return false
		}
	}
	return true
}

// parseContentLength accepts 1*DIGIT that fits an int64 (RFC 9110 §8.6).
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v names token,
// case-insensitively (RFC 9110 §5.6.1).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		elem := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if equalFold(trimOWS(elem), token) {
			return true
		}
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with the lower-case ASCII s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && equalFold(b[:len(s)], s)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenByte[c] {
			return false
		}
	}
	return true
}

// tokenByte: tchar of RFC 9110 §5.6.2. valueByte: field-vchar, SP and HTAB
// of §5.5 (obs-text included; CTLs and DEL refused). hostByte: what a Host
// value may hold (RFC 3986 §3.2.2 and a port).
var tokenByte, valueByte, hostByte [256]bool

func init() {
	for c := range 256 {
		tokenByte[c] = isAlnum(byte(c)) || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), byte(c)) >= 0
		valueByte[c] = c == ' ' || c == '\t' || (c > ' ' && c != 0x7f)
		hostByte[c] = isAlnum(byte(c)) || bytes.IndexByte([]byte("-._~!$&'()*+,;=:[]%"), byte(c)) >= 0
	}
}
