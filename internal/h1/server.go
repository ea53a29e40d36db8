package h1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.1 on plain connections: the subset of http.Server
// that turnout's edge uses, with the same behaviour as seen by a handler.
// Handler nil means http.DefaultServeMux, as for net/http.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request head: from the
	// connection's accept for the first request, from the head's first
	// byte for later ones. 0 means none.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. 0 means none.
	IdleTimeout time.Duration
	// MaxHeaderBytes is the largest request head accepted, request line
	// included; a larger one is answered 431. 0 means 1 MiB, like
	// net/http's default.
	MaxHeaderBytes int
	// ErrorLog receives handler panics and misuse; nil means the log
	// package's standard logger.
	ErrorLog *log.Logger
	// ConnState is called as net/http calls it: New on accept, Active
	// (when a request's first bytes have arrived, where net/http waits
	// for the whole head), Idle after a response, Hijacked, Closed.
	ConnState func(net.Conn, http.ConnState)

	closed    atomic.Bool
	nextID    atomic.Uint64
	watchOnce sync.Once
	watch     [8]watchList
	poll      atomic.Pointer[poller] // see Server.poller
	pollMu    sync.Mutex
	pollTried bool // under pollMu
	listeners Listeners
	mu        sync.Mutex
	conns     map[*conn]struct{}
}

const (
	defaultMaxHead = 1 << 20
	// maxPostHandlerRead is how much unread request body is drained after
	// the handler to keep the connection (net/http's rule).
	maxPostHandlerRead = 256 << 10
	// lingerTimeout bounds the wait for the client to close after a
	// response the connection closes on with input possibly unread.
	lingerTimeout = 500 * time.Millisecond
)

func (s *Server) maxHead() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return defaultMaxHead
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// Serve accepts connections on l and serves each on its own goroutine. It
// returns http.ErrServerClosed after Shutdown or Close, else the error that
// stopped Accept.
func (s *Server) Serve(l net.Listener) error {
	if !s.listeners.Add(l) {
		return http.ErrServerClosed
	}
	defer s.listeners.Remove(l)
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closed.Load() {
				return http.ErrServerClosed
			}
			if AcceptBackoff(err, &delay, func(f string, a ...any) { s.logf("h1: "+f, a...) }) {
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, nc)
		if !s.trackConn(c) {
			nc.Close()
			return http.ErrServerClosed
		}
		c.setState(http.StateNew)
		go c.serve()
	}
}

func (s *Server) trackConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections and waits for active
// ones to finish their request, as net/http's Shutdown does: a connection
// that ends a response during Shutdown closes instead of staying alive. It
// returns ctx's error if ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closed.Store(true)
	lerr := s.listeners.Close()
	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if s.closeIdle() {
			s.closePoller()
			return lerr
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			poll = min(2*poll, 500*time.Millisecond)
			t.Reset(poll)
		}
	}
}

// closeIdle closes idle connections (and new ones that sent nothing for 5
// seconds, as net/http does) and reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	quiet := true
	old := time.Now().Unix() - 5
	for c := range s.conns {
		st, since := c.getState()
		if st == http.StateNew && since < old {
			st = http.StateIdle
		}
		if st != http.StateIdle {
			quiet = false
			continue
		}
		c.nc.Close()
		delete(s.conns, c)
	}
	return quiet
}

// Close closes the listeners and every connection at once, hijacked ones
// excepted, as net/http's Close does.
func (s *Server) Close() error {
	s.closed.Store(true)
	err := s.listeners.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
		c.closedWatch()
		delete(s.conns, c)
	}
	s.closePoller()
	return err
}

