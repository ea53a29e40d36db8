//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/turnout/turnout/internal/h1"
)

// serveEpoll proxies plain HTTP/1.1 from listen to upstream the way nginx
// does, to measure what Go's goroutine-per-connection design costs against
// an event loop (docs/performance.md, issue 20): one loop per P it starts
// with (GOMAXPROCS; it then adds one P, left idle, for sysmon's sake: see
// below), each a goroutine locked to its thread with its own epoll
// instance and its own SO_REUSEPORT listener, waiting in epoll_wait and
// driving every socket with non-blocking read, write and accept4; no
// netpoller, no goroutine per connection. A client connection stays on the
// loop that accepted it, and each loop keeps its own keep-alive origin
// connections (dialled when none is idle, kept while the origin keeps
// them) on the same epoll. Sockets are registered once, edge-triggered for
// input and output, and a read that returns less than it asked for is
// taken as having drained the socket, as nginx does: one read and one write
// per side and request, no read that meets EAGAIN.
//
// It is a measurement, not a proxy: GET-like requests without a body
// (others get 501), parsed with h1.Parse; the request forwarded as it came
// but for the hop-by-hop fields and an X-Forwarded-For with the client's
// address; the origin's answer framed by Content-Length (or bodiless:
// HEAD, 204, 304) and at most maxResponse bytes, passed through untouched.
// No timeouts, no limits on connections, no TLS, no logs. Never expose it.
func serveEpoll(listen, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	if u.Scheme != "http" || u.Port() == "" {
		return fmt.Errorf("epoll server: origin %q: want http://host:port", upstream)
	}
	origin, family, err := sockaddr(u.Host)
	if err != nil {
		return err
	}
	addr, lfamily, err := sockaddr(listen)
	if err != nil {
		return err
	}
	n := runtime.GOMAXPROCS(0)
	// One P more than loops, left idle: sysmon retakes the P of a
	// thread in a system call (a loop in epoll_wait) after 20 µs only
	// when no P is idle; with none it did, 50,000 times a second, and
	// sysmon's wake-ups, the hand-offs and the Ps' return took 15–18 %
	// of this proxy's CPU under load (perf, docs/performance.md).
	runtime.GOMAXPROCS(n + 1)
	loops := make([]*loop, n)
	for i := range loops {
		// Every listener is bound before any loop starts, so that a
		// taken port fails here.
		ln, err := listenReusePort(addr, lfamily)
		if err != nil {
			return err
		}
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		// The listener is level-triggered: a loop that cannot accept
		// (EMFILE) is told again rather than never.
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ln, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ln)}); err != nil {
			return err
		}
		loops[i] = &loop{ep: ep, ln: ln, origin: origin, family: family}
	}
	errc := make(chan error, n)
	for _, l := range loops {
		go func() { errc <- l.run() }()
	}
	return <-errc
}

// Sizes: a client's request head must fit in its buffer; an origin's
// answer, head and body, in at most maxResponse bytes.
const (
	bufSize     = 4096
	maxResponse = 1 << 20
	maxIdle     = 256 // idle origin connections kept per loop
)

// A loop owns an epoll instance and every connection registered on it; only
// its goroutine touches them, so nothing is locked.
type loop struct {
	ep, ln int
	origin unix.Sockaddr
	family int
	conns  []*conn // by file descriptor
	idle   []*conn // origin connections waiting for a request, newest last
	gen    uint32
	events [128]unix.EpollEvent
}

// Client states.
const (
	cRead  = iota // waiting for (the rest of) a request head
	cWait         // its request is with an origin connection
	cWrite        // writing out
)

// Origin states.
const (
	oConnect = iota // connect in progress
	oWrite          // writing the request in out
	oRead           // reading the answer into in
	oIdle           // in the loop's idle list
)

// A conn is a client or an origin connection and its state machine.
// readable, writable and hup are what edge-triggered epoll last said and
// the system calls since have not disproved.
type conn struct {
	fd       int // -1 once closed
	gen      uint32
	isOrigin bool
	state    int

	readable, writable, hup bool

	in  []byte // read and not yet consumed
	out []byte // to write, from off
	off int

	peer *conn // the client an origin connection answers, and back

	// client
	req        h1.Request
	ip         []byte // for X-Forwarded-For
	closeAfter bool

	// origin
	reused   bool // has answered a request before
	got      bool // has read bytes of the current answer
	bodyless bool // the current request is a HEAD
	respLen  int  // the current answer's length, head and body; -1 until its head is read
	keep     bool // the origin keeps the connection after this answer
}

