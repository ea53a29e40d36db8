package fnhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runtimeAPI serves the Runtime API to one instance on its own listener.
//
// It is a small HTTP/1.1 loop of its own, not net/http's server: the
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
// resumes afterwards, off the invocation's path. A result that comes on
// another connection, the invocation's deadline and its caller leaving make
// await give the connection back at once (stop); a request await does not
// serve (a /next) goes back with it.
type runtimeAPI struct {
	in   *instance
	ln   net.Listener
	done chan struct{} // closed by close

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// nextWaiter is a runtime's GET /next waiting for an invocation.
type nextWaiter struct {
	c       net.Conn
	br      *bufio.Reader
	close   bool          // the connection is to be closed
	written chan struct{} // closed once the invocation was written on c and its result awaited
	pending *http.Request // a request await read but left to the connection's goroutine

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
	return &runtimeAPI{in: in, ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
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
	c = &limitedConn{Conn: c, left: -1}
	br := bufio.NewReaderSize(c, 4<<10)
	var req *http.Request
	for {
		if req == nil {
			// An idle connection waits without a deadline (the runtime
			// posts its result when the function is done).
			if _, err := br.Peek(1); err != nil {
				return
			}
			var ok bool
			if req, ok = readRequest(c, br, true); !ok {
				return
			}
		}
		keep, next := a.handle(c, br, req)
		if !keep || !finishRequest(req) {
			return
		}
		req = next
	}
}

// readRequest reads a request whose first byte is in br: the head must come
// whole within maxHeadBytes and, with timed, within apiHeaderTimeout (the
// read deadline is none after it). A malformed one is answered 400 (431
// when too large) and ends the connection (false).
func readRequest(c net.Conn, br *bufio.Reader, timed bool) (*http.Request, bool) {
	lc, _ := c.(*limitedConn)
	if lc != nil {
		lc.left = maxHeadBytes + int64(br.Size()) // what br holds already was read under the limit too
	}
	if timed {
		c.SetReadDeadline(time.Now().Add(apiHeaderTimeout))
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		if lc != nil && lc.left == 0 {
			refuse(c, http.StatusRequestHeaderFieldsTooLarge, errorJSON("InvalidRequest", "request head over 1 MiB"))
		} else {
			refuse(c, http.StatusBadRequest, errorJSON("InvalidRequest", "malformed request: "+err.Error()))
		}
		return nil, false
	}
	if lc != nil {
		lc.left = -1
	}
	if timed {
		c.SetReadDeadline(time.Time{})
	}
	return req, true
}

// refuse answers a request that cannot be read and lets the runtime read
// the answer before the connection goes: closing it with bytes unread
// would reset it and lose the answer (net/http's server waits the same
// way).
func refuse(c net.Conn, status int, body []byte) {
	writeAPI(c, status, body, true)
	if lc, ok := c.(*limitedConn); ok {
		c = lc.Conn
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(c, 4<<20))
}

// maxHeadBytes bounds a request head, as net/http's server's default
// MaxHeaderBytes did.
const maxHeadBytes = 1 << 20

// limitedConn is a runtime's connection whose reads stop after left bytes
// while a request head is read (left < 0: no limit).
type limitedConn struct {
	net.Conn
	left int64
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if c.left > 0 && int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	if c.left > 0 {
		c.left -= int64(n)
	}
	return n, err
}

// finishRequest skips what the handler did not read of the body, up to a
// point, so that the next request starts where it should; false ends the
// connection.
func finishRequest(req *http.Request) bool {
	if req.Close {
		return false
	}
	n, err := io.Copy(io.Discard, io.LimitReader(req.Body, maxDrain+1))
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
		req, ok := readRequest(w.c, w.br, false)
		if !ok {
			w.close = true
			return
		}
		if req.Method != http.MethodPost || !strings.HasPrefix(req.URL.Path, apiPrefix+"invocation/") {
			w.pending = req
			return
		}
		if keep, _ := a.handle(w.c, w.br, req); !keep || !finishRequest(req) {
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
func (a *runtimeAPI) handle(c net.Conn, br *bufio.Reader, r *http.Request) (keep bool, next *http.Request) {
	in := a.in
	cl := r.Close
	rest, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	if !ok {
		return apiError(c, http.StatusNotFound, "UnknownPath", "unknown path "+r.URL.Path, cl), nil
	}
	switch {
	case rest == "invocation/next":
		if r.Method != http.MethodGet {
			return apiError(c, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET", cl), nil
		}
		return a.next(c, br, r)
	case rest == "init/error":
		if r.Method != http.MethodPost {
			return apiError(c, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST", cl), nil
		}
		continueBody(c, r)
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		body = errorDocument(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"), "Runtime.InitError")
		select {
		case in.initErr <- body:
		default:
		}
		return apiStatus(c, cl), nil
	case strings.HasPrefix(rest, "invocation/"):
		id, kind, ok := strings.Cut(strings.TrimPrefix(rest, "invocation/"), "/")
		if !ok || (kind != "response" && kind != "error") {
			return apiError(c, http.StatusNotFound, "UnknownPath", "unknown path "+r.URL.Path, cl), nil
		}
		if r.Method != http.MethodPost {
			return apiError(c, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST", cl), nil
		}
		return a.result(c, r, id, kind == "error"), nil
	default:
		return apiError(c, http.StatusNotFound, "UnknownPath", "unknown path "+r.URL.Path, cl), nil
	}
}

// next parks the connection until an invocation was written on it and
// await gave it back.
func (a *runtimeAPI) next(c net.Conn, br *bufio.Reader, r *http.Request) (bool, *http.Request) {
	in := a.in
	in.readyOnce.Do(func() { close(in.ready) })
	w := &nextWaiter{c: c, br: br, close: r.Close, written: make(chan struct{})}
	select {
	case in.next <- w:
	case <-a.done:
		return false, nil
	}
	select {
	case <-w.written:
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
	b := make([]byte, 0, 512)
	b = append(b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"...)
	b = appendHeader(b, "Lambda-Runtime-Aws-Request-Id", inv.id)
	b = appendHeader(b, "Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	b = appendHeader(b, "Lambda-Runtime-Invoked-Function-Arn", inv.arn)
	b = appendHeader(b, "Lambda-Runtime-Trace-Id", inv.traceID)
	if inv.clientContext != "" {
		b = appendHeader(b, "Lambda-Runtime-Client-Context", inv.clientContext)
	}
	b = appendEnd(b, len(inv.payload), w.close)
	c := w.c
	if lc, ok := c.(*limitedConn); ok {
		c = lc.Conn // a *net.TCPConn writes net.Buffers in one writev
	}
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
func (a *runtimeAPI) result(c net.Conn, r *http.Request, id string, failed bool) bool {
	in := a.in
	cl := r.Close
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
		body = errorDocument(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"), "Runtime.Unknown")
	}
	inv.finish(result{payload: body, failed: failed})
	in.mu.Lock()
	if w := in.waiting; w != nil && w.c != c {
		w.stop() // the result came on another connection
	}
	in.mu.Unlock()
	return apiStatus(c, cl)
}

// readBody reads up to n bytes of r's body, in one allocation when the
// length is known.
func readBody(r *http.Request, n int64) ([]byte, error) {
	if r.ContentLength >= 0 && r.ContentLength < n {
		b := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(r.Body, n))
}

// continueBody answers "Expect: 100-continue" before the body is read, as
// net/http's server does.
func continueBody(c net.Conn, r *http.Request) {
	if strings.EqualFold(r.Header.Get("Expect"), "100-continue") && r.ProtoAtLeast(1, 1) {
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
