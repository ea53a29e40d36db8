package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// response is the http.ResponseWriter. The body is buffered in a pooled
// buffer; a response that fits it leaves with its head in one write, with
// a Content-Length. One that outgrows it, or is flushed, is sent chunked
// (close-delimited to an HTTP/1.0 client) unless the handler set a
// Content-Length. One response value serves every request of a connection:
// like net/http's, it must not be used after the handler returns.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	// snap is the header as it was at WriteHeader, when the handler asked
	// for the header again afterwards (changes then have no effect).
	snap http.Header

	status      int
	wroteHeader bool
	headSent    bool
	handlerDone bool
	isHEAD      bool
	chunked     bool
	closeAfter  bool
	fullDuplex  bool
	deadlineSet bool
	clen        int64 // the Content-Length sent or set; -1 if none
	written     int64
	body        []byte // pooled; the buffered body
	err         error  // sticky write error
	// wants10KeepAlive and wantsClose are what the request asked for.
	wants10KeepAlive, wantsClose bool
}

func (w *response) reset(req *http.Request) {
	h := w.header
	if w.snap != nil {
		h = w.snap
	}
	if h == nil {
		h = make(http.Header)
	} else {
		clear(h)
	}
	p := &w.c.req
	*w = response{
		c:                w.c,
		req:              req,
		header:           h,
		clen:             -1,
		isHEAD:           req.Method == "HEAD",
		wants10KeepAlive: p.ProtoMinor == 0 && !p.Close,
		wantsClose:       p.ProtoMinor == 1 && p.Close,
	}
}

func (w *response) release() {
	if w.body != nil {
		putBuf(w.body[:bufSize])
		w.body = nil
	}
}

func (w *response) Header() http.Header {
	if w.wroteHeader && !w.headSent && w.snap == nil {
		// net/http ignores changes made after WriteHeader; keep the
		// header as it was then and give the handler a copy.
		w.snap = w.header
		w.header = w.header.Clone()
	}
	return w.header
}

func (w *response) sendHeader() http.Header {
	if w.snap != nil {
		return w.snap
	}
	return w.header
}

func (w *response) WriteHeader(code int) {
	if w.c.hijacked {
		w.c.srv.logf("http: response.WriteHeader on hijacked connection")
		return
	}
	if w.wroteHeader {
		w.c.srv.logf("http: superfluous response.WriteHeader call (status %d after %d)", code, w.status)
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.clen = v
		} else {
			w.c.srv.logf("http: invalid Content-Length of %q", cl)
			w.header.Del("Content-Length")
		}
	}
}

