package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"os"
	"sync"
	"time"
)

// Forward proxies r to one instance and streams the response to w: a
// RoundTrip followed by Send. See both for the errors; a *Error means
// nothing but 1xx interim responses was written to w.
func (p *Pool) Forward(w http.ResponseWriter, r *http.Request) error {
	resp, err := p.RoundTrip(w, r)
	if err != nil {
		return err
	}
	_, err = resp.Send(w)
	return err
}

// RoundTrip sends r to one instance and reads the head of its answer: the
// final status and the header fields to pass on, as a value. The caller
// decides what to do with it — Send it to the client, or Discard it and
// answer otherwise (fallback_on_status) — and must do exactly one of the
// two, which returns the connection to the pool.
//
// The instance is chosen round-robin among the healthy, non-ejected ones;
// when all are down one is tried anyway (see pick). The exchange is bounded by
// the dial, response-header and overall timeouts and by r.Context(); the
// overall timeout covers the body too, so a response still streaming when it
// passes is cut. To spare a timer update per request, a reused connection's
// deadline is left alone when it fires at most 1/64 of the timeout early, so
// timeouts are exact to within that.
//
// w is the client's ResponseWriter, and RoundTrip writes to it only the 1xx
// interim responses (103 Early Hints) that precede the final one, as
// httputil.ReverseProxy does from its Got1xxResponse hook. A failed round
// trip returns a *Error: the caller picks the response (Error.StatusCode,
// or a fallback).
//
// Requests to http instances use turnout's own HTTP/1.1 client (the fast
// path). https instances go through net/http's Transport (the slow path,
// about half the throughput). A WebSocket upgrade the origin accepts has
// Status 101, and Send hijacks w and splices the two connections; other
// upgrades (h2c) are not forwarded.
func (p *Pool) RoundTrip(w http.ResponseWriter, r *http.Request) (*Response, error) {
	in := p.pick()
	if up := websocketUpgrade(r); up != "" {
		return p.roundTripUpgrade(w, r, in, up)
	}
	if in.tls {
		return p.roundTripStd(r, in)
	}
	return p.roundTrip(w, r, in)
}

// Response is the head of an origin's answer whose body has not been read
// yet. Status and Header are for the caller to read (and Header to change)
// before Send; after Send or Discard the Response must not be used.
type Response struct {
	// Status is the final status code (never 1xx, but 101 for an accepted
	// WebSocket upgrade).
	Status int
	// Header holds the end-to-end fields to send: hop-by-hop fields and
	// fields named by Connection are gone. A Content-Type of nil keeps
	// net/http from sniffing one for a response that had none.
	Header http.Header

	p   *Pool
	in  *instance
	r   *http.Request
	w   http.ResponseWriter // the client's, for the request-body bookkeeping
	out counter             // w as Send writes it, counting body bytes

	// The fast path (and a refused upgrade, with upgrade set).
	cc       *upConn
	stop     func() bool
	body     *bodyCopy
	hasBody  bool
	upgrade  string // the accepted or refused upgrade; "" for none
	accepted bool   // the origin answered 101 to upgrade

	// The https slow path.
	std       *http.Response
	stdCancel context.CancelFunc
}

var responses = sync.Pool{New: func() any { return &Response{Header: make(http.Header, 8)} }}

func newResponse(p *Pool, in *instance, w http.ResponseWriter, r *http.Request) *Response {
	resp := responses.Get().(*Response)
	resp.p, resp.in, resp.w, resp.r = p, in, w, r
	return resp
}

// release puts resp back for reuse. The Header's value slices were handed
// to the client's header map, so only the map is kept.
func (resp *Response) release() {
	h := resp.Header
	clear(h)
	*resp = Response{Header: h}
	responses.Put(resp)
}

