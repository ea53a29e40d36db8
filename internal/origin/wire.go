package origin

// The origin side of the event-loop path (issue 20; docs/performance.md,
// "Decision (2026-12-06)"). The loop owns the sockets; this file gives it,
// as functions on bytes, what the goroutine path (RoundTrip, Send) decides:
// which instance, the request head the origin gets, how to read the answer's
// head, which of its fields the client gets, how a chunked body is followed,
// and what a failure records. Each function uses the same rules as the
// goroutine path, mostly the same code (appendTarget, appendHost,
// headerOut, forwardedRequestField, forwardedKept, parseHead,
// responseHead.forwarded, bodyAllowed, connectFailed), and wire_test.go
// holds the two paths to the same output, over real sockets and by fuzzing.
//
// Where this differs from the contract the loop was first written against
// (issue 20's LOOP-CONTRACT):
//
//   - ParseWireResponse returns interim answers other than 100 Continue
//     (103 Early Hints, 102): r.Status is then 1xx and n ends after that
//     head. The goroutine path sends them on to the client at once
//     (readFinalHead; h1.Server writes a 1xx with the handler's header as
//     it is then, framing fields left out), so the loop must too: the
//     status line as h1.Server writes it, the gateway's fields set before
//     the round trip (X-Request-Id and the served-by header: the gateway's
//     AppendServedFields), r.AppendFields, an empty line. Then it parses
//     buf[n:] for the next head. 100 Continue is skipped (n covers it).
//   - ChunkScanner.Scan returns m as well: it rewrites the bytes it
//     consumed in place, and b[:m] (m <= n) is what to send to the client.
//     The goroutine path never passes chunk extensions on (net/http's
//     chunked reader drops them, h1.Server re-chunks) and passes only some
//     trailer fields, canonically named (readTrailers); Scan does the same
//     in place, so m == n but for extensions, trailers and odd spacing.
//   - Scan and ParseWireResponse consume whole lines only: a chunk-size or
//     trailer line that is not complete in b is left unconsumed (n stops
//     before it); the caller keeps those bytes and calls again with more.
//     The goroutine path's limits make the longest such line 8 KiB
//     (maxTrailerLine); a head may be up to 1 MiB (maxHeadBytes).
//
// Additions: Wire.Instance, Wire.Replayable, Wire.StaleRetry,
// Wire.PoolClosed, WireResponse.HasDate, ChunkScanner.Reset, the
// WirePhase constants.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/turnout/turnout/internal/h1"
)

// Wire is one chosen instance of a pool, for a caller that drives the
// connection itself (the event-loop path), with the address to connect to
// as it was when chosen. The zero Wire is not usable.
type Wire struct {
	in *instance
	to *wireDest
}

// PickWire chooses as RoundTrip does (same round robin, health, ejection).
// ok is false when the event-loop path cannot reach the chosen instance
// now: https; a host name without a usable address (see resolve.go: not
// looked up yet, or its lookup failed or found several addresses); an
// address with a zone. The caller then uses the goroutine path for the
// request, which picks again (in a pool that mixes such instances with
// reachable ones, the round robin then advances twice). A pool without any
// instance the loop could reach answers false without picking.
//
// PickWire does not block: for an instance named by a host name it starts
// a lookup on another goroutine when the address it has is missing or old,
// and answers with what it has meanwhile.
// A closed pool still answers, as Forward still works after Close (see
// PoolClosed), but looks nothing up.
func (p *Pool) PickWire() (w Wire, ok bool) {
	if !p.wireAny {
		return Wire{}, false
	}
	in := p.pick()
	d := in.wireDest()
	return Wire{in, d}, d != nil
}

// Addr is where to connect: the instance's IP address, or the one address
// its host name resolved to (resolve.go). The loop keys its idle
// connections by it, so after the name moves to another address the
// connections to the old one are no longer reused and close at their idle
// timeout.
func (w Wire) Addr() netip.AddrPort { return w.to.ap }

// Instance is the instance's URL as configured (Error.Instance).
func (w Wire) Instance() string { return w.in.url }

// ConnectTimeout bounds the connect, as the goroutine path's dial timeout
// (the overall timeout, if shorter, bounds it too).
func (w Wire) ConnectTimeout() time.Duration { return w.in.pool.dialTimeout }

