//go:build linux

package h1loop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/origin"
)

// Sizes.
const (
	// scratchSize is each loop's read and write scratch: reads land there
	// and are copied to a connection only when they leave something
	// behind (half a head, a pipelined request, an answer the client's
	// socket would not take at once), so an idle connection holds no
	// buffer.
	scratchSize = 64 << 10
	// maxIdlePerInstance caps the idle keep-alive connections a loop
	// keeps to one origin instance.
	maxIdlePerInstance = 128
	// sweepEvery is the timers' resolution: each loop looks for
	// connections past their deadline this often.
	sweepEvery = 100 * time.Millisecond
	// yieldEvery is how often a loop yields its P (see run); well under
	// the runtime's 10 ms time slice.
	yieldEvery = 2 * time.Millisecond
	// hangUpGrace is how long an exchange goes on after its client
	// closed its side (see hungUp); the sweep's resolution comes on top.
	hangUpGrace = 2 * time.Millisecond
)

// Connection states.
const (
	cRead    = iota // client: waiting for (the rest of) a request head
	cServe          // client: its request is with an origin connection
	oConnect        // origin: connect in progress
	oSend           // origin: writing the request
	oHead           // origin: reading the answer's head
	oBody           // origin: reading the answer's body
	oIdle           // origin: kept alive, in the loop's idle list
)

// A loop owns an epoll instance and every connection registered on it;
// only its goroutine touches them, so nothing is locked.
type loop struct {
	s      *Server
	ep     int
	wake   int     // an eventfd other goroutines write to wake the loop
	conns  []*conn // by descriptor
	gen    uint32
	n      int // client connections held
	nloops int // the server's

	mu       sync.Mutex
	incoming []accepted // from Serve, under mu
	dead     bool       // the loop has returned, under mu
	// idleN is how many clients are in the idle list; evictReq, set by
	// Serve at MaxConns, asks for the longest idle one to be closed.
	idleN    atomic.Int64
	evictReq atomic.Int32
	// idle clients, longest idle first (a list through conn.prev/next)
	idleHead, idleTail *conn
	// idle origin connections by address, newest last: connections to
	// one address are interchangeable, and an address (unlike an
	// instance's identity) cannot come to mean another server.
	origins    map[netip.AddrPort][]*conn
	rbuf, wbuf []byte
	events     [128]unix.EpollEvent
	lastSweep  int64
	// runq holds connections a peer's progress concerns (an origin's
	// answer for its client, a client's free room for its origin),
	// served after the event at hand: no state machine runs inside
	// another's.
	runq []*conn
	cur  *conn // the connection being served, for recovered
}

// A conn is a client or an origin connection and its state machine.
// readable, writable and hup are what edge-triggered epoll last said and
// the system calls since have not disproved.
type conn struct {
	fd       int // -1 once closed or handed over
	gen      uint32
	isOrigin bool
	state    int

	readable, writable, hup bool
	queued                  bool // in the loop's runq

	in  []byte // bytes read and kept (half a head, pipelined requests)
	out []byte // to write, from off
	off int

	deadline int64 // mono ns; 0: none
	hupAt    int64 // mono ns when a serving client was seen to close its side
	peer     *conn

	// client
	nc         net.Conn // what Accept returned, until the first bytes (see Serve)
	req        h1.Request
	remote     string
	x          Exchange
	status     int   // sent; 0 before the head
	sent       int64 // body bytes sent
	done       bool  // the answer is complete in out
	closeAfter bool
	first      bool // no request read yet
	idle       bool // in the idle list
	prev, next *conn

	// origin
	wire     origin.Wire
	addr     netip.AddrPort
	method   string
	resp     origin.WireResponse
	left     int64 // Content-Length body bytes still to come
	scan     origin.ChunkScanner
	reused   bool // has answered a request before
	got      bool // has read bytes of the current answer
	retried  bool
	dialBy   bool // deadline is the connect timeout's
	idemp    bool
	started  int64 // mono ns when the request was handed to it
	idleTill int64
}

// Supported reports whether event loops are built here (Linux only).
const Supported = true

var epoch = time.Now()

func mono() int64 { return int64(time.Since(epoch)) }

// Serve accepts connections on l and gives each to a loop, until l is
// closed (then it returns the error Accept returned, and the loops go on
// serving the connections they have until Shutdown or Close), or until
// Shutdown or Close (then http.ErrServerClosed). Connections are accepted
// by l.Accept, so a listener wrapper sees them as it would under
// h1.Server (internal/upgrade's quiesce tracking: the loop closes the
// accepted net.Conn at its first bytes, keeping a copy of its socket);
// the loops own the sockets from there, the netpoller never sees them.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(l, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(l, false)
	loops, err := s.start()
	if err != nil {
		return err
	}
	var delay time.Duration
	for next := 0; ; next++ {
		if !s.waitRoom(loops, false) {
			return http.ErrServerClosed
		}
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if h1.AcceptBackoff(err, &delay, func(f string, a ...any) { s.logf("h1loop: "+f, a...) }) {
				continue
			}
			return err
		}
		delay = 0
		if !s.waitRoom(loops, true) {
			nc.Close()
			return http.ErrServerClosed
		}
		fd, err := dupSocket(nc)
		if err != nil {
			s.logf("h1loop: take an accepted connection's socket: %v", err)
			nc.Close()
			continue
		}
		s.open.Add(1)
		s.owned.Add(1)
		loops[next%len(loops)].give(accepted{fd: fd, nc: nc})
	}
}