// Send writes the response to w (the ResponseWriter given to RoundTrip) and
// returns how many body bytes it wrote. Header fields already in w's header
// map are kept, the response's are added. The body is never buffered
// whole: data is written as it arrives, and w is flushed whenever the next
// upstream read would block, which streams chunked and event-stream
// responses with no delay.
//
// A non-nil error other than a *Error means the status and perhaps part of
// the body were already sent when the exchange broke (the origin died
// mid-body, the overall timeout passed, the client went away). Send has
// then already aborted the response, so the client sees a broken connection
// or reset stream, never a short body that looks complete; the caller only
// records the error and must not write. A *Error (only from a WebSocket
// hand-over that failed before the 101 was sent) means nothing was written.
func (resp *Response) Send(w http.ResponseWriter) (int64, error) {
	resp.out = counter{ResponseWriter: w}
	var err error
	switch {
	case resp.std != nil:
		err = resp.sendStd(&resp.out)
	case resp.accepted:
		err = resp.splice(w)
	default:
		err = resp.send(&resp.out)
	}
	n := resp.out.n
	resp.release()
	return n, err
}

// Discard drops the response without sending it, reading a body that is
// already on its way to the end when that keeps the connection reusable.
func (resp *Response) Discard() {
	switch {
	case resp.std != nil:
		resp.sendStd(discard{})
	case resp.accepted:
		resp.cc.close()
	default:
		resp.send(discard{})
	}
	resp.release()
}