// writeInformational writes a 1xx response at once, with the header as it
// is, as net/http does.
func (w *response) writeInformational(code int) {
	if w.err != nil || w.headSent {
		return
	}
	out := getBuf()[:0]
	out = appendStatusLine(out, code)
	out = w.appendFields(out, w.header, true)
	out = append(out, "\r\n"...)
	if _, err := w.c.nc.Write(out); err != nil {
		w.err = err
	}
	putBuf(out[:bufSize])
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.clen != -1 && w.written > w.clen {
		return 0, http.ErrContentLength
	}
	if w.headSent && w.isHEAD {
		return len(p), nil
	}
	if w.body == nil {
		w.body = getBuf()[:0]
	}
	if len(w.body)+len(p) <= cap(w.body) {
		w.body = append(w.body, p...)
		return len(p), nil
	}
	if err := w.send(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	if w.body != nil && !w.c.hijacked && w.err == nil && w.wroteHeader && bodyAllowedForStatus(w.status) &&
		len(w.body)+len(s) <= cap(w.body) && (w.clen == -1 || w.written+int64(len(s)) <= w.clen) {
		w.written += int64(len(s))
		w.body = append(w.body, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// Flush sends the head and what is buffered.
func (w *response) Flush() { w.FlushError() }

func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if w.err != nil {
		return w.err
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.send(nil, false)
}

func (w *response) SetReadDeadline(t time.Time) error {
	return w.c.setReadDeadline(t)
}

func (w *response) SetWriteDeadline(t time.Time) error {
	w.deadlineSet = true
	return w.c.nc.SetWriteDeadline(t)
}

// EnableFullDuplex lets the handler read the request body after the
// response has started; reads and writes are independent here.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// Hijack hands the connection over: what was written is flushed first,
// and the returned reader holds the bytes already read past the head.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.handlerDone {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && w.err == nil {
		w.send(nil, false)
	}
	c.stopWatch()
	c.clearStale()
	c.hijacked = true
	var rd io.Reader = c.nc
	rest := 0
	if c.r < c.w {
		rest = c.w - c.r
		rd = io.MultiReader(bytes.NewReader(bytes.Clone(c.buf[c.r:c.w])), c.nc)
		c.r = c.w
	}
	c.releaseBuf()
	br := bufio.NewReaderSize(rd, max(bufSize, rest))
	if rest > 0 {
		br.Peek(rest) // hold the buffered bytes, as net/http's reader does
	}
	bw := bufio.NewWriterSize(c.nc, bufSize)
	c.setState(http.StateHijacked)
	return c.nc, bufio.NewReadWriter(br, bw), nil
}

// finish ends the response after the handler returned and reports whether
// the connection can carry another request.
func (w *response) finish() bool {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil {
		w.send(nil, true)
	}
	if w.err != nil || w.closeAfter {
		return false
	}
	if !w.isHEAD && w.clen != -1 && bodyAllowedForStatus(w.status) && w.written != w.clen {
		return false // too short: the client would wait for the rest
	}
	return true
}

// send writes the head if it is not sent yet, the buffered body and p,
// framed; final ends a chunked body. One write call (a writev when p is
// large) carries it all.
func (w *response) send(p []byte, final bool) error {
	c := w.c
	out := getBuf()[:0]
	defer func() { putBuf(out[:bufSize]) }()
	if !w.headSent {
		out = w.appendHead(out)
		w.headSent = true
	}
	noBody := w.isHEAD || !bodyAllowedForStatus(w.status)
	if noBody {
		w.body, p = w.body[:0], nil
	}
	n := len(w.body) + len(p)
	if w.chunked && n > 0 {
		out = strconv.AppendInt(out, int64(n), 16)
		out = append(out, "\r\n"...)
	}
	var tail []byte
	if w.chunked {
		switch {
		case final && w.hasTrailers():
			tail = w.appendTrailers(n > 0)
		case n > 0 && final:
			tail = crlfLastChunk
		case n > 0:
			tail = crlf
		case final:
			tail = lastChunk
		}
	}
	body := w.body
	w.body = w.body[:0]
	if len(out)+n+len(tail) <= cap(out) {
		out = append(out, body...)
		out = append(out, p...)
		out = append(out, tail...)
		body, p, tail = nil, nil, nil
	}
	if len(out)+len(body)+len(p)+len(tail) == 0 {
		return nil
	}
	var err error
	if len(body)+len(p)+len(tail) == 0 {
		_, err = c.nc.Write(out)
	} else {
		c.bufs = [4][]byte{out, body, p, tail}
		c.out = c.bufs[:]
		_, err = c.out.WriteTo(c.nc)
		c.bufs = [4][]byte{}
	}
	if err != nil {
		w.err = err
	}
	return err
}

// hasTrailers reports whether the handler declared or set trailer fields:
// keys named in the Trailer field, or prefixed with http.TrailerPrefix.
func (w *response) hasTrailers() bool {
	if has(w.sendHeader(), "Trailer") {
		return true
	}
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// appendTrailers returns the end of a chunked body with the trailer
// fields, as net/http sends them: those declared in the Trailer field,
// with their values as the handler left them, then the http.TrailerPrefix
// ones.
func (w *response) appendTrailers(afterChunk bool) []byte {
	var b []byte
	if afterChunk {
		b = append(b, "\r\n"...)
	}
	b = append(b, "0\r\n"...)
	for _, v := range w.sendHeader()["Trailer"] {
		for _, name := range strings.Split(v, ",") {
			k := http.CanonicalHeaderKey(strings.TrimSpace(name))
			switch k {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
				continue
			}
			b = appendField(b, k, w.header[k])
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			b = appendField(b, name, vv)
		}
	}
	return append(b, "\r\n"...)
}

var (
	crlf          = []byte("\r\n")
	lastChunk     = []byte("0\r\n\r\n")
	crlfLastChunk = []byte("\r\n0\r\n\r\n")
)

// appendHead decides the response's framing and connection as net/http's
// chunkWriter.writeHeader does, and appends the status line and header.
func (w *response) appendHead(out []byte) []byte {
	h := w.sendHeader()
	code := w.status
	bodyOK := bodyAllowedForStatus(code)
	te := h.Get("Transfer-Encoding")
	hasTE := te != ""
	var setCL, setConn, setCT, setTE string
	trailers := has(h, "Trailer")
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			trailers = true
			break
		}
	}
	if w.handlerDone && !trailers && !hasTE && bodyOK && w.clen == -1 && !has(h, "Content-Length") && (!w.isHEAD || len(w.body) > 0) {
		w.clen = int64(len(w.body))
		setCL = "auto"
	}
	hasCL := w.clen != -1
	keepAlives := !w.c.srv.closed.Load()
	if w.wants10KeepAlive && keepAlives && has(h, "Content-Length") && h.Get("Connection") == "keep-alive" {
		w.closeAfter = false
	}
	if w.wants10KeepAlive && (w.isHEAD || hasCL || !bodyOK) {
		if _, ok := h["Connection"]; !ok {
			setConn = "keep-alive"
		}
	} else if w.req.ProtoMinor == 0 || w.wantsClose {
		w.closeAfter = true
	}
	if h.Get("Connection") == "close" || !keepAlives {
		w.closeAfter = true
	}
	if b, ok := w.req.Body.(*body); ok {
		b.mu.Lock()
		unasked := b.expect && !b.sawEOF
		b.mu.Unlock()
		if unasked {
			w.closeAfter = true
		} else if !w.closeAfter && !w.fullDuplex && !b.drain() {
			w.closeAfter = true
			setConn = "close"
		}
	}
	skipCL, skipTE, skipConn := false, false, setConn == "close"
	if bodyOK {
		_, haveType := h["Content-Type"]
		if !haveType && h.Get("Content-Encoding") == "" && !hasTE && len(w.body) > 0 {
			setCT = http.DetectContentType(w.body)
		}
	} else {
		skipCL, skipTE = true, true
	}
	if hasCL && hasTE && te != "identity" {
		w.c.srv.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.clen)
		skipCL, hasCL = true, false
		w.clen = -1
	}
	switch {
	case w.isHEAD || !bodyOK:
		skipTE = true
	case hasCL:
		skipTE = true
	case w.req.ProtoMinor == 1 && te == "identity":
		w.closeAfter = true
		skipTE = true
	case w.req.ProtoMinor == 1:
		w.chunked = true
		skipTE = true
		setTE = "chunked"
	default:
		w.closeAfter = true
		skipTE = true
	}
	if w.closeAfter && (!keepAlives || !hasToken([]byte(h.Get("Connection")), "close")) {
		skipConn = true
		if w.req.ProtoMinor == 1 {
			setConn = "close"
		} else {
			setConn = ""
		}
	}
	if setConn == "keep-alive" && w.closeAfter {
		setConn = ""
	}

	out = appendStatusLine(out, code)
	keys := w.c.keys[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case k == "Content-Length" && (skipCL || setCL != ""):
		case k == "Transfer-Encoding" && skipTE:
		case k == "Connection" && skipConn:
		case k == "Content-Type" && code == http.StatusNotModified:
		case strings.HasPrefix(k, http.TrailerPrefix):
		default:
			out = appendField(out, k, h[k])
		}
	}
	clear(keys)
	w.c.keys = keys[:0]
	if setCL != "" {
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, w.clen, 10)
		out = append(out, "\r\n"...)
	}
	if setConn != "" {
		out = append(out, "Connection: "...)
		out = append(out, setConn...)
		out = append(out, "\r\n"...)
	}
	if setCT != "" {
		out = append(out, "Content-Type: "...)
		out = append(out, setCT...)
		out = append(out, "\r\n"...)
	}
	if _, ok := h["Date"]; !ok {
		out = appendDate(out)
	}
	if setTE != "" {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(out, "\r\n"...)
}

