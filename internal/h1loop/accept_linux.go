//go:build linux

package h1loop

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/turnout/turnout/internal/h1"
)

// Serve accepts connections on l and gives each to a loop, until l is
// closed (then it returns the error Accept returned, and the loops go on
// serving the connections they have until Shutdown or Close), or until
// Shutdown or Close (then http.ErrServerClosed). Connections are accepted
// by l.Accept, so a listener wrapper sees them as it would under
// h1.Server (internal/upgrade's quiesce tracking: the loop closes the
// accepted net.Conn at its first bytes, keeping a copy of its socket);
// the loops own the sockets from there, the netpoller never sees them.
func (s *Server) Serve(l net.Listener) error {
	if !s.listeners.Add(l) {
		return http.ErrServerClosed
	}
	defer s.listeners.Remove(l)
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

// release closes the net.Conn Accept returned for c (its socket lives on
// in c.fd): the listener's wrapper learns the connection has started.
func (c *conn) release() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}