// counter counts the body bytes written to the client. Unwrap lets
// http.ResponseController reach the Flusher and Hijacker underneath.
type counter struct {
	http.ResponseWriter
	n int64
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *counter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// discard is where Discard sends a body: nowhere, without a flush.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) WriteHeader(int)             {}
func (discard) Write(b []byte) (int, error) { return len(b), nil }

// deadlines returns the overall deadline (also bounded by ctx) and the
// response-header deadline of an exchange starting now.
func (p *Pool) deadlines(ctx context.Context, now time.Time) (overall, head time.Time) {
	overall = now.Add(p.overall)
	if d, ok := ctx.Deadline(); ok && d.Before(overall) {
		overall = d
	}
	head = now.Add(p.responseHeader)
	if head.After(overall) {
		head = overall
	}
	return overall, head
}

func (p *Pool) roundTrip(w http.ResponseWriter, r *http.Request, in *instance) (*Response, error) {
	ctx := r.Context()
	if err := ctx.Err(); err != nil {
		return nil, &Error{Kind: KindTimeout, Instance: in.url, Err: err}
	}
	now := time.Now()
	deadline, headDeadline := p.deadlines(ctx, now)
	mode := requestBodyMode(r)
	replayable := mode == bodyNone && idempotent(r)

	var (
		cc   *upConn
		stop func() bool
		body *bodyCopy
	)
	for attempt := 0; ; attempt++ {
		var reused bool
		var err error
		cc, reused, err = in.get(ctx, now, deadline, attempt > 0, replayable)
		if err != nil {
			return nil, p.dialError(in, ctx, deadline, err)
		}
		if !reused {
			in.connected()
		}
		stop = afterFunc(ctx, cc.abort)
		// The slack is 1/64 of the time actually allowed, which may be far
		// less than the response-header timeout when the overall timeout
		// or the request's context is shorter.
		slack := headDeadline.Sub(now) / 64
		if mode == bodyNone {
			cc.setDeadlines(headDeadline, headDeadline, slack)
		} else {
			cc.setDeadlines(headDeadline, deadline, slack)
		}
		cc.bw.Write(p.appendHead(cc.bw.AvailableBuffer(), r, in, mode, ""))
		phase, nothingRead := "write request", true
		err = cc.bw.Flush()
		if err == nil && mode != bodyNone {
			body = startBodyCopy(cc, r, mode)
		}
		if err == nil {
			err = p.readFinalHead(w, r, cc)
			phase, nothingRead = "read response head", cc.head.nothingRead
		}
		if err == nil {
			break
		}
		stop()
		// The context's state now, before finish: finish spends the
		// client connection's read deadline, and net/http then cancels
		// the request's context, which must not turn this failure into
		// a timeout or a client hang-up.
		ctxErr := ctx.Err()
		if body != nil {
			// A body that failed on its own (the client sent a broken
			// one, the origin stopped reading) explains the failure
			// better than the closed connection it left behind.
			if berr, _ := body.finish(cc, w, false, true); berr != nil && body.own.Load() {
				phase, err = "send request body", berr
			}
		}
		cc.close()
		if reused && nothingRead && ctxErr == nil && !isTimeout(err) && !errors.As(err, new(*clientBodyError)) {
			// The origin closed the connection after the last answer
			// on it, or the request met its close on the way.
			in.closedSilently(cc, now)
		}
		if reused && replayable && attempt == 0 && nothingRead && ctxErr == nil && !isTimeout(err) {
			// A keep-alive connection the origin closed while it sat idle.
			p.staleRetries.Add(1)
			p.log.Debug("retrying on a fresh connection", "instance", in.url, "err", err)
			continue
		}
		return nil, p.exchangeError(in, ctxErr, phase, err)
	}

	h := &cc.head
	hasBody := bodyAllowed(r.Method, h.status)
	if hasBody && !headDeadline.Equal(deadline) && (h.contentLength < 0 || int64(cc.br.Buffered()) < h.contentLength) {
		// The body needs more reads: give them the overall deadline.
		// (A body already in the buffer needs none, and the syscall-free
		// path stays free of the timer update too.)
		cc.setDeadlines(deadline, cc.wd, deadline.Sub(now)/64)
	}
	resp := newResponse(p, in, w, r)
	resp.cc, resp.stop, resp.body, resp.hasBody = cc, stop, body, hasBody
	resp.setHead(h)
	if !h.hasType && hasBody {
		resp.Header["Content-Type"] = nil // keep net/http from sniffing one
	}
	return resp, nil
}

// setHead fills Status and Header from the response head h.
func (resp *Response) setHead(h *responseHead) {
	resp.Status = h.status
	copyResponseFields(resp.Header, h)
	if h.chunked {
		delete(resp.Header, "Content-Length")
	}
}

// writeHeader adds resp.Header to w's and writes the status.
func (resp *Response) writeHeader(w http.ResponseWriter) {
	dst := w.Header()
	for k, vs := range resp.Header {
		if old, ok := dst[k]; ok && vs != nil {
			dst[k] = append(old, vs...)
		} else {
			dst[k] = vs
		}
	}
	w.WriteHeader(resp.Status)
}

// send writes the head and copies the body of a fast-path response to w,
// then pools or closes its connection.
func (resp *Response) send(w http.ResponseWriter) error {
	p, in, cc, h := resp.p, resp.in, resp.cc, &resp.cc.head
	resp.writeHeader(w)
	reusable, err := true, error(nil)
	if resp.hasBody {
		reusable, err = p.copyBody(w, cc, h)
	}
	if resp.upgrade != "" {
		// A refused upgrade: the connection asked for an upgrade and so
		// cannot be reused.
		resp.stop()
		cc.close()
		if err != nil {
			return abortResponse(w, in, err)
		}
		return nil
	}
	_, discarding := w.(discard)
	bodyErr, connOK := resp.body.finish(cc, resp.w, err == nil, !discarding)
	if !resp.stop() {
		reusable = false // ctx ended: the abort poisoned the deadline
	}
	if err == nil && bodyErr == nil && connOK && reusable && !h.close {
		in.put(cc, h.keepAlive)
	} else {
		cc.close()
	}
	// A body error alone (the client stopped uploading after the origin
	// answered in full) only costs the connection.
	if err != nil && !discarding {
		return abortResponse(w, in, err)
	}
	return nil
}

// readFinalHead reads response heads until a final (non-1xx) one. 100
// Continue is dropped (net/http answers the client's Expect itself); other
// 1xx (103 Early Hints) are forwarded as interim responses.
func (p *Pool) readFinalHead(w http.ResponseWriter, r *http.Request, cc *upConn) error {
	for {
		if err := readHead(cc.br, &cc.head); err != nil {
			return err
		}
		h := &cc.head
		switch {
		case h.status >= 200:
			return nil
		case h.status == http.StatusSwitchingProtocols:
			return malformed("101 Switching Protocols to a request that asked for no upgrade")
		case h.status == http.StatusContinue:
			continue
		}
		// Send the interim fields with it, then take them out again
		// so they do not leak into the final response.
		dst := w.Header()
		had := make(map[string]int, len(h.fields))
		for _, f := range h.fields {
			had[f.key] = len(dst[f.key])
		}
		copyResponseFields(dst, h)
		w.WriteHeader(h.status)
		for k, n := range had {
			if n == 0 {
				delete(dst, k)
			} else {
				dst[k] = dst[k][:n]
			}
		}
	}
}

// copyBody streams the response body from cc to w. It reports whether the
// body was read to its end so the connection can be reused. It never buffers
// a whole body: data is written as it arrives, and w is flushed whenever the
// next upstream read would block, which streams chunked and event-stream
// responses with no delay and costs no extra write for a response that
// arrived in one piece.
func (p *Pool) copyBody(w http.ResponseWriter, cc *upConn, h *responseHead) (reusable bool, err error) {
	f := flusher{w: w}
	switch {
	case h.chunked:
		return p.copyChunked(w, cc, &f)
	case h.contentLength >= 0:
		return copyLength(w, cc, h.contentLength, &f)
	default:
		return false, copyUntilClose(w, cc, &f)
	}
}

// flusher flushes w through http.NewResponseController (w may be a wrapper
// with Unwrap), created on first use.
type flusher struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f *flusher) flush() error {
	if f.rc == nil {
		f.rc = http.NewResponseController(f.w)
	}
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

type clientWriteError struct{ err error }

func (e *clientWriteError) Error() string { return "write response to client: " + e.err.Error() }
func (e *clientWriteError) Unwrap() error { return e.err }

func copyLength(w http.ResponseWriter, cc *upConn, n int64, f *flusher) (bool, error) {
	br := cc.br
	var bp *[]byte
	defer func() {
		if bp != nil {
			copyBuffers.Put(bp)
		}
	}()
	for n > 0 {
		var chunk []byte
		buffered := false
		if b := br.Buffered(); b > 0 {
			// Write straight out of the read buffer: no copy.
			chunk, _ = br.Peek(int(min(int64(b), n)))
			buffered = true
		} else if n >= int64(br.Size()) {
			if bp == nil {
				bp = copyBuffers.Get().(*[]byte)
			}
			buf := *bp
			k, err := br.Read(buf[:min(int64(len(buf)), n)])
			if k == 0 {
				return false, readBodyError(err)
			}
			chunk = buf[:k]
		} else {
			if _, err := br.Peek(1); err != nil {
				return false, readBodyError(err)
			}
			continue
		}
		if _, err := w.Write(chunk); err != nil {
			return false, &clientWriteError{err}
		}
		if buffered {
			br.Discard(len(chunk))
		}
		n -= int64(len(chunk))
		if n > 0 && br.Buffered() == 0 {
			if err := f.flush(); err != nil {
				return false, &clientWriteError{err}
			}
		}
	}
	return true, nil
}

func readBodyError(err error) error {
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read response body: %w", err)
}

func (p *Pool) copyChunked(w http.ResponseWriter, cc *upConn, f *flusher) (bool, error) {
	cr := httputil.NewChunkedReader(cc.br)
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, err := cr.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false, &clientWriteError{werr}
			}
		}
		if err == io.EOF {
			n, err := readTrailers(cc, w.Header())
			if err != nil {
				return false, err
			}
			if n > 0 {
				// net/http decides between chunking and a computed
				// Content-Length when it first writes the header, from
				// the header as it was at WriteHeader: without a flush
				// now, a short body gets a Content-Length and the
				// trailers are dropped. Flushing while the handler
				// still runs makes it chunk, and it sends the
				// http.TrailerPrefix fields after the last chunk.
				if err := f.flush(); err != nil {
					return false, &clientWriteError{err}
				}
			}
			return true, nil
		}
		if err != nil {
			return false, readBodyError(err)
		}
		if cc.br.Buffered() == 0 {
			if err := f.flush(); err != nil {
				return false, &clientWriteError{err}
			}
		}
	}
}