// dupSocket returns a copy of nc's socket, non-blocking, for a loop to own.
func dupSocket(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("the connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return fd, nil
}

func (s *Server) trackListener(l net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, l)
		return true
	}
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[l] = struct{}{}
	return true
}

// start starts the loops, once.
func (s *Server) start() ([]*loop, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return s.loops, nil
	}
	n := s.Loops
	if n <= 0 {
		n = defaultLoops()
	}
	for i := 0; i < n; i++ {
		lp, err := newLoop(s)
		if err == nil {
			lp.nloops = n
		}
		if err != nil {
			for _, lp := range s.loops {
				lp.release()
			}
			s.loops = nil
			return nil, err
		}
		s.loops = append(s.loops, lp)
	}
	s.started = true
	s.exited = make(chan struct{}, n)
	s.room = make(chan struct{}, 1)
	for _, lp := range s.loops {
		go func() {
			lp.run()
			s.exited <- struct{}{}
		}()
	}
	return s.loops, nil
}

var (
	loopsOnce sync.Once
	loopsN    int
)

// defaultLoops is one loop per P the process started with (GOMAXPROCS),
// and it adds one P, left for the rest: a loop waiting in epoll_wait is in
// a system call the runtime knows of, and when no P is idle sysmon takes
// the P of such a thread after 20 µs and hands it off, tens of thousands
// of times a second under load, waking threads to do it. With an idle P it
// leaves them be. Measured: 10 % less CPU per proxied request at 64
// connections (bench/peers.sh, docs/performance.md). Done once per
// process, whatever the number of servers.
func defaultLoops() int {
	loopsOnce.Do(func() {
		loopsN = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(loopsN + 1)
	})
	return loopsN
}