// conn is one client connection. Between requests it holds no buffer: buf
// is nil, and the goroutine waits for readability (see fill).
type conn struct {
	srv    *Server
	nc     net.Conn
	rc     syscall.RawConn // nil when nc is not a syscall.Conn
	ctx    context.Context // carries http.LocalAddrContextKey
	remote string
	state  atomic.Uint64 // http.ConnState | unix seconds<<8

	buf  []byte // pooled read buffer; buf[r:w] is read and unconsumed
	r, w int

	req  Request
	resp response
	src  connReader // r.Body's and chunked readers' view of the connection
	keys []string   // reused for sorting response header keys
	out  net.Buffers
	bufs [4][]byte

	// rawRead's results; rawFn is rawRead as a func value, made once.
	rawFn  func(uintptr) bool
	rawN   int
	rawErr error

	// The hang-up watcher; see armWatch. wgen changes when a watch is
	// armed and when it ends; wrun is true while a watch goroutine runs;
	// polled is true once the socket is registered with the server's
	// poller, for the connection's life, and hup once the poller has
	// reported the client's close (or an error). serving (the handler
	// runs), armed, wrun, polled, hup and pw are guarded by wmu: a body
	// read in another goroutine may arm the watch, and the poller's
	// goroutine reports.
	id      uint64
	cancel  context.CancelFunc // cancelRequest, bound once
	rctx    *reqCtx            // the request's context
	serving bool
	armed   bool
	wgen    atomic.Uint64
	wmu     sync.Mutex
	wrun    bool
	wdone   chan struct{}
	peeked  bool // the fallback watch read peekB[0]
	peekB   [1]byte
	polled  bool
	hup     bool
	pw      *pollWatch // made at the first registration

	hijacked bool

	// rdl is the read deadline last set (zero: none); rdlStale says it is
	// left from the head's wait and must go before the handler's reads.
	rdl      time.Time
	rdlStale bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String(), id: s.nextID.Add(1)}
	c.ctx = context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr())
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.rawFn = c.rawRead
		}
	}
	c.src.c = c
	c.resp.c = c
	c.cancel = c.cancelRequest
	c.wdone = make(chan struct{}, 1)
	return c
}

func (c *conn) setState(st http.ConnState) {
	// The time is read only for StateNew, the one state whose age
	// closeIdle asks (twice per request for the others cost 2 % of the
	// CPU under load).
	var since int64
	if st == http.StateNew {
		since = time.Now().Unix()
	}
	c.state.Store(uint64(st) | uint64(since)<<8)
	if st == http.StateClosed || st == http.StateHijacked {
		c.srv.forget(c)
	}
	if h := c.srv.ConnState; h != nil {
		h(c.nc, st)
	}
}

// cancelRequest cancels the current request's context.
func (c *conn) cancelRequest() {
	if c.rctx != nil {
		c.rctx.cancel()
	}
}

func (c *conn) getState() (http.ConnState, int64) {
	v := c.state.Load()
	return http.ConnState(v & 0xff), int64(v >> 8)
}

// serve runs the connection's request loop.
func (c *conn) serve() {
	defer func() {
		if err := recover(); err != nil {
			c.logPanic(err)
		}
		c.releaseWatch()
		if !c.hijacked {
			c.nc.Close()
			c.releaseBuf()
			c.setState(http.StateClosed)
		}
	}()
	for first := true; ; first = false {
		if err := c.readHead(first); err != nil {
			var herr *Error
			if errors.As(err, &herr) {
				c.refuse(herr.Status, herr.Reason)
			}
			return
		}
		if !c.serveRequest() || c.srv.closed.Load() {
			return
		}
		c.setState(http.StateIdle)
	}
}

func (c *conn) logPanic(err any) {
	if err == http.ErrAbortHandler {
		return
	}
	const size = 64 << 10
	buf := make([]byte, size)
	buf = buf[:runtime.Stack(buf, false)]
	c.srv.logf("http: panic serving %v: %v\n%s", c.remote, err, buf)
}

