package fnhost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/turnout/turnout/internal/h1"
)

// runtimeAPI serves the Runtime API to one instance on its own listener.
//
// It is a small HTTP/1.1 loop of its own, not net/http's server (heads
// are parsed by h1.Parse, bodies read by apiBody): the
// clients are the runtime interface clients in the instance (aws-lambda-go,
// the Node.js and Python ones), one request at a time per connection, and
// the one request that matters waits: GET /next is a long poll that an
// invocation answers. net/http's server ran each request in a handler
// goroutine with a background read beside it (a goroutine start, a read
// and a wake-up per request) and the invocation had to be handed to the
// goroutine waiting in /next, which then wrote it: a wake-up between the
// invocation and the function seeing it; the result came back the same way,
// read by one goroutine and handed to the invocation's. Here a /next parks
// its connection (nextWaiter), the invocation's own goroutine writes the
// event on it (instance.deliver) and reads the result from it (await), as
// the gateway reads an origin's answer itself. The connection's goroutine
// resumes afterwards, off the invocation's path, and writes the result's
// 202 then: the caller answers its client without waiting for that write
// (and the wake-up of the function it carries). A result that comes on
// another connection, the invocation's deadline and its caller leaving make
// await give the connection back at once (stop); a request await does not
// serve (a /next) goes back with it.
type runtimeAPI struct {
	in   *instance
	ln   net.Listener
	done chan struct{} // closed by close
	// headerTimeout bounds reading a head once its first byte came
	// (apiHeaderTimeout; tests shorten it).
	headerTimeout time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// nextWaiter is a runtime's GET /next waiting for an invocation.
type nextWaiter struct {
	c       net.Conn
	br      *bufio.Reader
	head    *h1.Request   // the connection's head parser state
	close   bool          // the connection is to be closed
	written chan struct{} // closed once the invocation was written on c and its result awaited
	pending *apiRequest   // a request await read but left to the connection's goroutine
	// accepted: await read the result and owes the runtime its 202, which
	// the connection's goroutine writes when it takes the connection back
	// (acceptedClose: with "Connection: close"), so that the invocation's
	// caller answers its client first.
	accepted, acceptedClose bool

	mu      sync.Mutex // guards idle and stopped
	idle    bool       // await is waiting for a request's first byte
	stopped bool       // await is to give the connection back
}

// apiHeaderTimeout bounds reading a request head once its first byte came
// (what net/http's ReadHeaderTimeout did).
const apiHeaderTimeout = 10 * time.Second

// maxDrain is how much of an unread request body is read past to keep the
// connection (net/http's own figure); more, and the connection is closed.
const maxDrain = 256 << 10

func newRuntimeAPI(in *instance, ln net.Listener) *runtimeAPI {
	return &runtimeAPI{in: in, ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}, headerTimeout: apiHeaderTimeout}
}

// serve accepts the instance's connections until close.
func (a *runtimeAPI) serve() {
	defer a.wg.Wait()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			select {
			case <-a.done:
				return
			case <-time.After(5 * time.Millisecond): // out of descriptors, say: try again, as net/http does
				continue
			}
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.conns[c] = struct{}{}
		a.wg.Add(1)
		a.mu.Unlock()
		go func() {
			defer a.wg.Done()
			a.serveConn(c)
			a.mu.Lock()
			delete(a.conns, c)
			a.mu.Unlock()
			c.Close()
		}()
	}
}

// close stops the listener and every connection.
func (a *runtimeAPI) close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	close(a.done)
	a.ln.Close()
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
}

// serveConn serves the requests of one connection in turn.
func (a *runtimeAPI) serveConn(c net.Conn) {
	br := bufio.NewReaderSize(c, 4<<10)
	head := new(h1.Request)
	var req *apiRequest
	for {
		if req == nil {
			// An idle connection waits without a deadline (the runtime
			// posts its result when the function is done).
			if _, err := br.Peek(1); err != nil {
				return
			}
			var ok bool
			if req, ok = readRequest(c, br, head, a.headerTimeout); !ok {
				return
			}
		}
		keep, next := a.handle(c, br, head, req)
		if !keep || !finishRequest(req) {
			return
		}
		req = next
	}
}