// waitRoom returns once a connection may be accepted under MaxConns —
// there is room, or an idle connection to close for it (evict: then it
// asks the loop with the most idle connections to close its longest idle
// one, and waits for that) — or false once the server is closing. Serve
// calls it before Accept without evict, so that no connection is closed
// before a client is known to be waiting, and after it with evict.
func (s *Server) waitRoom(loops []*loop, evict bool) bool {
	for {
		if s.closing.Load() {
			return false
		}
		if s.MaxConns <= 0 || s.open.Load() < int64(s.MaxConns) {
			return true
		}
		var most *loop
		for _, l := range loops {
			if n := l.idleN.Load(); n > 0 && (most == nil || n > most.idleN.Load()) {
				most = l
			}
		}
		if most != nil {
			if !evict {
				return true
			}
			if most.evictReq.CompareAndSwap(0, 1) {
				most.wakeUp()
			}
		}
		select {
		case <-s.room:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// freed tells a waiting Serve that a connection closed or went idle.
func (s *Server) freed() {
	select {
	case s.room <- struct{}{}:
	default:
	}
}

// accepted is a connection Serve gives a loop: fd is the loop's copy of
// the socket; nc, what Accept returned, is closed at the first bytes.
type accepted struct {
	fd int
	nc net.Conn
}

func (l *loop) give(a accepted) {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		unix.Close(a.fd)
		a.nc.Close()
		l.s.open.Add(-1)
		l.s.owned.Add(-1)
		return
	}
	l.incoming = append(l.incoming, a)
	l.mu.Unlock()
	l.wakeUp()
}

func (l *loop) wakeUp() {
	one := [8]byte{1}
	unix.Write(l.wake, one[:])
}

func newLoop(s *Server) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, err
	}
	l := &loop{s: s, ep: ep, wake: wake, origins: map[netip.AddrPort][]*conn{},
		rbuf: make([]byte, scratchSize), wbuf: make([]byte, 0, scratchSize)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

func (l *loop) release() {
	unix.Close(l.ep)
	unix.Close(l.wake)
}

func (s *Server) wakeAll() {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.wakeUp()
	}
}

// run is the loop: wait for events, serve what they concern, sweep the
// timers. It yields its P every yieldEvery: a goroutine that never does
// is, to sysmon, one running on the same time slice too long, whose P it
// then takes from the system call it waits in — every 20 µs under load,
// each time waking threads (measured: sysmon was 11 % of the process's
// CPU). It is not locked to a thread: any thread may wait on its epoll.
func (l *loop) run() {
	defer l.release()
	lastYield := mono()
	for {
		n, err := l.wait()
		if err != nil && err != unix.EINTR {
			l.s.logf("h1loop: epoll_wait: %v", err)
			time.Sleep(10 * time.Millisecond)
		}
		l.dispatch(l.events[:max(n, 0)])
		now := mono()
		if now-lastYield >= int64(yieldEvery) {
			runtime.Gosched()
			lastYield = now
		}
		if now-l.lastSweep >= int64(sweepEvery) {
			l.lastSweep = now
			l.safely(nil, func() { l.sweep(now) })
		}
		if l.s.closing.Load() {
			l.closeIdle()
			l.mu.Lock()
			l.dead = l.n == 0 && len(l.incoming) == 0
			l.mu.Unlock()
			if l.dead {
				for _, os := range l.origins {
					for _, o := range os {
						l.close(o)
					}
				}
				return
			}
		}
	}
}

func (l *loop) serve(c *conn) {
	if c.isOrigin {
		l.serveOrigin(c)
	} else {
		l.serveClient(c)
	}
}

// kick has c served once the event at hand is.
func (l *loop) kick(c *conn) {
	if !c.queued {
		c.queued = true
		l.runq = append(l.runq, c)
	}
}

func (l *loop) drain() {
	for i := 0; i < len(l.runq); i++ {
		c := l.runq[i]
		l.runq[i] = nil
		c.queued = false
		if c.fd >= 0 {
			l.serve(c)
		}
	}
	l.runq = l.runq[:0]
}

// dispatch serves the connections events concern, each in turn.
func (l *loop) dispatch(events []unix.EpollEvent) {
	for i := 0; i < len(events); i++ {
		ev := &events[i]
		fd := int(ev.Fd)
		switch {
		case fd == l.wake:
			var b [8]byte
			unix.Read(l.wake, b[:])
			l.safely(nil, l.takeIncoming)
			continue
		case fd >= len(l.conns):
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
			c.readable, c.writable, c.hup = true, true, true
		}
		l.safely(c, nil)
	}
}

// safely serves c (or runs f), then what that queued. A panic — a bug,
// in the loop or in what it calls — closes the connections concerned and
// is logged; it never takes the loop, or the process, down.
func (l *loop) safely(c *conn, f func()) {
	defer func() {
		if err := recover(); err != nil {
			l.s.logf("h1loop: panic: %v\n%s", err, debug.Stack())
			l.recovered(c)
		}
	}()
	if f != nil {
		f()
	} else {
		l.serve(c)
	}
	l.drain()
	l.cur = nil
}

// recovered closes c, its peer and whatever was queued, none of whose
// states can be trusted after a panic; their exchanges are not recorded.
func (l *loop) recovered(c *conn) {
	drop := func(c *conn) {
		if c == nil {
			return
		}
		c.x = nil
		if p := c.peer; p != nil {
			p.x, p.peer, c.peer = nil, nil, nil
			l.close(p)
		}
		l.close(c)
	}
	drop(c)
	drop(l.cur)
	for i, q := range l.runq {
		if q != nil {
			q.queued = false
			drop(q)
			l.runq[i] = nil
		}
	}
	l.runq = l.runq[:0]
}

// wait returns the next events. It first asks without blocking, by a raw
// system call, and blocks only when nothing is ready, in a system call the
// runtime is told of (docs/performance.md: a loop whose every wait told
// the runtime made sysmon retake its P over and over).
func (l *loop) wait() (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e == 0 && n > 0 {
		return int(n), nil
	}
	timeout := -1
	if l.n > 0 || len(l.conns) > 0 || l.s.closing.Load() {
		timeout = int(sweepEvery / time.Millisecond)
	}
	return unix.EpollWait(l.ep, l.events[:], timeout)
}

// takeIncoming registers the connections Serve gave the loop, and closes
// its longest idle one when Serve asks for room.
func (l *loop) takeIncoming() {
	if l.evictReq.Load() != 0 {
		l.evict()
		l.evictReq.Store(0)
	}
	l.mu.Lock()
	in := l.incoming
	l.incoming = nil
	l.mu.Unlock()
	for _, a := range in {
		c := &conn{fd: a.fd, nc: a.nc, writable: true, first: true, remote: a.nc.RemoteAddr().String()}
		l.n++
		if l.s.closing.Load() {
			l.close(c)
			continue
		}
		if err := l.register(c); err != nil {
			l.s.logf("h1loop: epoll_ctl: %v", err)
			l.close(c)
			continue
		}
		if d := l.s.ReadHeaderTimeout; d > 0 {
			c.deadline = mono() + int64(d)
		}
		// Its first request may be there already.
		c.readable = true
		l.serveClient(c)
		l.drain() // before the next one can use the scratch
	}
}

// evict closes the client connection idle the longest, if there is one.
func (l *loop) evict() bool {
	c := l.idleHead
	if c == nil {
		return false
	}
	l.s.evicted.Add(1)
	l.closeClient(c)
	return true
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

// forget takes c out of the loop's books (its descriptor stays open).
func (l *loop) forget(c *conn) {
	l.conns[c.fd] = nil
	if c.idle {
		l.unidle(c)
	}
	if !c.isOrigin {
		l.n--
		l.s.owned.Add(-1)
	}
}

// close closes c. A client's exchange in progress ends as closed by the
// client; an origin connection's client, if any, is told by the caller.
func (l *loop) close(c *conn) {
	if c.fd < 0 {
		return
	}
	if c.conns(l) {
		l.forget(c)
	} else if !c.isOrigin { // never registered
		l.n--
		l.s.owned.Add(-1)
	}
	unix.Close(c.fd)
	c.fd = -1
	c.in, c.out = nil, nil
	if !c.isOrigin {
		c.release()
		l.s.open.Add(-1)
		l.s.freed()
	}
}

func (l *loop) setIdle(c *conn) {
	l.idleN.Add(1)
	l.s.freed()
	c.idle = true
	c.prev, c.next = l.idleTail, nil
	if l.idleTail != nil {
		l.idleTail.next = c
	} else {
		l.idleHead = c
	}
	l.idleTail = c
}

func (l *loop) unidle(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.idleHead = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.idleTail = c.prev
	}
	c.prev, c.next, c.idle = nil, nil, false
	l.idleN.Add(-1)
}

// closeIdle closes the client connections waiting for a request with no
// byte of one received (Shutdown), or every client connection (Close).
func (l *loop) closeIdle() {
	kill := l.s.killed.Load()
	for _, c := range l.conns {
		if c == nil || c.isOrigin {
			continue
		}
		if kill || c.state == cRead && len(c.in) == 0 {
			l.closeClient(c)
		}
	}
}

// sweep closes what is past its deadline.
func (l *loop) sweep(now int64) {
	for _, c := range l.conns {
		if c == nil {
			continue
		}
		expired := c.deadline != 0 && c.deadline <= now
		switch {
		case !c.isOrigin && c.state == cServe && c.hupAt != 0 && now-c.hupAt >= int64(hangUpGrace):
			l.closeClient(c) // gone, not just half-closed
		case !c.isOrigin:
			// Idle or a head that did not arrive in time: closed
			// without a word, as h1.Server does.
			if expired && c.state == cRead {
				l.closeClient(c)
			}
		case !expired:
		case c.state == oIdle:
			l.dropIdleOrigin(c)
		case c.state == oBody:
			l.originBroke(c, os.ErrDeadlineExceeded)
		case c.state == oConnect && c.dialBy:
			// The connect timeout: a failed connect, as net.Dial's.
			l.originFailed(c, origin.WireConnect, false, os.ErrDeadlineExceeded)
		default:
			l.originFailed(c, phaseOf(c), true, nil)
		}
		// Each answer written now goes through the loop's scratch:
		// one at a time.
		l.drain()
	}
}

// phaseOf is where o's exchange stands, as the wire words failures.
func phaseOf(o *conn) origin.WirePhase {
	switch o.state {
	case oConnect:
		return origin.WireConnect
	case oSend:
		return origin.WireWrite
	}
	return origin.WireResponseHead
}

// closeClient closes client c, ending its exchange, if any, as closed by
// the client, and its origin connection with it.
func (l *loop) closeClient(c *conn) {
	err := errClientClosed
	if o := c.peer; o != nil {
		if o.state != oBody {
			// As the goroutine path logs it: the round trip's error
			// once the request's context is cancelled.
			err = &origin.Error{Kind: origin.KindTimeout, Instance: o.wire.Instance(),
				Err: fmt.Errorf("%s: %w", phaseWords[phaseOf(o)], context.Canceled)}
		}
		c.peer, o.peer = nil, nil
		l.close(o)
	}
	if c.x != nil {
		l.end(c, nil, true, err)
	}
	l.close(c)
}

var phaseWords = [...]string{origin.WireConnect: "connect", origin.WireWrite: "write request", origin.WireResponseHead: "read response head"}

var errClientClosed = errors.New("client closed the connection")

// end ends c's exchange.
func (l *loop) end(c *conn, failure *origin.Error, clientClosed bool, err error) {
	x := c.x
	c.x = nil
	status := c.status
	if status == 0 && clientClosed {
		status = turnout.StatusClientClosed
	}
	x.End(status, c.sent, failure, clientClosed, err)
}

// serveClient runs a client connection's state machine as far as its
// socket allows.
func (l *loop) serveClient(c *conn) {
	l.cur = c
	for c.fd >= 0 {
		if len(c.out) > c.off {
			if err := l.flush(c); err != nil {
				l.closeClient(c)
				return
			}
			if len(c.out) > c.off {
				l.hungUp(c)
				return // wait for room
			}
			if c.state == cServe && !c.done {
				// The origin waits for the client to take what it sent.
				if o := c.peer; o != nil {
					l.kick(o)
				}
				return
			}
		}
		if c.state == cServe {
			if c.done {
				l.finish(c)
				continue
			}
			l.hungUp(c)
			return
		}
		// cRead
		if c.closeAfter {
			l.close(c)
			return
		}
		if len(c.in) > 0 {
			if l.parse(c, c.in) {
				continue
			}
			if c.fd < 0 {
				return
			}
		}
		if !c.readable {
			if c.hup {
				l.close(c)
			}
			return
		}
		if !l.readClient(c) {
			return
		}
	}
}

// hungUp notes that the client of an exchange in progress has closed its
// side. It may have only half-closed it, still reading (a client sends its
// requests, then FIN): the answer goes on, and the exchange is abandoned
// as closed by the client only if it is still going hangUpGrace later
// (sweep), as h1.Server's hang-up watch arms only for a handler that
// outlives its sweep. A client gone for good makes the writes fail first.
func (l *loop) hungUp(c *conn) {
	if c.hup && c.hupAt == 0 && c.state == cServe {
		c.hupAt = mono()
	}
}

// readClient reads what the client sent: into the loop's scratch when c
// keeps nothing, where a whole head is parsed in place, else after what it
// keeps.
func (l *loop) readClient(c *conn) bool {
	if len(c.in) == 0 {
		n, err := readFD(c, l.rbuf)
		if n <= 0 {
			if err != nil || n == 0 {
				l.close(c)
			}
			return false
		}
		l.arrived(c)
		data := l.rbuf[:n]
		if l.parse(c, data) {
			return true
		}
		if c.fd >= 0 && c.state == cRead {
			c.in = append(make([]byte, 0, max(n, 4096)), data...)
		}
		return c.fd >= 0
	}
	if len(c.in) == cap(c.in) {
		if cap(c.in) >= l.s.maxHead() {
			l.handOver(c, c.in) // h1.Server answers 431 as always
			return false
		}
		c.in = append(c.in, make([]byte, min(cap(c.in), l.s.maxHead()))...)[:len(c.in)]
	}
	n, err := readFD(c, c.in[len(c.in):cap(c.in)])
	if n <= 0 {
		if err != nil || n == 0 {
			l.close(c)
		}
		return false
	}
	c.in = c.in[:len(c.in)+n]
	return true
}

// arrived notes that bytes of a request came on c.
func (l *loop) arrived(c *conn) {
	c.release()
	if c.idle {
		l.unidle(c)
	}
	if !c.first {
		// The head's own timeout from its first byte, as h1.Server.
		if d := l.s.ReadHeaderTimeout; d > 0 {
			c.deadline = mono() + int64(d)
		} else {
			c.deadline = 0
		}
	}
}

func (s *Server) maxHead() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return 1 << 20
}