// readHead reads until buf holds a complete request head, parsed into
// c.req. Deadlines follow net/http: ReadHeaderTimeout from accept for the
// first request; IdleTimeout while waiting for a later one, then
// ReadHeaderTimeout from its first byte — set only when the head needs
// another read, since a head that arrives whole (nearly all of them) is
// parsed before any timeout could matter.
//
// Moving a deadline is a runtime timer update; net/http pays three per
// request (idle, header, none). Here a keep-alive connection in steady use
// pays none: the idle deadline is left in place while it is at most 1/64
// of IdleTimeout earlier than asked (an idle connection may be closed that
// much early), and the deadline left from the head's wait is cleared only
// before the handler's first read of the connection (see clearStale), not
// after every head.
func (c *conn) readHead(first bool) error {
	s := c.srv
	maxHead := s.maxHead()
	headerDeadline := first
	if first {
		if d := s.ReadHeaderTimeout; d > 0 {
			c.setReadDeadline(time.Now().Add(d))
		}
	} else if d := s.IdleTimeout; d > 0 {
		if want := time.Now().Add(d); !deadlineNear(c.rdl, want, d/64) {
			c.setReadDeadline(want)
		}
	} else if !c.rdl.IsZero() {
		c.setReadDeadline(time.Time{})
	}
	// pending: the head has begun and its next read needs the header
	// timeout.
	pending := false
	scanned, sawLF, arrived := 0, false, false
	for {
		if n := c.w - c.r; n > scanned {
			if !arrived {
				// A request is arriving: from here on, closing the
				// connection would cut it off (net/http says Active
				// once the head is read; a connection wrapper that
				// tracks reads cannot see the idle wait's raw reads).
				arrived = true
				c.setState(http.StateActive)
			}
			if !headerDeadline {
				headerDeadline, pending = true, true
			}
			// Empty lines before a request line are skipped (RFC 9112
			// §2.2 ¶6; net/http skips them after a POST, for clients
			// that end a body with an extra CRLF).
			if scanned == 0 {
				for n >= 2 && c.buf[c.r] == '\r' && c.buf[c.r+1] == '\n' {
					c.r, n = c.r+2, n-2
				}
				if n == 0 || n == 1 && c.buf[c.r] == '\r' {
					if pending {
						pending = false
						c.headerDeadline()
					}
					if err := c.fill(maxHead); err != nil {
						return err
					}
					continue
				}
			}
			// Parse only when the new bytes may end the head (or the
			// request line, to refuse garbage early), so that a head
			// trickled in a byte at a time is not parsed once a byte.
			b := c.buf[c.r:c.w]
			from := max(scanned-2, 0)
			parse := n >= maxHead
			if !sawLF && bytes.IndexByte(b[scanned:], '\n') >= 0 {
				sawLF, parse = true, true
			} else if !parse {
				parse = endsHead(b[from:])
			}
			scanned = n
			if parse {
				err := Parse(&c.req, b, maxHead)
				if err == nil {
					c.rdlStale = !c.rdl.IsZero()
					return nil
				}
				if err != ErrIncomplete {
					return err
				}
			}
		}
		if pending {
			pending = false
			c.headerDeadline()
		}
		if err := c.fill(maxHead); err != nil {
			return err
		}
	}
}

// headerDeadline starts the header timeout of a request whose head has
// begun to arrive and needs another read (none without ReadHeaderTimeout:
// the idle deadline is lifted).
func (c *conn) headerDeadline() {
	if d := c.srv.ReadHeaderTimeout; d > 0 {
		c.setReadDeadline(time.Now().Add(d))
	} else if !c.rdl.IsZero() {
		c.setReadDeadline(time.Time{})
	}
}

// setReadDeadline sets the connection's read deadline and remembers it.
// Every read deadline the server or a handler sets goes through it.
func (c *conn) setReadDeadline(t time.Time) error {
	c.rdl, c.rdlStale = t, false
	return c.nc.SetReadDeadline(t)
}

// clearStale lifts the deadline left from waiting for the head before
// anything else reads the connection: a handler's reads have no deadline
// unless it sets one, as with net/http.
func (c *conn) clearStale() {
	if c.rdlStale {
		c.setReadDeadline(time.Time{})
	}
}

// deadlineNear reports whether the deadline in place, have, fires no later
// than want and at most slack before it.
func deadlineNear(have, want time.Time, slack time.Duration) bool {
	return !have.IsZero() && !have.After(want) && want.Sub(have) <= slack
}

// endsHead reports whether b holds an empty line's end: "\n\n" or
// "\n\r\n" (a bare LF is refused by Parse, but it must get to say so).
func endsHead(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 || i+1 >= len(b) {
			return false
		}
		b = b[i+1:]
		if b[0] == '\n' || (b[0] == '\r' && len(b) > 1 && b[1] == '\n') {
			return true
		}
	}
}