// apiRequest is a Runtime API request whose head was read: what the
// handlers use of the head, copied out of the connection's buffer, and
// the body.
type apiRequest struct {
	method    string
	path      string // the target's path
	close     bool   // the connection closes after this request
	expect    bool   // "Expect: 100-continue", not yet answered
	length    int64  // the body's Content-Length; -1 when chunked
	errorType string // Lambda-Runtime-Function-Error-Type
	body      apiBody
	// acceptLater: a result accepted is not answered here but marked
	// accepted, for the caller to answer (await's results).
	acceptLater, accepted bool
}

// readRequest reads a request whose first byte is in br: the head must come
// whole within maxHeadBytes and, when timeout is not 0, within timeout of
// the first read it needs past what br holds (the read deadline is none
// after it). A malformed one is answered (400, or
// what h1.Parse says: 431 when too large, 417, 501, 505) and ends the
// connection (false).
func readRequest(c net.Conn, br *bufio.Reader, head *h1.Request, timeout time.Duration) (*apiRequest, bool) {
	var t *headTimer
	if timeout > 0 {
		t = &headTimer{c: c, d: timeout}
	}
	req, err := parseRequest(br, head, t)
	if err != nil {
		var he *h1.Error
		switch {
		case errors.As(err, &he) && (he == h1.ErrHeadTooLarge || he == h1.ErrURITooLong):
			refuse(c, http.StatusRequestHeaderFieldsTooLarge, errorJSON("InvalidRequest", "request head over 1 MiB"))
		case he != nil:
			refuse(c, he.Status, errorJSON("InvalidRequest", "malformed request: "+he.Reason))
		default:
			refuse(c, http.StatusBadRequest, errorJSON("InvalidRequest", "malformed request: "+err.Error()))
		}
		return nil, false
	}
	if t != nil && t.armed {
		c.SetReadDeadline(time.Time{})
	}
	return req, true
}

// headTimer arms the header timeout on a connection the first time a head
// needs more than what was already read: a head that came whole with its
// first byte (the runtime writes each request in one go) costs no timer.
type headTimer struct {
	c     net.Conn
	d     time.Duration
	armed bool
}

func (t *headTimer) arm() {
	if t != nil && !t.armed {
		t.armed = true
		t.c.SetReadDeadline(time.Now().Add(t.d))
	}
}