// parse parses the head at the start of data (the loop's scratch or
// c.in) and starts serving it; false when it is incomplete (c then has to
// keep data) or the connection was handed over or closed.
func (l *loop) parse(c *conn, data []byte) bool {
	err := h1.Parse(&c.req, data, l.s.maxHead())
	if err == h1.ErrIncomplete {
		if len(data) >= l.s.maxHead() {
			l.handOver(c, data)
		}
		return false
	}
	r := &c.req
	if err != nil || r.ProtoMinor != 1 || r.ContentLength > 0 || r.Chunked || r.Expect100 || r.Has("upgrade") ||
		!origin.Replayable(r) {
		// h1.Server refuses what the parser refuses, and serves the
		// rest; the loop does not. Nor a request that could not be
		// sent again (POST, PATCH): the goroutine path's origin client
		// knows which kept-alive connections are too risky for one
		// (the settle time, the idle cap, what silent closes taught).
		l.handOver(c, data)
		return false
	}
	x, ok := l.s.Route(r, c.remote)
	if !ok {
		l.handOver(c, data)
		return false
	}
	l.forward(c, x)
	// What follows the head, pipelined, is kept for later; r's slices
	// are dead from here.
	rest := data[r.HeadLen:]
	switch {
	case len(rest) == 0:
		c.in = c.in[:0]
	case &data[0] == &l.rbuf[0]:
		c.in = append(c.in[:0], rest...)
	default:
		c.in = c.in[:copy(c.in, rest)]
	}
	return true
}