// fill reads more of the connection into buf. With no buffer held (an
// idle connection) it waits for readability first and takes a pooled
// buffer only once there are bytes to read.
func (c *conn) fill(maxHead int) error {
	if c.buf == nil {
		if c.rc != nil {
			c.rawN, c.rawErr = 0, nil
			if err := c.rc.Read(c.rawFn); err != nil {
				return err
			}
			if c.rawErr != nil {
				return c.rawErr
			}
			if c.rawN == 0 {
				c.releaseBuf()
				return io.EOF
			}
			c.r, c.w = 0, c.rawN
			return nil
		}
		c.buf, c.r, c.w = getBuf(), 0, 0
	}
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	if c.w == len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		} else {
			// A head larger than the buffer: grow up to the limit.
			nb := make([]byte, min(2*len(c.buf), max(maxHead, len(c.buf)+1)))
			copy(nb, c.buf[:c.w])
			putBuf(c.buf)
			c.buf = nb
		}
	}
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// rawRead is the syscall.RawConn.Read callback of an idle connection: it
// takes a buffer only for as long as a read takes, and gives it back when
// there is nothing to read (EAGAIN), so that the wait holds none.
func (c *conn) rawRead(fd uintptr) bool {
	b := getBuf()
	for {
		n, err := syscall.Read(int(fd), b)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			putBuf(b)
			return false
		}
		if err != nil {
			putBuf(b)
			c.rawErr = err
			return true
		}
		c.buf, c.rawN = b, n
		return true
	}
}

// releaseBuf gives the read buffer back when it holds nothing unread.
func (c *conn) releaseBuf() {
	if c.buf != nil && c.r == c.w {
		putBuf(c.buf)
		c.buf, c.r, c.w = nil, 0, 0
	}
}

// refuse answers a request head the server cannot serve and closes.
func (c *conn) refuse(status int, reason string) {
	text := http.StatusText(status)
	body := make([]byte, 0, 128)
	body = appendInt(body, int64(status))
	body = append(body, ' ')
	body = append(body, text...)
	if reason != "" && status != http.StatusRequestHeaderFieldsTooLarge {
		body = append(body, ": "...)
		body = append(body, reason...)
	}
	out := make([]byte, 0, 256+len(body))
	out = appendStatusLine(out, status)
	out = append(out, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	out = appendInt(out, int64(len(body)))
	out = append(out, "\r\n\r\n"...)
	out = append(out, body...)
	c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
	if _, err := c.nc.Write(out); err == nil {
		c.linger()
	}
}

// linger half-closes and reads what the client still sends until it
// closes (bounded), so that closing with unread input does not reset the
// connection before the client has read the response (net/http sleeps
// instead).
func (c *conn) linger() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.setReadDeadline(time.Now().Add(lingerTimeout))
	b := getBuf()
	defer putBuf(b)
	for total := 0; total < maxPostHandlerRead; {
		n, err := c.nc.Read(b)
		total += n
		if err != nil {
			return
		}
	}
}

// serveRequest builds the request, runs the handler and finishes the
// response. It reports whether the connection can carry another request.
func (c *conn) serveRequest() bool {
	p := &c.req
	req, err := c.newRequest()
	if err != nil {
		c.consume(p.HeadLen)
		c.refuse(http.StatusBadRequest, err.Error())
		return false
	}
	c.consume(p.HeadLen)
	w := &c.resp
	w.reset(req)
	var b *body
	if req.Body != http.NoBody {
		b = req.Body.(*body)
	}
	c.wmu.Lock()
	c.serving = true
	c.wmu.Unlock()
	if b == nil {
		c.armWatch()
	}
	panicked := true
	func() {
		defer func() {
			if panicked {
				if err := recover(); err != nil {
					c.logPanic(err)
				}
			}
		}()
		h := c.srv.Handler
		if h == nil {
			h = http.DefaultServeMux // as net/http
		}
		if req.RequestURI == "*" && req.Method == "OPTIONS" {
			h = globalOptions // net/http answers these itself
		}
		h.ServeHTTP(w, req)
		panicked = false
	}()
	c.stopWatch()
	if c.hijacked {
		c.cancel()
		return false
	}
	keep := false
	if !panicked {
		keep = w.finish()
	}
	c.cancel()
	bodyDone := true
	if b != nil {
		b.mu.Lock()
		bodyDone = b.sawEOF
		b.closed = true
		b.mu.Unlock()
	}
	keep = keep && bodyDone
	w.release()
	if !keep {
		// A client that asked to close and whose request was read to
		// its end sends nothing more: close at once. Otherwise input
		// may be unread, and closing would reset the connection.
		if !panicked && w.err == nil && (!req.Close || !bodyDone || c.r < c.w) {
			c.linger()
		}
		return false
	}
	if w.deadlineSet {
		c.nc.SetWriteDeadline(time.Time{})
	}
	c.releaseBuf()
	return true
}

func (c *conn) consume(n int) {
	c.r += n
}