// appendFields writes h, sorted, without the framing fields when noFraming.
func (w *response) appendFields(out []byte, h http.Header, noFraming bool) []byte {
	keys := w.c.keys[:0]
	for k := range h {
		if noFraming && (k == "Content-Length" || k == "Transfer-Encoding") {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = appendField(out, k, h[k])
	}
	clear(keys)
	w.c.keys = keys[:0]
	return out
}

// appendField writes one header key's lines as net/http does: invalid
// names are left out, CR and LF in values become spaces, and values are
// trimmed.
func appendField(out []byte, k string, vv []string) []byte {
	if k == "" || !isTokenString(k) {
		return out
	}
	for _, v := range vv {
		out = append(out, k...)
		out = append(out, ": "...)
		start := len(out)
		for i := 0; i < len(v); i++ {
			ch := v[i]
			if ch == '\r' || ch == '\n' {
				ch = ' '
			}
			out = append(out, ch)
		}
		// Trim what net/http's textproto.TrimString trims.
		val := out[start:]
		lo, hi := 0, len(val)
		for lo < hi && isASCIISpace(val[lo]) {
			lo++
		}
		for hi > lo && isASCIISpace(val[hi-1]) {
			hi--
		}
		if lo > 0 || hi < len(val) {
			copy(val, val[lo:hi])
			out = out[:start+hi-lo]
		}
		out = append(out, "\r\n"...)
	}
	return out
}

func isASCIISpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func isTokenString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

func has(h http.Header, key string) bool {
	_, ok := h[key]
	return ok
}

// bodyAllowedForStatus is net/http's: 1xx, 204 and 304 carry no body.
func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

func appendStatusLine(out []byte, code int) []byte {
	out = append(out, "HTTP/1.1 "...)
	out = appendInt(out, int64(code))
	out = append(out, ' ')
	if text := http.StatusText(code); text != "" {
		out = append(out, text...)
	} else {
		out = append(out, "status code "...)
		out = appendInt(out, int64(code))
	}
	return append(out, "\r\n"...)
}

func appendInt(out []byte, n int64) []byte { return strconv.AppendInt(out, n, 10) }

// The Date field is formatted once a second.
type dateLine struct {
	sec  int64
	line []byte // "Date: ...\r\n"
}

var dateCache atomic.Pointer[dateLine]

func appendDate(out []byte) []byte {
	now := time.Now()
	d := dateCache.Load()
	if d == nil || d.sec != now.Unix() {
		line := append([]byte("Date: "), now.UTC().AppendFormat(make([]byte, 0, 32), http.TimeFormat)...)
		d = &dateLine{sec: now.Unix(), line: append(line, "\r\n"...)}
		dateCache.Store(d)
	}
	return append(out, d.line...)
}