// handOver gives c, with data (what was read from it and not yet
// served), to the goroutine server for good.
func (l *loop) handOver(c *conn, data []byte) {
	buf := append([]byte(nil), data...)
	fd := c.fd
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
	l.forget(c)
	c.fd = -1
	c.in, c.out = nil, nil
	f := os.NewFile(uintptr(fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil || l.s.Fallback == nil {
		l.s.open.Add(-1)
		if err != nil {
			l.s.logf("h1loop: hand over a connection: %v", err)
		}
		return
	}
	l.s.Fallback.ServeConn(&handed{Conn: nc, s: l.s}, buf)
}

// forward sends c's request, which x serves, to an origin connection.
func (l *loop) forward(c *conn, x Exchange) {
	r := &c.req
	c.x, c.state, c.status, c.sent, c.done = x, cServe, 0, 0, false
	c.closeAfter, c.first, c.deadline = r.Close, false, 0
	w := x.Wire()
	o, err := l.originConn(w, r.Method)
	if err != nil {
		l.fail(c, w.Failed(origin.WireConnect, false, err))
		return
	}
	o.out = w.AppendRequest(o.out[:0], r, x.Path(), x.RawQuery(), c.remote, x.RequestID())
	o.off, o.idemp = 0, w.Replayable(r)
	c.peer, o.peer = o, c
	l.serveOrigin(o)
}

// originConn returns an idle connection to w's instance, or a new one.
func (l *loop) originConn(w origin.Wire, method string) (*conn, error) {
	ap := w.Addr()
	now := mono()
	for idle := l.origins[ap]; len(idle) > 0; idle = l.origins[ap] {
		o := idle[len(idle)-1]
		l.origins[ap] = idle[:len(idle)-1]
		if o.fd < 0 {
			continue
		}
		if o.hup || o.idleTill <= now {
			l.close(o)
			continue
		}
		o.prepare(w, method, now)
		return o, nil
	}
	family := unix.AF_INET
	var sa unix.Sockaddr
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	o := &conn{fd: fd, isOrigin: true, state: oConnect, addr: ap}
	switch err := unix.Connect(fd, sa); err {
	case nil:
		o.state, o.writable = oSend, true
		w.Connected()
	case unix.EINPROGRESS:
	default:
		unix.Close(fd)
		return nil, err // a syscall.Errno, which Wire.Failed words as net.Dial would
	}
	if err := l.register(o); err != nil {
		unix.Close(fd)
		return nil, err
	}
	st := o.state
	o.prepare(w, method, now)
	o.state = st
	if st == oConnect {
		if d := w.ConnectTimeout(); d > 0 && (o.deadline == 0 || now+int64(d) < o.deadline) {
			o.deadline, o.dialBy = now+int64(d), true
		}
	}
	return o, nil
}

// prepare readies o for a request to w.
func (o *conn) prepare(w origin.Wire, method string, now int64) {
	o.wire, o.method, o.state = w, method, oSend
	o.got, o.retried, o.started = false, false, now
	o.deadline, o.dialBy = 0, false
	o.setHeadDeadline(now)
}

func (o *conn) setHeadDeadline(now int64) {
	d := o.wire.ResponseHeaderTimeout()
	if t := o.wire.OverallTimeout(); t > 0 && (d == 0 || t < d) {
		d = t
	}
	if d > 0 {
		o.deadline = o.started + int64(d)
	} else {
		o.deadline = 0
	}
}

// serveOrigin runs an origin connection's state machine as far as its
// socket (and its client's) allow.
func (l *loop) serveOrigin(o *conn) {
	l.cur = o
	for o.fd >= 0 {
		switch o.state {
		case oConnect:
			if !o.writable {
				return
			}
			if e, err := unix.GetsockoptInt(o.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
				if err == nil {
					err = syscall.Errno(e)
				}
				l.originFailed(o, origin.WireConnect, false, err)
				return
			}
			o.wire.Connected()
			o.state, o.dialBy = oSend, false
			o.setHeadDeadline(mono())
		case oSend:
			if err := l.flush(o); err != nil {
				l.originFailed(o, origin.WireWrite, false, err)
				return
			}
			if len(o.out) > o.off {
				return
			}
			o.state = oHead
			o.in = o.in[:0]
		case oHead, oBody:
			if !l.readOrigin(o) {
				return
			}
		case oIdle:
			// Readable while idle: the origin closed it, or sent what
			// nobody asked for.
			if o.readable || o.hup {
				l.dropIdleOrigin(o)
			}
			return
		}
	}
}

// readOrigin reads the origin's answer and passes it to its client; false
// when it has to wait (for the origin or for the client).
func (l *loop) readOrigin(o *conn) bool {
	c := o.peer
	if c != nil && len(c.out) > c.off {
		return false // back-pressure: the client has not taken the last part
	}
	if !o.readable {
		if o.hup {
			return l.originEOF(o)
		}
		return false
	}
	// Into the scratch when nothing is kept, else after what is.
	buf := l.rbuf
	if len(o.in) > 0 {
		if len(o.in) == cap(o.in) {
			o.in = append(o.in, make([]byte, cap(o.in))...)[:len(o.in)]
		}
		buf = o.in[len(o.in):cap(o.in)]
	}
	n, err := readFD(o, buf)
	switch {
	case err != nil && o.state == oBody:
		l.originBroke(o, err) // the answer had begun
		return false
	case err != nil:
		l.originFailed(o, origin.WireResponseHead, false, err)
		return false
	case n == 0:
		return l.originEOF(o)
	case n < 0:
		return false
	}
	data := buf[:n]
	if len(o.in) > 0 {
		o.in = o.in[:len(o.in)+n]
		data = o.in
	}
	o.got = true
	return l.answer(o, data)
}

// answer takes data, the bytes of o's answer read and not yet passed on
// (in state oHead, from the start of a head). What it cannot use yet (half
// a head, half a chunk-size or trailer line) is kept in o.in.
func (l *loop) answer(o *conn, data []byte) bool {
	c := o.peer
	for o.state == oHead {
		n, err := origin.ParseWireResponse(&o.resp, data, o.method)
		if err == origin.ErrIncomplete {
			keep(o, data)
			return true
		}
		if err != nil {
			l.originFailed(o, origin.WireResponseHead, false, err)
			return false
		}
		if o.resp.Status < 200 {
			// An interim answer (103, 102): on to the client at once,
			// as the goroutine path sends it. The fields point into
			// data: used before anything reuses it.
			if c != nil {
				if len(c.out) == 0 {
					c.out = l.wbuf[:0]
				}
				c.out = h1.AppendStatusLine(c.out, o.resp.Status)
				c.out = c.x.AppendServedFields(c.out)
				c.out = o.resp.AppendFields(c.out)
				c.out = append(c.out, "\r\n"...)
			}
			data = data[n:]
			continue
		}
		o.state, o.deadline = oBody, 0
		if t := o.wire.OverallTimeout(); t > 0 {
			o.deadline = o.started + int64(t)
		}
		o.left = o.resp.ContentLength
		o.scan.Reset()
		if c != nil {
			l.head(c, o)
		}
		data = data[n:]
	}
	// Body bytes.
	var done bool
	switch {
	case o.resp.Bodyless:
		done = true
		if len(data) > 0 {
			o.resp.KeepAlive = false // more than the answer: do not reuse
		}
		data = nil
	case o.resp.Chunked:
		n, m, fin, err := o.scan.Scan(data)
		if err != nil {
			l.originBroke(o, err)
			return false
		}
		rest := data[n:]
		data, done = data[:m], fin
		if fin && len(rest) > 0 {
			o.resp.KeepAlive = false
		}
		if !fin {
			// A line not complete yet: kept, after what goes on now
			// (which is sent from data before o.in is written).
			defer keep(o, rest)
		}
	case o.resp.UntilClose:
	default:
		if int64(len(data)) >= o.left {
			if int64(len(data)) > o.left {
				o.resp.KeepAlive = false
			}
			data, done = data[:o.left], true
		}
		o.left -= int64(len(data))
	}
	if c != nil && len(data) > 0 {
		if len(c.out) == 0 {
			c.out = l.wbuf[:0]
		}
		if o.resp.UntilClose {
			c.out = strconv.AppendInt(c.out, int64(len(data)), 16)
			c.out = append(c.out, "\r\n"...)
			c.out = append(c.out, data...)
			c.out = append(c.out, "\r\n"...)
		} else {
			c.out = append(c.out, data...)
		}
		c.sent += int64(len(data))
	}
	if !o.resp.Chunked || done {
		o.in = o.in[:0]
	}
	if done {
		l.answered(o)
		return false
	}
	if c != nil && len(c.out) > c.off {
		l.kick(c)
		return false // until the client has taken it
	}
	return true
}

// keep makes rest, the unused end of what was read, o.in.
func keep(o *conn, rest []byte) {
	if len(rest) == 0 {
		o.in = o.in[:0]
		return
	}
	if len(o.in) > 0 && &rest[0] == &o.in[:1][0] {
		return // already there
	}
	if cap(o.in) > 0 && overlaps(rest, o.in[:cap(o.in)]) {
		o.in = o.in[:copy(o.in[:cap(o.in)], rest)]
		return
	}
	o.in = append(o.in[:0], rest...)
}

func overlaps(a, b []byte) bool {
	pa, pb := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return pa >= pb && pa < pb+uintptr(len(b))
}

// head writes the head of o's answer into c.out as h1.Server writes the
// goroutine path's: the gateway's fields, the origin's end-to-end fields,
// the framing (Content-Length when the origin gave one; chunked when it
// gave none or chunked; neither for 204, 304, or a HEAD without one),
// Date unless the origin sent one, and Connection: close when c closes
// after it.
func (l *loop) head(c *conn, o *conn) {
	r := &o.resp
	c.status = r.Status
	if len(c.out) == 0 {
		c.out = l.wbuf[:0]
	}
	out := h1.AppendStatusLine(c.out, r.Status)
	out = c.x.AppendServedFields(out)
	out = r.AppendFields(out)
	if r.Status != http.StatusNoContent && r.Status != http.StatusNotModified {
		switch {
		case r.ContentLength >= 0 && !r.Chunked:
			out = append(out, "Content-Length: "...)
			out = strconv.AppendInt(out, r.ContentLength, 10)
			out = append(out, "\r\n"...)
		case o.method != http.MethodHead:
			out = append(out, "Transfer-Encoding: chunked\r\n"...)
		}
	}
	if !r.HasDate {
		out = h1.AppendDate(out)
	}
	if c.closeAfter || l.s.closing.Load() {
		c.closeAfter = true
		out = append(out, "Connection: close\r\n"...)
	}
	c.out = append(out, "\r\n"...)
}

// originEOF is the origin closing o: the end of an answer delimited so,
// else a failure.
func (l *loop) originEOF(o *conn) bool {
	if o.state == oBody && o.resp.UntilClose {
		o.resp.KeepAlive = false
		if c := o.peer; c != nil {
			if len(c.out) == 0 {
				c.out = l.wbuf[:0]
			}
			c.out = append(c.out, "0\r\n\r\n"...)
		}
		l.answered(o)
		return false
	}
	err := io.EOF
	if o.state == oBody {
		l.originBroke(o, err)
	} else {
		l.originFailed(o, origin.WireResponseHead, false, err)
	}
	return false
}

// answered is o's answer complete: o goes back to the idle list (or is
// closed), its client finishes writing.
func (l *loop) answered(o *conn) {
	c := o.peer
	o.peer = nil
	o.reused = true
	now := mono()
	keep := o.resp.KeepAlive && !o.hup && !l.s.closing.Load() && !o.wire.PoolClosed()
	if keep {
		if d := o.wire.IdleTimeout(o.resp.KeepAliveFor); d > 0 {
			o.idleTill = now + int64(d)
		} else {
			keep = false
		}
	}
	if keep && len(l.origins[o.addr]) < l.maxIdle(o.wire) {
		o.state, o.deadline = oIdle, o.idleTill
		o.in, o.off = o.in[:0], 0
		o.wire = origin.Wire{}
		l.origins[o.addr] = append(l.origins[o.addr], o)
	} else {
		l.close(o)
	}
	if c != nil {
		c.peer = nil
		c.done = true
		l.kick(c)
	}
}

// finish ends c's exchange once its answer is all written.
func (l *loop) finish(c *conn) {
	if c.x != nil {
		l.end(c, nil, false, nil)
	}
	c.state, c.done, c.hupAt = cRead, false, 0
	c.out, c.off = nil, 0
	if c.closeAfter {
		l.close(c)
		return
	}
	if len(c.in) == 0 {
		c.in = nil
		l.setIdle(c)
		if d := l.s.IdleTimeout; d > 0 {
			c.deadline = mono() + int64(d)
		}
	}
}

// maxIdle is the loop's share of the instance's max_idle_conns.
func (l *loop) maxIdle(w origin.Wire) int {
	return min(maxIdlePerInstance, max(1, w.MaxIdleConns()/max(1, l.nloops)))
}

// dropIdleOrigin closes an idle origin connection and takes it off the
// idle list.
func (l *loop) dropIdleOrigin(o *conn) {
	idle := l.origins[o.addr]
	for i, x := range idle {
		if x == o {
			l.origins[o.addr] = append(idle[:i], idle[i+1:]...)
			break
		}
	}
	l.close(o)
}

// originFailed is o failing before its answer's head was read: the
// request is sent again on a new connection when o was a kept-alive one
// that answered nothing and the request is idempotent; else its client
// gets the gateway's error answer.
func (l *loop) originFailed(o *conn, phase origin.WirePhase, timeout bool, err error) {
	c := o.peer
	w, method, req := o.wire, o.method, o.out
	retry := o.reused && !o.got && !o.retried && o.idemp && !timeout
	o.peer = nil
	l.close(o)
	if c == nil {
		return
	}
	c.peer = nil
	if retry {
		w.StaleRetry()
		if n, nerr := l.originConn(w, method); nerr == nil {
			n.out, n.off, n.retried = append(n.out[:0], req...), 0, true
			c.peer, n.peer = n, c
			l.serveOrigin(n)
			return
		}
	}
	l.fail(c, w.Failed(phase, timeout, err))
}

// fail answers c with the gateway's error answer for f.
func (l *loop) fail(c *conn, f *origin.Error) {
	if len(c.out) == 0 {
		c.out = l.wbuf[:0]
	}
	start := len(c.out)
	c.out = c.x.AppendFailure(c.out, f)
	if c.closeAfter || l.s.closing.Load() {
		c.closeAfter = true
		c.out = insertField(c.out, start, "Connection: close\r\n")
	}
	c.status = f.StatusCode()
	c.done = true
	x := c.x
	c.x = nil
	x.End(c.status, 0, f, false, f)
	l.kick(c)
}

// originBroke is o failing in the middle of its answer's body: the
// client's connection is closed, as the goroutine path aborts it.
func (l *loop) originBroke(o *conn, err error) {
	c := o.peer
	o.peer = nil
	l.close(o)
	if c == nil {
		return
	}
	c.peer = nil
	if c.x != nil {
		x := c.x
		c.x = nil
		x.End(c.status, c.sent, nil, false, err)
	}
	// What the client already has stays; the rest never comes.
	l.flush(c)
	l.close(c)
}

// readFD reads into p: n > 0 bytes read, 0 at the end of input, -1 when
// nothing is there (EAGAIN). A read shorter than p drained the socket.
func readFD(c *conn, p []byte) (int, error) {
	for {
		n, err := rawIO(unix.SYS_READ, c.fd, p)
		switch err {
		case nil:
			if n < len(p) {
				c.readable = false
			}
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			c.readable = false
			return -1, nil
		default:
			return 0, err
		}
	}
}

// flush writes c.out from c.off. What the socket does not take stays in
// c.out (copied out of the loop's scratch if it was there). A short write
// is followed by another, which meets EAGAIN: only a write that fails so
// has the kernel report the room it makes later (edge-triggered EPOLLOUT).
func (l *loop) flush(c *conn) error {
	for c.off < len(c.out) && c.writable {
		n, err := rawIO(unix.SYS_WRITE, c.fd, c.out[c.off:])
		switch err {
		case nil:
			c.off += n
		case unix.EINTR:
		case unix.EAGAIN:
			c.writable = false
		default:
			return err
		}
	}
	if c.off < len(c.out) {
		if &c.out[:1][0] == &l.wbuf[:1][0] {
			// Kept until the socket takes it: out of the scratch.
			c.out = append([]byte(nil), c.out[c.off:]...)
			c.off = 0
		}
		return nil
	}
	if !c.isOrigin { // an origin's request is kept: a retry sends it again
		c.out, c.off = nil, 0
	}
	return nil
}

// rawIO reads or writes p (never empty) on a non-blocking socket by a raw
// system call: it cannot block, so the runtime need not be told.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// insertField inserts field ("Name: value\r\n") at the end of the head of
// the answer that starts at out[start:].
func insertField(out []byte, start int, field string) []byte {
	i := bytes.Index(out[start:], []byte("\r\n\r\n"))
	if i < 0 {
		return out
	}
	at := start + i + 2
	out = append(out, field...)
	copy(out[at+len(field):], out[at:len(out)-len(field)])
	copy(out[at:], field)
	return out
}

// release closes the net.Conn Accept returned for c (its socket lives on
// in c.fd): the listener's wrapper learns the connection has started.
func (c *conn) release() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// conns reports whether c is registered with l.
func (c *conn) conns(l *loop) bool {
	return c.fd < len(l.conns) && l.conns[c.fd] == c
}