// newRequest builds the *http.Request from c.req as net/http's readRequest
// does: one string holds the head, and the header's keys and values are
// slices of it, unless a key is not canonical.
func (c *conn) newRequest() (*http.Request, error) {
	p := &c.req
	base := c.buf[c.r:]
	head := string(base[:p.HeadLen])
	sub := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		i := cap(base) - cap(b)
		return head[i : i+len(b)]
	}
	target := sub(p.Target)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, errors.New("malformed request target")
	}
	hdr := make(http.Header, len(p.Fields))
	vals := make([]string, len(p.Fields))
	for i, f := range p.Fields {
		var key string
		if isCanonical(f.Name) {
			key = sub(f.Name)
		} else {
			key = http.CanonicalHeaderKey(sub(f.Name))
		}
		if key == "Host" {
			continue // net/http moves it to Request.Host
		}
		vals[i] = sub(f.Value)
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, vals[i])
		} else {
			hdr[key] = vals[i : i+1 : i+1]
		}
	}
	if pr := hdr["Pragma"]; len(pr) > 0 && pr[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	host := u.Host
	if host == "" {
		host = sub(p.Host)
	}
	rv := http.Request{
		Method:     p.Method,
		URL:        u,
		Proto:      p.Proto(),
		ProtoMajor: 1,
		ProtoMinor: p.ProtoMinor,
		Header:     hdr,
		Body:       http.NoBody,
		Close:      p.Close,
		Host:       host,
		RemoteAddr: c.remote,
		RequestURI: target,
	}
	switch {
	case p.Chunked:
		rv.ContentLength = -1
		rv.TransferEncoding = []string{"chunked"}
		delete(hdr, "Transfer-Encoding")
		rv.Body = c.newBody(-1, p.Expect100)
	case p.ContentLength > 0:
		rv.ContentLength = p.ContentLength
		rv.Body = c.newBody(p.ContentLength, p.Expect100 && p.ProtoMinor == 1)
	}
	c.rctx = newReqCtx(c.ctx)
	return rv.WithContext(c.rctx), nil
}

// isCanonical reports whether name is already in http.CanonicalHeaderKey's
// form, so that it can be used as it is.
func isCanonical(name []byte) bool {
	upper := true
	for _, ch := range name {
		switch {
		case upper && 'a' <= ch && ch <= 'z', !upper && 'A' <= ch && ch <= 'Z':
			return false
		}
		upper = ch == '-'
	}
	return true
}

// armWatch watches the connection for the client hanging up while the
// handler runs, so that r.Context() is cancelled as net/http cancels it.
// net/http pays a goroutine and a read per request for that; here a
// request pays nothing more than this function's lock on a connection
// already watched, and an append to a list on one not yet watched.
//
// On Linux a connection is watched by the server's poller (see poller):
// its socket is registered, once for the connection's life, with one
// epoll instance for all connections, for the client's close only
// (EPOLLRDHUP, one-shot: the data of a next request does not wake it).
// The poller's report sets hup; a watched request is then cancelled
// unless a peek (MSG_PEEK, which consumes nothing) finds bytes of a
// pipelined request still unread, and a request armed after the report
// peeks at once. No goroutine, deadline, timer or system call per
// request; stopWatch only clears armed.
//
// A connection is registered when a handler on it outlives the sweep
// that follows its arming: a sweep every watchPeriod (one timer per
// shard of connections, running only while something waits) registers
// each connection whose handler has run for at least watchSweeps whole
// periods, 1–2 ms. A connection whose handlers all end sooner never
// costs the registration's system call. Elsewhere than Linux, or when
// the poller cannot be had, the sweep starts a goroutine per watch
// instead, which waits for readability (syscall.RawConn.Read) and peeks
// the same way, and stopWatch ends it with a past read deadline; a
// connection that is not a syscall.Conn is watched with a one-byte read.
// A watch is armed when the request has no body, or once its body has
// been read to the end.
//
// The delay, decided by measuring (docs/performance.md, "No background
// read per request"): with a goroutine per watch, or with a registration
// per watched request (epoll_ctl to add and to delete), the watch cost
// 5–10% of turnout's CPU at 256 connections, where nearly every handler
// outlives 2 ms. Watching only handlers still running after 10–15 ms
// (a sweep every 5 ms) cut the per-request registration to 1.4–2.1%, but
// a hang-up in a request's first 10 ms would go unseen as long. With one
// registration per connection the watch costs about 1% at any delay, so
// the delay stays at 1–2 ms: it spares the system call only to
// connections whose handlers all end sooner, and a hang-up cancels the
// origin or function call within a few ms of the handler's start, at
// once after that.
//
// A per-request time.AfterFunc was the first idea; resetting a timer on
// every request wakes the network poller and cost more than the rest of
// the request (BenchmarkServer: 37 µs against 24 µs without).
func (c *conn) armWatch() {
	c.wmu.Lock()
	arm := c.serving && !c.armed && c.r == c.w
	var gen uint64
	if arm {
		c.armed = true
		gen = c.wgen.Add(1)
		if c.polled {
			// Watched for the connection's life already.
			if c.hup {
				c.checkHangUp()
			}
			c.wmu.Unlock()
			return
		}
	}
	c.wmu.Unlock()
	if arm {
		c.srv.watchShard(c).add(c, gen)
	}
}