// The limits of a chunked body's lines: net/http's chunked reader refuses a
// chunk-size line of maxChunkLine bytes or more (its maxLineLength); a
// trailer line must fit the connection's read buffer, and the trailer
// section maxTrailers.
const (
	maxChunkLine   = 4096
	maxTrailerLine = readBufferSize
	maxTrailers    = 64 << 10
)

// splitTrailerLine splits a trailer field line (its line end included)
// into its name and its value without surrounding whitespace; a line that
// is not "token: value" is malformed.
func splitTrailerLine(line []byte) (name, value []byte, err error) {
	text := bytes.TrimRight(line, "\r\n")
	colon := bytes.IndexByte(text, ':')
	if colon < 0 || !validToken(bstr(text[:colon])) {
		return nil, nil, fmt.Errorf("malformed trailer line %.40q", text)
	}
	return text[:colon], bytes.Trim(text[colon+1:], " \t"), nil
}

// passTrailer reports whether a trailer field (key canonical) is passed
// on to the client: a value safe to write, neither hop-by-hop nor framing.
func passTrailer(key string, value []byte) bool {
	return validValue(bstr(value)) && !isHopByHop(key) && key != "Content-Length"
}

// readTrailers reads the trailer section after the last chunk and passes
// the fields on as trailers (http.TrailerPrefix), which net/http sends after
// a chunked response body. It returns how many fields it passed on.
func readTrailers(cc *upConn, dst map[string][]string) (int, error) {
	br := cc.br
	total, n := 0, 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return n, readBodyError(err)
		}
		total += len(line)
		if total > maxTrailers {
			return n, readBodyError(errors.New("trailer section too large"))
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return n, nil
		}
		name, value, err := splitTrailerLine(line)
		if err != nil {
			return n, readBodyError(err)
		}
		k := textproto.CanonicalMIMEHeaderKey(string(name))
		if !passTrailer(k, value) {
			continue
		}
		v := string(value)
		dst[http.TrailerPrefix+k] = append(dst[http.TrailerPrefix+k], v)
		n++
	}
}