func (l *loop) run() error {
	runtime.LockOSThread()
	for {
		n, err := l.wait()
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range l.events[:n] {
			fd := int(ev.Fd)
			if fd == l.ln {
				l.accept()
				continue
			}
			if fd >= len(l.conns) {
				continue
			}
			c := l.conns[fd]
			if c == nil || c.gen != uint32(ev.Pad) {
				continue // closed earlier in this batch
			}
			if ev.Events&unix.EPOLLIN != 0 {
				c.readable = true
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				c.writable = true
			}
			if ev.Events&unix.EPOLLRDHUP != 0 {
				c.readable, c.hup = true, true
			}
			if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				// Let the next system call on it say what failed.
				c.readable, c.writable, c.hup = true, true, true
			}
			if c.isOrigin {
				l.serveOrigin(c)
			} else {
				l.serveClient(c)
			}
		}
	}
}

// wait returns the next events. It first asks without blocking, by a raw
// system call, and blocks only when nothing is ready, in a system call the
// runtime is told of (a goroutine blocked in a raw one would keep the
// world from stopping). A loop whose every wait told the runtime made
// sysmon retake and hand off its P over and over: 15 % of this proxy's CPU
// under load went to sysmon, its thread wake-ups and the P's return
// (perf, docs/performance.md).
func (l *loop) wait() (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e == 0 && n > 0 {
		return int(n), nil
	}
	return unix.EpollWait(l.ep, l.events[:], -1)
}

func (l *loop) accept() {
	for {
		fd, sa, err := unix.Accept4(l.ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			log.Printf("accept4: %v", err)
			return
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &conn{fd: fd, in: make([]byte, 0, bufSize), writable: true}
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			c.ip = []byte(net.IP(sa.Addr[:]).String())
		case *unix.SockaddrInet6:
			c.ip = []byte(net.IP(sa.Addr[:]).String())
		}
		if err := l.register(c); err != nil {
			log.Printf("epoll_ctl: %v", err)
			unix.Close(fd)
		}
	}
}

// register adds c to the loop's epoll, edge-triggered for input, output
// and the peer's shutdown, once for the connection's life; the event
// carries its descriptor and a generation, so that an event for a
// descriptor closed and reused in the same batch is known stale.
func (l *loop) register(c *conn) error {
	l.gen++
	c.gen = l.gen
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, nil)
	}
	l.conns[c.fd] = c
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     int32(c.fd),
		Pad:    int32(c.gen),
	}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		l.conns[c.fd] = nil
		return err
	}
	return nil
}

// close closes c (which leaves the epoll with it) and forgets its peer: an
// origin connection whose client left reads its answer to the end and
// drops it.
func (l *loop) close(c *conn) {
	if c.fd < 0 {
		return
	}
	unix.Close(c.fd)
	l.conns[c.fd] = nil
	c.fd = -1
	if c.peer != nil {
		c.peer.peer = nil
		c.peer = nil
	}
}

// serveClient runs a client connection's state machine as far as its
// sockets allow.
func (l *loop) serveClient(c *conn) {
	for c.fd >= 0 {
		switch c.state {
		case cWait:
			return
		case cWrite:
			done, err := flush(c)
			if err != nil || (done && c.closeAfter) {
				l.close(c)
				return
			}
			if !done {
				return
			}
			c.state = cRead
		case cRead:
			if len(c.in) > 0 {
				err := h1.Parse(&c.req, c.in, bufSize)
				if err == nil {
					l.forward(c)
					continue
				}
				var he *h1.Error
				if err != h1.ErrIncomplete && errors.As(err, &he) {
					reply(c, he.Status)
					continue
				}
			}
			if !c.readable {
				if c.hup { // no more requests will come
					l.close(c)
				}
				return
			}
			n, err := read(c)
			if err != nil || n == 0 {
				l.close(c)
				return
			}
		}
	}
}

// forward hands the client's parsed request to an origin connection.
func (l *loop) forward(c *conn) {
	r := &c.req
	if r.ContentLength > 0 || r.Chunked {
		reply(c, http.StatusNotImplemented) // a measurement: no bodies
		return
	}
	o, err := l.originConn()
	if err != nil {
		log.Printf("origin: %v", err)
		reply(c, http.StatusBadGateway)
		return
	}
	o.out = appendRequest(o.out[:0], r, c.ip)
	o.bodyless = r.Method == http.MethodHead
	c.closeAfter = r.Close
	// The next request's bytes, if the client pipelined, move to the
	// buffer's start; r's slices are dead from here.
	c.in = c.in[:copy(c.in[:cap(c.in)], c.in[r.HeadLen:])]
	c.state = cWait
	c.peer, o.peer = o, c
	l.serveOrigin(o)
}