// ResponseHeaderTimeout is how long after the exchange starts (before the
// connect) the answer's head must have arrived: the response-header
// timeout, or the overall timeout if shorter, as Pool.deadlines applies
// them. The goroutine path does not cut a connect short for it (only
// ConnectTimeout and OverallTimeout do): a connect that succeeds after it
// passed is Connected, and the request then fails to go out,
// Failed(WireWrite, true, nil).
func (w Wire) ResponseHeaderTimeout() time.Duration {
	p := w.in.pool
	return min(p.responseHeader, p.overall)
}

// OverallTimeout bounds the whole exchange from its start, body included:
// a body still streaming when it passes is cut.
func (w Wire) OverallTimeout() time.Duration { return w.in.pool.overall }

// MaxIdleConns is the pool's max_idle_conns: how many idle keep-alive
// connections to one instance the event loops keep, all loops together
// (the goroutine path's pool keeps as many of its own).
func (w Wire) MaxIdleConns() int { return w.in.pool.maxIdle }

// IdleTimeout is how long an idle origin connection may be kept and then
// carry a request: the goroutine path's idle limit (90 s), or, after an
// answer that said "Keep-Alive: timeout=t" (WireResponse.KeepAliveFor),
// reuseWindow(t) if shorter. Counted from the end of the answer.
//
// The goroutine path has more rules for a connection it reuses, which
// the loop does not get from here: a liveness probe (MSG_PEEK) before reusing
// one idle for a second or longer, and for requests that cannot be
// replayed (Replayable false) a settle time after the last answer, an idle
// cap of a second, and what the origin's silent closes taught (see the
// package doc). A replayable request that found its reused connection
// closed before any byte of the answer (not a timeout) is sent once more
// on a fresh connection (StaleRetry), without a Failed.
func (w Wire) IdleTimeout(answerKeepAlive time.Duration) time.Duration {
	if answerKeepAlive > 0 {
		return min(reuseWindow(answerKeepAlive), idleTimeout)
	}
	return idleTimeout
}

// PoolClosed reports whether the pool was closed (a deployment replaced
// it): the exchange may finish, but its connection should not be kept.
func (w Wire) PoolClosed() bool { return w.in.pool.closed.Load() }

// Replayable reports whether req (no body) may be sent a second time after
// a reused connection turned out closed, as the goroutine path decides
// (idempotent: RFC 9110 section 9.2.2, or an Idempotency-Key field).
func (w Wire) Replayable(req *h1.Request) bool { return Replayable(req) }

// Replayable is Wire.Replayable for a request not yet routed.
func Replayable(req *h1.Request) bool {
	switch req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	for _, f := range req.Fields {
		if equalFoldBytes(f.Name, "Idempotency-Key") {
			return true
		}
	}
	return false
}

// StaleRetry counts a request sent again on a fresh connection after its
// reused one was found closed (the goroutine path's stale-connection retry).
func (w Wire) StaleRetry() { w.in.pool.staleRetries.Add(1) }

// Connected records a connect that succeeded: it resets the passive
// ejection counters, as the goroutine path does after a dial.
func (w Wire) Connected() { w.in.connected() }

// WirePhase is where an event-loop exchange failed.
type WirePhase uint8

const (
	// WireConnect: the connect failed (refused, unreachable, the connect
	// timeout).
	WireConnect WirePhase = iota + 1
	// WireWrite: writing the request head failed.
	WireWrite
	// WireResponseHead: the answer's head did not come (the connection
	// closed: pass io.EOF for a clean close, the errno for a reset; a
	// timeout) or was malformed (ParseWireResponse's error).
	WireResponseHead
)