// watchShard spreads connections over a few lists, so that arming does not
// contend on one lock.
func (s *Server) watchShard(c *conn) *watchList {
	s.watchOnce.Do(func() {
		for i := range s.watch {
			s.watch[i].srv = s
			s.watch[i].timer = time.AfterFunc(time.Hour, s.watch[i].sweep)
			s.watch[i].timer.Stop()
		}
	})
	return &s.watch[c.id%uint64(len(s.watch))]
}

type watchList struct {
	srv     *Server
	mu      sync.Mutex
	epoch   uint64
	pending []watchEntry
	timer   *time.Timer
	ticking bool
	due     []watchEntry // the sweep's, outside mu: one sweep at a time
}

type watchEntry struct {
	c          *conn
	gen, epoch uint64
}

const (
	watchPeriod = time.Millisecond
	watchSweeps = 1
)

func (l *watchList) add(c *conn, gen uint64) {
	l.mu.Lock()
	l.pending = append(l.pending, watchEntry{c, gen, l.epoch})
	if !l.ticking {
		l.ticking = true
		l.timer.Reset(watchPeriod)
	}
	l.mu.Unlock()
}

// sweep starts watching the handlers armed watchSweeps sweeps ago or
// earlier and still running, drops those that ended, and keeps the rest
// for the next. The watches start outside the list's lock (registering
// is a system call), and the timer is set again only after, so that one
// sweep of a list runs at a time.
func (l *watchList) sweep() {
	l.mu.Lock()
	keep := l.pending[:0]
	for _, e := range l.pending {
		switch {
		case e.c.wgen.Load() != e.gen:
		case l.epoch-e.epoch >= watchSweeps:
			l.due = append(l.due, e)
		default:
			keep = append(keep, e)
		}
	}
	clear(l.pending[len(keep):])
	l.pending = keep
	l.epoch++
	l.mu.Unlock()
	if len(l.due) > 0 {
		p := l.srv.poller()
		for _, e := range l.due {
			e.c.startWatch(p, e.gen)
		}
		clear(l.due)
		l.due = l.due[:0]
	}
	l.mu.Lock()
	l.ticking = len(l.pending) > 0
	if l.ticking {
		l.timer.Reset(watchPeriod)
	}
	l.mu.Unlock()
}

// poller returns the server's poller, made at the first watch; nil where
// there is none (not Linux, epoll refused, or the server closed).
func (s *Server) poller() *poller {
	if p := s.poll.Load(); p != nil {
		return p
	}
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if !s.pollTried && !s.closed.Load() {
		s.pollTried = true
		p, err := newPoller()
		switch {
		case err != nil:
			s.logf("h1: no poller for hang-up watches, a goroutine per watch instead: %v", err)
		case p != nil: // nil where there is no epoll
			s.poll.Store(p)
		}
	}
	return s.poll.Load()
}

// closePoller ends the poller's goroutine and closes its epoll instance,
// once; a later watch falls back to a goroutine.
func (s *Server) closePoller() {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	s.pollTried = true
	if p := s.poll.Swap(nil); p != nil {
		p.close()
	}
}

func (c *conn) startWatch(p *poller, gen uint64) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wgen.Load() != gen || c.wrun || c.polled {
		return
	}
	if p != nil && c.rc != nil {
		// A close that came before is reported at once.
		if c.pw == nil {
			c.pw = newPollWatch(c)
		}
		err := c.pw.add(p)
		if err == nil {
			c.polled = true
			return
		}
		if err == errConnClosed {
			// Closed under the handler (Server.Close): the request
			// ends, as when a watch goroutine's read fails.
			c.cancel()
			return
		}
		// The poller refused (closed, or epoll failed): a goroutine.
	}
	c.wrun = true
	go c.watch()
}