// originConn returns an idle origin connection, or a new one.
func (l *loop) originConn() (*conn, error) {
	for len(l.idle) > 0 {
		o := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		if o.fd >= 0 {
			o.state = oWrite
			return o, nil
		}
	}
	fd, err := unix.Socket(l.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	o := &conn{fd: fd, isOrigin: true, in: make([]byte, 0, bufSize), state: oConnect}
	switch err := unix.Connect(fd, l.origin); err {
	case nil:
		o.state, o.writable = oWrite, true
	case unix.EINPROGRESS:
	default:
		unix.Close(fd)
		return nil, err
	}
	if err := l.register(o); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return o, nil
}

// serveOrigin runs an origin connection's state machine as far as its
// sockets allow.
func (l *loop) serveOrigin(o *conn) {
	for o.fd >= 0 {
		switch o.state {
		case oConnect:
			if !o.writable {
				return
			}
			if e, err := unix.GetsockoptInt(o.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
				l.originFailed(o)
				return
			}
			o.state = oWrite
		case oWrite:
			done, err := flush(o)
			if err != nil {
				l.originFailed(o)
				return
			}
			if !done {
				return
			}
			o.state, o.in, o.respLen, o.got = oRead, o.in[:0], -1, false
		case oRead:
			if o.respLen < 0 && len(o.in) > 0 {
				head, body, keep, err := parseResponseHead(o.in, o.bodyless)
				if err != nil {
					log.Printf("origin: %v", err)
					l.originFailed(o)
					return
				}
				if head > 0 {
					o.respLen, o.keep = head+body, keep
				}
			}
			if o.respLen >= 0 && len(o.in) >= o.respLen {
				l.deliver(o)
				return
			}
			if !o.readable {
				return
			}
			if len(o.in) == cap(o.in) {
				if cap(o.in) >= maxResponse {
					log.Printf("origin: answer over %d bytes", maxResponse)
					l.originFailed(o)
					return
				}
				o.in = append(o.in, make([]byte, cap(o.in))...)[:len(o.in)]
			}
			n, err := read(o)
			if err != nil || n == 0 {
				l.originFailed(o)
				return
			}
			if n > 0 {
				o.got = true
			}
		case oIdle:
			// Readable while idle: the origin closed it (or sent
			// what nobody asked for); or a stale flag from a read
			// that filled the buffer, which a read tells apart.
			if o.readable || o.hup {
				if n, err := read(o); o.hup || err != nil || n > 0 {
					l.close(o)
				}
			}
			return
		}
	}
}

// deliver hands the origin's complete answer to its client (a copy: a few
// hundred bytes here) and puts the origin connection back in the idle list.
func (l *loop) deliver(o *conn) {
	c := o.peer
	resp := o.in[:o.respLen]
	keep := o.keep && len(o.in) == o.respLen && !o.hup
	o.peer = nil
	if c != nil {
		c.peer = nil
		c.closeAfter = c.closeAfter || !o.keep
		c.out, c.off = append(c.out[:0], resp...), 0
		c.state = cWrite
	}
	o.in, o.reused = o.in[:0], true
	if keep && len(l.idle) < maxIdle {
		o.state = oIdle
		l.idle = append(l.idle, o)
	} else {
		l.close(o)
	}
	if c != nil {
		l.serveClient(c)
	}
}

// originFailed closes o; its client, if any, gets the request retried on
// a new connection when o was a kept-alive one that answered nothing (the
// origin closed it as it was reused: the request is a GET), else a 502.
func (l *loop) originFailed(o *conn) {
	c := o.peer
	retry := o.reused && !o.got
	req, bodyless := o.out, o.bodyless
	l.close(o)
	if c == nil {
		return
	}
	if retry {
		if n, err := l.originConn(); err == nil {
			n.out, n.off, n.bodyless = append(n.out[:0], req...), 0, bodyless
			c.peer, n.peer = n, c
			l.serveOrigin(n)
			return
		}
	}
	reply(c, http.StatusBadGateway)
	l.serveClient(c)
}

// reply sets c up to answer status with an empty body and close.
func reply(c *conn, status int) {
	c.out = fmt.Appendf(c.out[:0], "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status, http.StatusText(status))
	c.off, c.closeAfter, c.state = 0, true, cWrite
}

// read reads into c.in's free space. A read shorter than that space
// drained the socket: the next bytes bring a new edge.
func read(c *conn) (int, error) {
	for {
		n, err := rawIO(unix.SYS_READ, c.fd, c.in[len(c.in):cap(c.in)])
		switch err {
		case nil:
			if len(c.in)+n < cap(c.in) {
				c.readable = false
			}
			c.in = c.in[:len(c.in)+n]
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			c.readable = false
			if c.hup {
				return 0, nil
			}
			return -1, nil
		default:
			return 0, err
		}
	}
}

// flush writes c.out from c.off; done when all of it is written.
func flush(c *conn) (done bool, err error) {
	for c.off < len(c.out) {
		if !c.writable {
			return false, nil
		}
		n, err := rawIO(unix.SYS_WRITE, c.fd, c.out[c.off:])
		switch err {
		case nil:
			c.off += n
			if c.off < len(c.out) {
				c.writable = false // a short write: the buffer is full
			}
		case unix.EINTR:
		case unix.EAGAIN:
			c.writable = false
		default:
			return false, err
		}
	}
	c.out, c.off = c.out[:0], 0
	return true, nil
}

// rawIO reads or writes p (never empty) on a non-blocking socket by a raw
// system call: it cannot block, so the runtime need not be told (unix.Read
// and unix.Write enter and leave a system call in the scheduler's books, and
// sysmon takes the P from one that lasts over 20 µs).
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// appendRequest appends r as the origin gets it: HTTP/1.1, without the
// hop-by-hop fields (the Connection field's named ones are not looked up:
// a measurement), with the client's address added to X-Forwarded-For.
func appendRequest(out []byte, r *h1.Request, ip []byte) []byte {
	out = append(out, r.Method...)
	out = append(out, ' ')
	out = append(out, r.Target...)
	out = append(out, " HTTP/1.1\r\n"...)
	for _, f := range r.Fields {
		if hopByHop(f.Name) || bytes.EqualFold(f.Name, xff) {
			continue
		}
		out = append(out, f.Name...)
		out = append(out, ": "...)
		out = append(out, f.Value...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "X-Forwarded-For: "...)
	for _, f := range r.Fields {
		if bytes.EqualFold(f.Name, xff) {
			out = append(out, f.Value...)
			out = append(out, ", "...)
		}
	}
	out = append(out, ip...)
	return append(out, "\r\n\r\n"...)
}

var xff = []byte("X-Forwarded-For")

var hopByHopFields = [][]byte{
	[]byte("Connection"), []byte("Keep-Alive"), []byte("Proxy-Connection"),
	[]byte("TE"), []byte("Trailer"), []byte("Transfer-Encoding"), []byte("Upgrade"),
}

func hopByHop(name []byte) bool {
	for _, h := range hopByHopFields {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// parseResponseHead reads the origin's answer head at the start of b: its
// length (0 while incomplete), the body's length and whether the origin
// keeps the connection. Only what the measurement needs: Content-Length
// framing or no body; chunked, close-delimited and 1xx answers are errors.
func parseResponseHead(b []byte, bodyless bool) (head, body int, keep bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= bufSize {
			return 0, 0, false, errors.New("answer head over 4 KB")
		}
		return 0, 0, false, nil
	}
	lines := b[:end]
	nl := bytes.Index(lines, []byte("\r\n"))
	status := lines
	if nl >= 0 {
		status, lines = lines[:nl], lines[nl+2:]
	} else {
		lines = nil
	}
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) || status[8] != ' ' {
		return 0, 0, false, fmt.Errorf("malformed status line %q", status)
	}
	code, ok := atoi(status[9:12])
	if !ok || code < 200 {
		return 0, 0, false, fmt.Errorf("status line %q: want a final status", status)
	}
	keep, body = status[7] == '1', -1
	for len(lines) > 0 {
		var line []byte
		line, lines, _ = bytes.Cut(lines, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, false, fmt.Errorf("malformed field line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := atoi(value)
			if !ok || (body >= 0 && n != body) {
				return 0, 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
			body = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, 0, false, errors.New("chunked answer (a measurement: Content-Length only)")
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.Contains(bytes.ToLower(value), []byte("close")) {
				keep = false
			}
		}
	}
	if bodyless || code == http.StatusNoContent || code == http.StatusNotModified {
		body = 0
	}
	if body < 0 {
		return 0, 0, false, errors.New("answer without Content-Length (a measurement: close-delimited not read)")
	}
	return end + 4, body, keep, nil
}

// atoi parses 1 to 9 decimal digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, true
}

// sockaddr resolves host:port to a socket address and its family.
func sockaddr(hostport string) (unix.Sockaddr, int, error) {
	a, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil, 0, err
	}
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return sa, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa, unix.AF_INET6, nil
}

// listenReusePort opens one of the loops' listeners on addr: with
// SO_REUSEPORT the kernel spreads new connections over them.
func listenReusePort(addr unix.Sockaddr, family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := unix.Bind(fd, addr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