// Failed records a failure as the goroutine path does and returns the
// *Error RoundTrip would have returned (same Kind, so the same
// StatusCode, and the same message for the same cause). timeout is true
// when one of the exchange's own deadlines passed: the response-header or
// overall timeout (the connect timeout is not one: it is a failed connect,
// KindConnect, as in the goroutine path). err may be nil for a timeout.
//
// A failed connect counts toward passive ejection and sets the instance's
// last error (Instances); a syscall.Errno (what a non-blocking connect
// reports) or os.ErrDeadlineExceeded is worded as net.Dial words it
// ("dial tcp ADDR: connect: connection refused"). Nothing else is
// recorded, as in the goroutine path.
func (w Wire) Failed(phase WirePhase, timeout bool, err error) *Error {
	in := w.in
	if err == nil {
		err = os.ErrDeadlineExceeded
		if !timeout {
			err = io.ErrUnexpectedEOF
		}
	}
	if phase == WireConnect {
		if timeout {
			return &Error{Kind: KindTimeout, Instance: in.url, Err: fmt.Errorf("connect: overall timeout: %w", w.dialError(err))}
		}
		err = w.dialError(err)
		in.connectFailed(err)
		return &Error{Kind: KindConnect, Instance: in.url, Err: fmt.Errorf("connect: %w", err)}
	}
	what := "write request"
	if phase == WireResponseHead {
		what = "read response head"
	}
	if timeout {
		return &Error{Kind: KindTimeout, Instance: in.url, Err: fmt.Errorf("%s: %w", what, err)}
	}
	return in.pool.exchangeError(in, nil, what, err).(*Error)
}

// dialError words a connect's failure as net.Dialer does.
func (w Wire) dialError(err error) error {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		err = os.NewSyscallError("connect", errno)
	case err == os.ErrDeadlineExceeded:
	default:
		return err
	}
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(w.Addr()), Err: err}
}

// AppendRequest appends the request head the goroutine path would write
// for req, final CRLF included: the method, the instance's prefix and the
// path (escaped as net/url escapes the gateway's path), "?" and rawQuery
// when the client's target had a query, Host per host_header, the client's
// fields per headers.go's policy (canonical names), Cache-Control: no-cache
// for a "Pragma: no-cache" without Cache-Control (net/http's and h1.Server's
// request does that), X-Request-Id: id, X-Forwarded-For/-Proto/-Host, and
// "Content-Length: 0" for POST, PUT and PATCH.
//
// req is a head h1.Parse accepted, with no body (ContentLength <= 0, not
// chunked) and no upgrade: nothing is written for a body. path is the
// gateway's normalised path (what route.NormalizePath gave for the target's
// path); rawQuery what followed the target's first '?'; remote the client's
// "ip:port" (TLS is not the loop's). It allocates nothing when dst has room
// but for a path whose escaping net/url changes.
func (w Wire) AppendRequest(dst []byte, req *h1.Request, path string, rawQuery []byte, remote, id string) []byte {
	in := w.in
	p := in.pool
	target := req.Target
	host := bstr(req.Host)
	abs := len(target) > 0 && target[0] != '/'
	var raw []byte
	if abs {
		// Absolute form: the authority is the request's host (net/http's
		// Request.Host), the path what follows.
		rest := target
		if i := bytes.Index(rest, []byte("://")); i >= 0 {
			rest = rest[i+3:]
		}
		end := bytes.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		host = bstr(rest[:end])
		target = rest[end:]
	}
	hasQuery := false
	raw = target
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		raw, hasQuery = target[:i], true
	}
	if len(rawQuery) > 0 {
		hasQuery = true
	}

	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = appendTarget(dst, in.prefix, forwardPath(path, bstr(raw), abs), bstr(rawQuery), hasQuery)
	dst = append(dst, " HTTP/1.1\r\n"...)
	dst = p.appendHost(dst, in, host)

	o := headerOut{b: dst}
	pragmaNoCache, sawPragma, cacheControl := false, false, false
	for _, f := range req.Fields {
		start := len(o.b)
		o.b = appendCanonical(o.b, f.Name)
		key := bstr(o.b[start:])
		switch key {
		case "Pragma":
			if !sawPragma {
				sawPragma, pragmaNoCache = true, string(f.Value) == "no-cache"
			}
		case "Cache-Control":
			cacheControl = true
		}
		if !forwardedRequestField(key) || connectionLists(req, key) || !validValue(bstr(f.Value)) {
			o.b = o.b[:start]
			continue
		}
		o.b = append(o.b, ": "...)
		o.b = append(o.b, f.Value...)
		o.b = append(o.b, "\r\n"...)
	}
	if pragmaNoCache && !cacheControl && !connectionLists(req, "Cache-Control") {
		o.add("Cache-Control", "no-cache")
	}
	if validValue(id) {
		o.add("X-Request-Id", id)
	}

	peer, ok, trusted := p.peer(remote)
	if ok {
		o.b = append(o.b, "X-Forwarded-For: "...)
		if trusted && kept(req, "X-Forwarded-For") {
			for _, f := range req.Fields {
				if equalFoldBytes(f.Name, "X-Forwarded-For") {
					o.b = append(o.b, f.Value...)
					o.b = append(o.b, ", "...)
				}
			}
		}
		o.b = append(o.b, peer...)
		o.b = append(o.b, "\r\n"...)
	}
	var fw forwardedKept
	if trusted {
		fw.proto, fw.hasProto = first(req, "X-Forwarded-Proto")
		fw.host, fw.hasHost = first(req, "X-Forwarded-Host")
	}
	fw.add(&o, false, host)
	return appendBodyFraming(o.b, req.Method, bodyNone, 0)
}