// pollEvent is the poller's report that the client closed the socket of
// the registration of generation gen, or that the socket failed.
func (c *conn) pollEvent(gen uint32) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.polled || !c.pw.current(gen) {
		return // an earlier connection's registration
	}
	c.hup = true
	if c.armed {
		c.checkHangUp()
	}
}

// checkHangUp cancels the armed request of a connection the client
// closed, unless bytes of a pipelined request are still to be read (as
// net/http's background read, which stops at a byte). Called with wmu.
func (c *conn) checkHangUp() {
	if c.pw.peek() == peekEnd {
		c.cancel()
	}
}

// closedWatch cancels the request of a watched connection Server.Close
// closed: its socket left the epoll set with the close, unreported.
func (c *conn) closedWatch() {
	c.wmu.Lock()
	if c.polled && c.armed {
		c.cancel()
	}
	c.wmu.Unlock()
}

// releaseWatch gives the connection's poller slot back as it ends.
func (c *conn) releaseWatch() {
	c.wmu.Lock()
	if c.pw != nil {
		c.pw.release(c.hijacked)
	}
	c.wmu.Unlock()
}

const (
	peekNone = iota // nothing to read yet (EAGAIN)
	peekData        // bytes: a pipelined request
	peekEnd         // EOF or an error: the client hung up
)

// watch is the goroutine of a watch without the poller.
func (c *conn) watch() {
	if c.rc == nil {
		// Not a syscall.Conn: a one-byte read, as net/http's
		// background read. A byte read is a pipelined request's,
		// which stopWatch puts back.
		n, err := c.nc.Read(c.peekB[:])
		switch {
		case n == 1:
			c.peeked = true
		case err != nil && !isTimeout(err):
			c.cancel()
		}
		c.wdone <- struct{}{}
		return
	}
	res := peekNone
	err := c.rc.Read(func(fd uintptr) bool {
		res = peekSocket(fd)
		return res != peekNone
	})
	// A deadline error is stopWatch's, or the handler's own; another
	// (the connection closed by Server.Close) ends the request too.
	if err == nil && res == peekEnd || err != nil && !isTimeout(err) {
		c.cancel()
	}
	c.wdone <- struct{}{}
}

// peekSocket looks at the socket's next byte without consuming it or
// waiting.
func peekSocket(fd uintptr) int {
	var b [1]byte
	for {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return peekNone
		case err != nil || n == 0:
			return peekEnd
		}
		return peekData
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// stopWatch ends the watch armWatch armed, ending the watch goroutine
// if one runs, and waiting for it.
func (c *conn) stopWatch() {
	c.wmu.Lock()
	c.serving = false
	if !c.armed {
		c.wmu.Unlock()
		return
	}
	c.armed = false
	c.wgen.Add(1)
	running := c.wrun
	c.wrun = false
	c.wmu.Unlock()
	if running {
		c.nc.SetReadDeadline(aLongTimeAgo)
		<-c.wdone
		c.setReadDeadline(time.Time{})
		if c.peeked {
			c.peeked = false
			c.unread(c.peekB[:])
		}
	}
}

// globalOptions answers "OPTIONS *" as net/http's globalOptionsHandler.
var globalOptions = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	if r.ContentLength != 0 {
		io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10))
	}
})

var aLongTimeAgo = time.Unix(1, 0)

// connReader reads the connection, the bytes already buffered first.
type connReader struct{ c *conn }

func (r *connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	c.clearStale()
	return c.nc.Read(p)
}

// unread puts back bytes a bufio.Reader over connReader read past the end
// of a body: they precede buf[r:w] in the stream.
func (c *conn) unread(b []byte) {
	if len(b) == 0 {
		return
	}
	if c.r < c.w {
		// Everything the bufio.Reader got came from buf, so b is
		// what sits right before buf[r:].
		c.r -= len(b)
		return
	}
	if c.buf == nil {
		c.buf = getBuf()
	}
	c.r, c.w = 0, copy(c.buf, b)
}

// Buffers come from a pool, so that idle connections hold none.
const bufSize = 4096

var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

func getBuf() []byte { return bufPool.Get().(*[bufSize]byte)[:] }

func putBuf(b []byte) {
	if len(b) == bufSize {
		bufPool.Put((*[bufSize]byte)(b))
	}
}