func copyUntilClose(w http.ResponseWriter, cc *upConn, f *flusher) error {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, err := cc.br.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return &clientWriteError{werr}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readBodyError(err)
		}
		if cc.br.Buffered() == 0 {
			if err := f.flush(); err != nil {
				return &clientWriteError{err}
			}
		}
	}
}

// idempotent reports whether r may be sent twice (RFC 9110 section 9.2.2),
// the condition for the stale-connection retry.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := r.Header["Idempotency-Key"]
	return ok
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// dialError classifies a failed dial: the caller's deadline or cancellation
// is KindTimeout, anything else (including the dial timeout) KindConnect and
// a strike toward passive ejection.
func (p *Pool) dialError(in *instance, ctx context.Context, deadline time.Time, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return &Error{Kind: KindTimeout, Instance: in.url, Err: fmt.Errorf("connect: %w", cerr)}
	}
	if !time.Now().Before(deadline) {
		return &Error{Kind: KindTimeout, Instance: in.url, Err: fmt.Errorf("connect: overall timeout: %w", err)}
	}
	in.connectFailed(err)
	return &Error{Kind: KindConnect, Instance: in.url, Err: fmt.Errorf("connect: %w", err)}
}

// exchangeError classifies a failure after connecting, before any byte was
// written to the client; ctxErr is the request context's error when the
// exchange failed.
func (p *Pool) exchangeError(in *instance, ctxErr error, phase string, err error) error {
	if ce := (*clientBodyError)(nil); errors.As(err, &ce) {
		return &Error{Kind: KindClient, Instance: in.url, Err: ce}
	}
	if cerr := ctxErr; cerr != nil {
		return &Error{Kind: KindTimeout, Instance: in.url, Err: fmt.Errorf("%s: %w", phase, cerr)}
	}
	if isTimeout(err) {
		return &Error{Kind: KindTimeout, Instance: in.url, Err: fmt.Errorf("%s: %w", phase, err)}
	}
	return &Error{Kind: KindProtocol, Instance: in.url, Err: fmt.Errorf("%s: %w", phase, err)}
}

// abortResponse makes sure a response that broke after its header was sent
// does not end cleanly: net/http would otherwise finish a chunked response
// with its terminating chunk, and the client would take a truncated body for
// a complete one. An expired write deadline fails the flush and every later
// write, so the server closes the HTTP/1 connection or resets the HTTP/2
// stream — the effect of panic(http.ErrAbortHandler), without unwinding the
// caller, which still records the request. It returns err with context.
func abortResponse(w http.ResponseWriter, in *instance, err error) error {
	rc := http.NewResponseController(w)
	if rc.SetWriteDeadline(aLongTimeAgo) == nil {
		rc.Flush()
	}
	return fmt.Errorf("origin %s: response aborted: %w", in.url, err)
}