// first returns the first value of the request field name when it is
// kept (see kept).
func first(req *h1.Request, name string) (string, bool) {
	if !kept(req, name) {
		return "", false
	}
	for _, f := range req.Fields {
		if equalFoldBytes(f.Name, name) {
			return bstr(f.Value), true
		}
	}
	return "", false
}

// kept reports whether a trusted peer's X-Forwarded-* field name is
// believed: present, not named by Connection, every value valid.
func kept(req *h1.Request, name string) bool {
	found := false
	for _, f := range req.Fields {
		if equalFoldBytes(f.Name, name) {
			if !validValue(bstr(f.Value)) {
				return false
			}
			found = true
		}
	}
	return found && !connectionLists(req, name)
}

// connectionLists reports whether a Connection field of req names key.
func connectionLists(req *h1.Request, key string) bool {
	for _, f := range req.Fields {
		if equalFoldBytes(f.Name, "Connection") && hasToken(bstr(f.Value), key) {
			return true
		}
	}
	return false
}

// forwardPath is the path the goroutine path sends for the gateway's
// normalised path: its Request.URL.EscapedPath() once the gateway's check
// has (or has not) replaced URL.Path and RawPath. raw is the target's path
// as sent; abs tells the absolute form, whose path the gateway takes
// escaped by net/url.
func forwardPath(path, raw string, abs bool) string {
	if abs {
		raw = escapedPath(raw)
	}
	if path == raw {
		// Untouched: net/url's URL as parsed from the target.
		return escapedPath(path)
	}
	// Replaced: URL.Path is path unescaped, RawPath path (or "" when
	// unescaping changes nothing).
	if strings.IndexByte(path, '%') >= 0 && validEncodedPath(path) {
		return path
	}
	return reescapePath(path)
}

// escapedPath is url.URL.EscapedPath for a URL parsed from the path s.
func escapedPath(s string) string {
	if validEncodedPath(s) {
		return s
	}
	return reescapePath(s)
}

// pathEscapes holds the bytes net/url escapes in a path, taken from
// net/url itself.
var pathEscapes [256]bool

func init() {
	for c := range 256 {
		s := "/" + string([]byte{byte(c)})
		u := url.URL{Path: s}
		pathEscapes[c] = u.EscapedPath() != s
	}
}

// validEncodedPath is net/url's validEncoded for a path.
func validEncodedPath(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '[', ']', '%':
		default:
			if pathEscapes[c] {
				return false
			}
		}
	}
	return true
}

