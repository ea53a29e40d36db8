//go:build linux

package h1loop

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

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
	if c.registered(l) {
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

// registered reports whether c is registered with l.
func (c *conn) registered(l *loop) bool {
	return c.fd < len(l.conns) && l.conns[c.fd] == c
}