// parseRequest parses the head at br's start with h1.Parse, in br's buffer
// when it fits there (then without copying it), and leaves br at the body.
// t, when not nil, is armed before the first read.
func parseRequest(br *bufio.Reader, head *h1.Request, t *headTimer) (*apiRequest, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		err := h1.Parse(head, buf, maxHeadBytes)
		if err != h1.ErrIncomplete {
			req, err := newAPIRequest(br, head, err)
			if err == nil {
				br.Discard(head.HeadLen)
			}
			return req, err
		}
		t.arm()
		if len(buf) == br.Size() {
			return parseLongRequest(br, head)
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// parseLongRequest parses a head larger than br's buffer (an X-Ray error
// cause can be up to 1 MiB) from a copy, read line by line so that br is
// left at the body.
func parseLongRequest(br *bufio.Reader, head *h1.Request) (*apiRequest, error) {
	big := make([]byte, 0, 4*br.Size())
	lineStart := 0
	for len(big) < maxHeadBytes {
		line, err := br.ReadSlice('\n')
		big = append(big, line...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			return nil, err
		case len(big)-lineStart <= 2: // an empty line: the head may end here
			if err := h1.Parse(head, big, maxHeadBytes); err != h1.ErrIncomplete {
				return newAPIRequest(br, head, err)
			}
		}
		lineStart = len(big)
	}
	if err := h1.Parse(head, big, maxHeadBytes); err != nil && err != h1.ErrIncomplete {
		return nil, err // 414 or 431, or the head was malformed before
	}
	return nil, h1.ErrHeadTooLarge
}

// newAPIRequest makes the request h1.Parse read into head (perr is what it
// returned).
//
// h1.Parse refuses a chunked request that announces trailers, because the
// edge forwards none. aws-lambda-go announces two on every result it
// posts (its error type and body, sent when reading the handler's answer
// fails); here they are read and dropped with the body, as they were with
// net/http, so that one refusal is taken back: the head was whole and
// everything else in it valid when Parse returned it.
func newAPIRequest(br *bufio.Reader, head *h1.Request, perr error) (*apiRequest, error) {
	closeReq := head.Close
	if perr == h1.ErrTrailer {
		closeReq = connectionClose(head) // Parse stops before it sets Close (HTTP/1.1 only)
	} else if perr != nil {
		return nil, perr
	}
	r := &apiRequest{method: head.Method, close: closeReq, expect: head.Expect100 && head.ProtoMinor == 1, length: head.ContentLength}
	t := head.Target
	if len(t) > 0 && t[0] == '/' && bytes.IndexByte(t, '%') < 0 {
		if q := bytes.IndexByte(t, '?'); q >= 0 {
			t = t[:q]
		}
		r.path = string(t)
	} else if u, err := url.ParseRequestURI(string(t)); err == nil {
		r.path = u.Path // absolute-form, or escaped
	} else {
		r.path = string(t)
	}
	for _, f := range head.Fields {
		if bytes.EqualFold(f.Name, []byte("Lambda-Runtime-Function-Error-Type")) {
			r.errorType = string(f.Value)
		}
	}
	r.body.br = br
	switch {
	case head.Chunked:
		r.length = -1
		r.body.chunked = httputil.NewChunkedReader(br)
	case r.length < 0:
		r.length = 0
	}
	r.body.left = r.length
	return r, nil
}

// connectionClose reports whether an HTTP/1.1 head's Connection fields
// name "close".
func connectionClose(head *h1.Request) bool {
	for _, f := range head.Fields {
		if !bytes.EqualFold(f.Name, []byte("Connection")) {
			continue
		}
		for _, tok := range bytes.Split(f.Value, []byte(",")) {
			if bytes.EqualFold(bytes.TrimSpace(tok), []byte("close")) {
				return true
			}
		}
	}
	return false
}

// apiBody is a request's body: Content-Length bytes, or chunked (then its
// trailer section is read and dropped).
type apiBody struct {
	br      *bufio.Reader
	left    int64     // bytes left of a Content-Length body; -1 when chunked
	chunked io.Reader // the chunked decoder
	err     error     // io.EOF once the body was read whole, or why it failed
}

func (b *apiBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		b.err = io.EOF
		return 0, io.EOF
	}
	var n int
	var err error
	if b.left < 0 {
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			if err = h1.ReadTrailer(b.br); err == nil {
				err = io.EOF
			}
		}
	} else {
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err = b.br.Read(p)
		b.left -= int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// refuse answers a request that cannot be read and lets the runtime read
// the answer before the connection goes: closing it with bytes unread
// would reset it and lose the answer (net/http's server waits the same
// way).
func refuse(c net.Conn, status int, body []byte) {
	writeAPI(c, status, body, true)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(c, 4<<20))
}

// maxHeadBytes bounds a request head, as net/http's server's default
// MaxHeaderBytes did.
const maxHeadBytes = 1 << 20

// finishRequest skips what the handler did not read of the body, up to a
// point, so that the next request starts where it should; false ends the
// connection.
func finishRequest(req *apiRequest) bool {
	if req.close {
		return false
	}
	n, err := io.Copy(io.Discard, io.LimitReader(&req.body, maxDrain+1))
	return err == nil && n <= maxDrain
}

// await reads the result of inv, which deliver wrote on w, on the
// invocation's own goroutine, then gives the connection back to its
// goroutine. It returns early (leaving the rest to that goroutine) at the
// invocation's deadline, when ctx ends, when the result came on another
// connection, when the connection fails and when the runtime sends anything
// but a result.
func (a *runtimeAPI) await(ctx context.Context, w *nextWaiter, inv *invocation) {
	in := a.in
	defer close(w.written)
	if w.close {
		return
	}
	in.mu.Lock()
	in.waiting = w
	in.mu.Unlock()
	if ctx.Done() != nil {
		defer context.AfterFunc(ctx, w.stop)()
	}
	defer func() {
		in.mu.Lock()
		in.waiting = nil
		in.mu.Unlock()
		w.c.SetReadDeadline(time.Time{})
	}()
	w.c.SetReadDeadline(inv.deadline)
	for len(inv.done) == 0 {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		w.idle = true
		w.mu.Unlock()
		_, err := w.br.Peek(1)
		w.mu.Lock()
		w.idle = false
		w.mu.Unlock()
		if err != nil {
			return // the deadline, a stop, or the connection's end: its goroutine sees which
		}
		// A request has begun: it is read whole, whatever stops await,
		// by the invocation's deadline.
		req, ok := readRequest(w.c, w.br, w.head, 0)
		if !ok {
			w.close = true
			return
		}
		if req.method != http.MethodPost || !strings.HasPrefix(req.path, apiPrefix+"invocation/") {
			w.pending = req
			return
		}
		req.acceptLater = true
		keep, _ := a.handle(w.c, w.br, w.head, req)
		if req.accepted {
			w.accepted, w.acceptedClose = true, req.close
		}
		if !keep || !finishRequest(req) {
			w.close = true
			return
		}
	}
}

// stop makes await give the connection back: at once if it is waiting for
// a request, else once the request it reads is answered.
func (w *nextWaiter) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.idle {
		w.c.SetReadDeadline(time.Unix(1, 0))
	}
	w.mu.Unlock()
}