// reescapePath unescapes s (its escapes are valid) and escapes it again as
// net/url does.
func reescapePath(s string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if pathEscapes[c] {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// appendCanonical appends the field name as textproto.CanonicalMIMEHeaderKey
// writes it (name is a token: h1.Parse checked it).
func appendCanonical(dst, name []byte) []byte {
	upper := true
	for _, c := range name {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

// canonicalInPlace rewrites the token name as appendCanonical writes it.
func canonicalInPlace(name []byte) {
	upper := true
	for i, c := range name {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[i] = c
		upper = c == '-'
	}
}

// equalFoldBytes compares b and s ignoring ASCII case.
func equalFoldBytes(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// bstr views b as a string without copying. The string must not outlive
// the call it is made for, nor b change while it is used.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// ErrIncomplete is ParseWireResponse's answer when buf holds no complete
// head yet: read more and call again.
var ErrIncomplete = h1.ErrIncomplete

// WireResponse is an origin's answer head parsed from bytes. Reuse one per
// connection: parsing keeps the capacity of its field list.
type WireResponse struct {
	// Status is the status code: final (>= 200), or 1xx for an interim
	// answer to pass on (see ParseWireResponse).
	Status int
	// ContentLength is the body's length, -1 when not given (or when
	// Chunked: Transfer-Encoding wins, and the connection is not kept).
	ContentLength int64
	// Chunked: the body is chunked (follow it with a ChunkScanner).
	Chunked bool
	// Bodyless: no body whatever the fields say (a HEAD request, 1xx,
	// 204, 304).
	Bodyless bool
	// UntilClose: the body ends when the origin closes (no length, not
	// chunked).
	UntilClose bool
	// KeepAlive: the origin keeps the connection after this answer (and
	// its body, read to the end). False for "Connection: close", an
	// HTTP/1.0 answer without "Connection: keep-alive", both
	// Transfer-Encoding and Content-Length, and UntilClose.
	KeepAlive bool
	// KeepAliveFor is the "Keep-Alive: timeout=N" the origin announced,
	// 0 when none (see Wire.IdleTimeout).
	KeepAliveFor time.Duration
	// HasDate: AppendFields appends the origin's Date; the client gets
	// that one (h1.Server adds its own Date only when there is none).
	HasDate bool

	head responseHead
}

// ParseWireResponse parses the answer head at the start of buf for a
// request of method, as the goroutine path reads it (readFinalHead,
// readHead, parseHead). n is the length of the heads read; r's fields
// point into buf, which must not change until r is used up. It may
// rewrite the case of field names in buf[:n] (to their canonical form).
//
// It returns ErrIncomplete when buf holds no complete head (a head larger
// than the goroutine path's limit, 1 MiB, is an error instead). 100
// Continue is skipped; another 1xx is returned (r.Status < 200) to be sent
// on to the client, after which the caller parses buf[n:] for the next
// head. A malformed head, or 101 to a request that asked for no upgrade,
// is an error, which Failed(WireResponseHead, false, err) turns into the
// goroutine path's.
func ParseWireResponse(r *WireResponse, buf []byte, method string) (n int, err error) {
	h := &r.head
	for {
		end, err := headEnd(buf[n:])
		if err != nil {
			return 0, err
		}
		canonicalNames(buf[n : n+end])
		if err := parseHead(bstr(buf[n:n+end]), h); err != nil {
			return 0, err
		}
		n += end
		switch {
		case h.status == 101:
			return 0, malformed("101 Switching Protocols to a request that asked for no upgrade")
		case h.status == 100:
			continue
		}
		break
	}
	r.Status = h.status
	r.ContentLength = h.contentLength
	r.Chunked = h.chunked
	r.Bodyless = h.status < 200 || !bodyAllowed(method, h.status)
	r.UntilClose = !r.Bodyless && !h.chunked && h.contentLength < 0
	r.KeepAlive = !h.close && !r.UntilClose
	r.KeepAliveFor = h.keepAlive
	r.HasDate = false
	for _, f := range h.fields {
		if f.key == "Date" && h.forwarded(f.key) {
			r.HasDate = true
		}
	}
	return n, nil
}

// canonicalNames rewrites the names of head's field lines in place as
// parseHead canonicalises them, so that parseHead's
// textproto.CanonicalMIMEHeaderKey finds them canonical and allocates
// nothing (uvicorn, for one, sends lower-case names). Only the case of a
// valid name changes: what parseHead accepts, refuses or says is the same.
func canonicalNames(head []byte) {
	_, rest, _ := bytes.Cut(head, []byte("\n")) // not the status line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if colon := bytes.IndexByte(line, ':'); colon > 0 && validToken(bstr(line[:colon])) {
			canonicalInPlace(line[:colon])
		}
	}
}

// headEnd returns the length of the head at the start of b, up to and
// including the empty line that ends it, as readHead finds it (lines end
// in LF; parseHead judges the CRs).
func headEnd(b []byte) (int, error) {
	pos := 0
	for {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			if len(b) > maxHeadBytes {
				return 0, malformed("response head larger than %d bytes", maxHeadBytes)
			}
			return 0, ErrIncomplete
		}
		line := i + 1
		pos += line
		if pos > maxHeadBytes {
			return 0, malformed("response head larger than %d bytes", maxHeadBytes)
		}
		if line == 1 || (line == 2 && b[pos-2] == '\r') {
			return pos, nil
		}
	}
}

// AppendFields appends the origin's end-to-end fields, "Name: value\r\n"
// each, as the goroutine path's client gets them: copyResponseFields'
// selection (no hop-by-hop field, none the origin's Connection names), less
// what the loop writes itself or h1.Server leaves out: Content-Length
// (framing: the loop writes its own), and Content-Type on a 304.
//
// What the loop adds so that the client sees what h1.Server sends:
//   - framing: a HEAD answer gets "Content-Length: N" when the origin
//     sent one (r.ContentLength >= 0, not Chunked) and nothing else; 1xx,
//     204 and 304 get neither Content-Length nor Transfer-Encoding; a body
//     gets its Content-Length, or is chunked (h1.Server may give a short
//     one a Content-Length instead: framing, not content);
//   - a Date field when !r.HasDate (not on a 1xx);
//   - no Content-Type when the origin sent none (h1.Server does not sniff
//     one for a proxied answer).
func (r *WireResponse) AppendFields(dst []byte) []byte {
	h := &r.head
	for _, f := range h.fields {
		if !h.forwarded(f.key) || f.key == "Content-Length" || (f.key == "Content-Type" && h.status == 304) {
			continue
		}
		dst = appendField(dst, f.key, f.value)
	}
	return dst
}

// ChunkScanner follows a chunked body as its bytes arrive, to pass it on
// to the client, with the goroutine path's rules (copyChunked: net/http's
// chunked reader, then readTrailers). The zero value is ready; Reset makes
// it so again.
type ChunkScanner struct {
	state   chunkState
	left    uint64 // data bytes left in the current chunk
	crlf    int    // bytes of the CRLF after a chunk's data seen
	excess  int64  // net/http's measure of framing overhead
	trailer int    // bytes of the trailer section so far
}

type chunkState uint8

const (
	chunkSize chunkState = iota
	chunkData
	chunkDataEnd
	chunkTrailer
	chunkDone
)

// Reset readies s for the next body.
func (s *ChunkScanner) Reset() { *s = ChunkScanner{} }

// Scan consumes the body's bytes at the start of b and returns how many it
// consumed (n), done when the last chunk and the trailer section have
// ended (the bytes after b[:n] are not the body's), and an error when the
// body is malformed where the goroutine path finds it so (bad or
// too-long chunk-size line, bare LF or stray CR in it, a chunk not ended by
// CRLF, too much framing for the data, a malformed or too-long trailer
// line, trailers over 64 KiB).
//
// It rewrites b[:n] in place: b[:m] is what to send to the client, the
// chunked body as the goroutine path's client gets it but for chunk sizes
// (the origin's are kept): chunk extensions and trailing spaces removed
// from the size lines, and the trailer section reduced to the fields
// readTrailers passes on (valid, neither hop-by-hop nor Content-Length),
// canonically named. Data bytes are not copied when nothing before them in
// b was removed. A line (chunk size, trailer) is consumed whole or not at
// all: keep b[n:] and call again with more.
func (s *ChunkScanner) Scan(b []byte) (n, m int, done bool, err error) {
	r, w := 0, 0
	emit := func(src []byte) {
		if &b[w] != &src[0] {
			copy(b[w:], src)
		}
		w += len(src)
	}
	for r < len(b) && s.state != chunkDone {
		switch s.state {
		case chunkSize:
			i := bytes.IndexByte(b[r:], '\n')
			if i < 0 {
				if len(b)-r > maxChunkLine {
					return r, w, false, chunkError("chunk-size line too long")
				}
				return r, w, false, nil
			}
			line := b[r : r+i+1]
			cr := bytes.IndexByte(line, '\r')
			switch {
			case cr < 0:
				return r, w, false, chunkError("chunked line ends with bare LF")
			case cr != len(line)-2:
				return r, w, false, chunkError("invalid CR in chunked line")
			}
			size := line[:len(line)-2]
			if len(size) >= maxChunkLine {
				return r, w, false, chunkError("chunk-size line too long")
			}
			s.excess += int64(len(size)) + 2
			for len(size) > 0 && (size[len(size)-1] == ' ' || size[len(size)-1] == '\t') {
				size = size[:len(size)-1]
			}
			if j := bytes.IndexByte(size, ';'); j >= 0 {
				size = size[:j]
			}
			k, perr := parseChunkSize(size)
			if perr != nil {
				return r, w, false, perr
			}
			s.excess = max(s.excess-16-2*int64(k), 0)
			if s.excess > 16<<10 && k != 0 {
				return r, w, false, chunkError("chunked encoding contains too much non-data")
			}
			r += len(line)
			emit(size)
			b[w], b[w+1] = '\r', '\n'
			w += 2
			if k == 0 {
				s.state = chunkTrailer
			} else {
				s.left, s.state = k, chunkData
			}
		case chunkData:
			k := min(s.left, uint64(len(b)-r))
			emit(b[r : r+int(k)])
			r += int(k)
			s.left -= k
			if s.left == 0 {
				s.state, s.crlf = chunkDataEnd, 0
			}
		case chunkDataEnd:
			for s.crlf < 2 && r < len(b) {
				if b[r] != "\r\n"[s.crlf] {
					return r, w, false, chunkError("malformed chunked encoding")
				}
				b[w] = b[r]
				r, w, s.crlf = r+1, w+1, s.crlf+1
			}
			if s.crlf == 2 {
				s.state = chunkSize
			}
		case chunkTrailer:
			i := bytes.IndexByte(b[r:], '\n')
			if i < 0 {
				if len(b)-r >= maxTrailerLine {
					return r, w, false, chunkError("trailer line too long")
				}
				if s.trailer+len(b)-r+1 > maxTrailers {
					return r, w, false, chunkError("trailer section too large")
				}
				return r, w, false, nil
			}
			line := b[r : r+i+1]
			if len(line) > maxTrailerLine {
				return r, w, false, chunkError("trailer line too long")
			}
			s.trailer += len(line)
			if s.trailer > maxTrailers {
				return r, w, false, chunkError("trailer section too large")
			}
			if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
				// The end. A bare LF stays one when there is no room
				// to write CR LF in its place.
				r += len(line)
				if r-w >= 2 {
					b[w], b[w+1] = '\r', '\n'
					w += 2
				} else {
					b[w] = '\n'
					w++
				}
				s.state = chunkDone
				break
			}
			var werr error
			w, werr = trailerLine(b, r, w, line)
			if werr != nil {
				return r, w, false, werr
			}
			r += len(line)
		}
	}
	return r, w, s.state == chunkDone, nil
}

// trailerLine judges one trailer field line (b[r:], line) as readTrailers
// does and, when it is passed on, writes it at b[w:], canonically named. It
// returns the new w.
func trailerLine(b []byte, r, w int, line []byte) (int, error) {
	name, value, err := splitTrailerLine(line)
	if err != nil {
		return w, fmt.Errorf("read response body: %w", err)
	}
	// The name goes to b[w:], which is at or before where it is: the
	// value, after it, is not overwritten.
	copy(b[w:], name)
	key := b[w : w+len(name)]
	canonicalInPlace(key)
	if !passTrailer(bstr(key), value) {
		return w, nil
	}
	// Room for "Name: value\r\n" where the line was: the bytes already
	// removed before it, its spaces, its line end.
	slack := (r - w) + len(line) - (len(name) + 1 + len(value))
	w += len(name)
	b[w] = ':'
	w++
	// The value moves at most one byte to the right (to make room for the
	// space), within the line: copy it before writing the space.
	sp := 0
	if slack >= 3 {
		sp = 1
	}
	copy(b[w+sp:], value)
	if sp == 1 {
		b[w] = ' '
	}
	w += sp + len(value)
	if slack >= 2 {
		b[w], b[w+1] = '\r', '\n'
		w += 2
	} else {
		b[w] = '\n'
		w++
	}
	return w, nil
}

// parseChunkSize is net/http's parseHexUint.
func parseChunkSize(v []byte) (uint64, error) {
	if len(v) == 0 {
		return 0, chunkError("empty hex number for chunk length")
	}
	var n uint64
	for i, c := range v {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, chunkError("invalid byte in chunk length")
		}
		if i == 16 {
			return 0, chunkError("http chunk length too large")
		}
		n = n<<4 | uint64(c)
	}
	return n, nil
}

// chunkError is a malformed chunked body, worded as the goroutine path's
// (readBodyError).
func chunkError(msg string) error {
	return fmt.Errorf("read response body: %w", &chunkErr{msg})
}

type chunkErr struct{ msg string }

func (e *chunkErr) Error() string { return e.msg }