// handle answers one request; keep false closes the connection. next is a
// request already read, to be served next.
func (a *runtimeAPI) handle(c net.Conn, br *bufio.Reader, head *h1.Request, r *apiRequest) (keep bool, next *apiRequest) {
	in := a.in
	cl := r.close
	rest, ok := strings.CutPrefix(r.path, apiPrefix)
	if !ok {
		return apiError(c, http.StatusNotFound, "UnknownPath", "unknown path "+r.path, cl), nil
	}
	switch {
	case rest == "invocation/next":
		if r.method != http.MethodGet {
			return apiError(c, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET", cl), nil
		}
		return a.next(c, br, head, r)
	case rest == "init/error":
		if r.method != http.MethodPost {
			return apiError(c, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST", cl), nil
		}
		continueBody(c, r)
		body, _ := io.ReadAll(io.LimitReader(&r.body, 1<<20))
		body = errorDocument(body, r.errorType, "Runtime.InitError")
		select {
		case in.initErr <- body:
		default:
		}
		return apiStatus(c, cl), nil
	case strings.HasPrefix(rest, "invocation/"):
		id, kind, ok := strings.Cut(strings.TrimPrefix(rest, "invocation/"), "/")
		if !ok || (kind != "response" && kind != "error") {
			return apiError(c, http.StatusNotFound, "UnknownPath", "unknown path "+r.path, cl), nil
		}
		if r.method != http.MethodPost {
			return apiError(c, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST", cl), nil
		}
		return a.result(c, r, id, kind == "error"), nil
	default:
		return apiError(c, http.StatusNotFound, "UnknownPath", "unknown path "+r.path, cl), nil
	}
}

// next parks the connection until an invocation was written on it and
// await gave it back.
func (a *runtimeAPI) next(c net.Conn, br *bufio.Reader, head *h1.Request, r *apiRequest) (bool, *apiRequest) {
	in := a.in
	in.readyOnce.Do(func() { close(in.ready) })
	w := &nextWaiter{c: c, br: br, head: head, close: r.close, written: make(chan struct{})}
	select {
	case in.next <- w:
	case <-a.done:
		return false, nil
	}
	select {
	case <-w.written:
		if w.accepted && !apiStatus(c, w.acceptedClose) {
			return false, nil
		}
		return !w.close, w.pending
	case <-a.done:
		return false, nil
	}
}

// deliver hands inv to the runtime waiting in w, on the caller's goroutine.
func (in *instance) deliver(w *nextWaiter, inv *invocation) {
	in.mu.Lock()
	in.cur = inv
	in.mu.Unlock()
	// What the function writes from now on is inv's (see output), and
	// START goes before it: the function has not seen inv yet.
	in.out.begin(inv.id)
	in.fn.ring.add(LogLine{Time: time.Now(), RequestID: inv.id, Stream: "platform", Text: "START RequestId: " + inv.id + " Version: $LATEST"})
	room := 512
	if len(inv.payload) <= 16<<10 {
		room += len(inv.payload) // the event joins its head in one write
	}
	b := make([]byte, 0, room)
	b = append(b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"...)
	b = appendHeader(b, "Lambda-Runtime-Aws-Request-Id", inv.id)
	b = appendHeader(b, "Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	b = appendHeader(b, "Lambda-Runtime-Invoked-Function-Arn", inv.arn)
	b = appendHeader(b, "Lambda-Runtime-Trace-Id", inv.traceID)
	if inv.clientContext != "" {
		b = appendHeader(b, "Lambda-Runtime-Client-Context", inv.clientContext)
	}
	b = appendEnd(b, len(inv.payload), w.close)
	c := w.c // a *net.TCPConn writes net.Buffers in one writev
	var err error
	if len(inv.payload) <= 16<<10 {
		_, err = c.Write(append(b, inv.payload...))
	} else {
		bufs := net.Buffers{b, inv.payload}
		_, err = bufs.WriteTo(c)
	}
	if err != nil {
		w.close = true // the runtime asks again on a new connection
	}
}

// result reads the runtime's result for the invocation it holds.
func (a *runtimeAPI) result(c net.Conn, r *apiRequest, id string, failed bool) bool {
	in := a.in
	cl := r.close
	in.mu.Lock()
	inv := in.cur
	if inv == nil || inv.id != id {
		in.mu.Unlock()
		return apiError(c, http.StatusBadRequest, "InvalidRequestID", "invalid request id "+strconv.Quote(id), cl)
	}
	in.cur = nil
	in.mu.Unlock()

	limit := inv.maxResponse
	continueBody(c, r)
	body, err := readBody(r, limit+1)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Read by await past the invocation's deadline: the invocation
		// has timed out, which the host reports.
		return false
	}
	if err != nil {
		inv.finish(result{failed: true, payload: errorJSON("Runtime.ResponseError", "reading the response: "+err.Error())})
		apiError(c, http.StatusBadRequest, "InvalidRequest", err.Error(), true)
		return false
	}
	if int64(len(body)) > limit {
		inv.finish(result{tooLarge: true})
		return apiError(c, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", limit), cl)
	}
	if failed {
		body = errorDocument(body, r.errorType, "Runtime.Unknown")
	}
	inv.finish(result{payload: body, failed: failed})
	in.mu.Lock()
	if w := in.waiting; w != nil && w.c != c {
		w.stop() // the result came on another connection
	}
	in.mu.Unlock()
	if r.acceptLater {
		r.accepted = true
		return !cl
	}
	return apiStatus(c, cl)
}

// readBody reads up to n bytes of r's body, in one allocation when the
// length is known.
func readBody(r *apiRequest, n int64) ([]byte, error) {
	if r.length >= 0 && r.length < n {
		b := make([]byte, r.length)
		_, err := io.ReadFull(&r.body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(&r.body, n))
}

// continueBody answers "Expect: 100-continue" before the body is read, as
// net/http's server does.
func continueBody(c net.Conn, r *apiRequest) {
	if r.expect {
		r.expect = false
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
	}
}

func apiStatus(c net.Conn, close bool) bool {
	return writeAPI(c, http.StatusAccepted, []byte(`{"status":"OK"}`), close)
}

func apiError(c net.Conn, status int, typ, msg string, close bool) bool {
	return writeAPI(c, status, errorJSON(typ, msg), close)
}

// writeAPI writes a JSON response; it reports whether the connection may
// serve another request.
func writeAPI(c net.Conn, status int, body []byte, close bool) bool {
	b := make([]byte, 0, 128+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: application/json\r\n"...)
	b = appendEnd(b, len(body), close)
	b = append(b, body...)
	_, err := c.Write(b)
	return err == nil && !close
}

// appendHeader appends a header line; CR and LF in the value become
// spaces, as net/http writes them.
func appendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' {
			b = append(b, ' ')
		} else {
			b = append(b, c)
		}
	}
	return append(b, "\r\n"...)
}

// appendEnd ends a head: Content-Length, Connection: close when asked.
func appendEnd(b []byte, n int, close bool) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\r\n"...)
	if close {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}
