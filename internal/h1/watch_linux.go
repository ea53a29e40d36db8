//go:build linux

package h1

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller watches the sockets of a server's connections for the client
// closing them, all through one epoll instance (see conn.armWatch). Its
// goroutine does not hold a thread in epoll_wait: the epoll instance is
// itself a non-blocking file that the runtime's network poller waits on
// (an epoll instance is readable while it has events), and the goroutine
// collects the events with a zero timeout. Closing the file ends the
// goroutine; the runtime closes the descriptor once, after the
// goroutine's read returns.
//
// A socket is registered once, for EPOLLRDHUP (and the errors epoll always
// reports), one-shot: it reports at most once, the client's close or a
// reset, and never the bytes of a next request. It leaves the set when the
// connection closes it (a hijacked one is unregistered). The event's data
// is the connection's slot (its index in conns) and the registration's
// generation: an event collected after its connection ended, or from a
// socket closed under a registration a forked child's copy of the
// descriptor still holds, names a slot now empty or a generation no longer
// current, and is dropped. Registering and peeking go through the
// connection's syscall.RawConn.Control, which holds the descriptor open
// for the call, so a descriptor number the kernel reused after a close is
// never touched.
type poller struct {
	f          *os.File
	rc         syscall.RawConn
	seq        atomic.Uint32 // the last generation handed out
	registered atomic.Int64  // sockets in the epoll set (for tests)
	reports    atomic.Int64  // events handled (for tests)

	mu    sync.Mutex
	conns []*conn // by slot
	free  []int32

	events [64]unix.EpollEvent // the goroutine's
	got    int
	waitFn func(uintptr) bool
	done   chan struct{} // closed as the goroutine ends
}

var errConnClosed = errors.New("h1: the connection is closed")

func newPoller() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "h1-watch-epoll")
	// A file the runtime could not add to its poller takes no deadline,
	// and its RawConn could not wait for readability.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{f: f, rc: rc, done: make(chan struct{})}
	p.waitFn = p.wait
	go p.run()
	return p, nil
}

func (p *poller) close() { p.f.Close() }

func (p *poller) run() {
	defer close(p.done)
	for {
		if err := p.rc.Read(p.waitFn); err != nil {
			return // closed
		}
		for _, ev := range p.events[:p.got] {
			p.event(ev.Fd, uint32(ev.Pad))
		}
	}
}

// wait collects ready events without blocking; with none it reports false
// and the runtime waits for the epoll instance to become readable.
func (p *poller) wait(epfd uintptr) bool {
	for {
		n, err := unix.EpollWait(int(epfd), p.events[:], 0)
		if err == unix.EINTR {
			continue
		}
		if n <= 0 {
			return false
		}
		p.got = n
		return true
	}
}

func (p *poller) event(slot int32, gen uint32) {
	var c *conn
	p.mu.Lock()
	if slot >= 0 && int(slot) < len(p.conns) {
		c = p.conns[slot]
	}
	p.mu.Unlock()
	if c != nil {
		c.pollEvent(gen)
	}
	p.reports.Add(1)
}

// pollWatch is a connection's side of the poller, guarded by conn.wmu,
// made at its first registration (a connection never watched does not
// carry it). Its callbacks are bound once, so that a peek allocates
// nothing.
type pollWatch struct {
	c    *conn
	p    *poller // the poller holding slot
	slot int32
	gen  uint32
	in   bool // registered
	// ctl's arguments and result
	op  int
	fd  int
	ev  unix.EpollEvent
	err error
	res int // peek's

	ctlFn, epFn, peekFn func(uintptr)
}

func newPollWatch(c *conn) *pollWatch {
	w := &pollWatch{c: c, slot: -1}
	w.ctlFn, w.epFn, w.peekFn = w.ctlConn, w.ctlEpoll, w.peekConn
	return w
}

// add registers the connection's socket with p. It returns errConnClosed
// if the connection is closed.
func (w *pollWatch) add(p *poller) error {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		w.slot, p.free = p.free[n-1], p.free[:n-1]
		p.conns[w.slot] = w.c
	} else {
		w.slot = int32(len(p.conns))
		p.conns = append(p.conns, w.c)
	}
	p.mu.Unlock()
	w.p, w.gen = p, p.seq.Add(1)
	if err := w.ctl(unix.EPOLL_CTL_ADD); err != nil {
		w.release(false)
		return err
	}
	w.in = true
	p.registered.Add(1)
	return nil
}

// current reports whether gen is the registration's generation.
func (w *pollWatch) current(gen uint32) bool { return w.gen == gen }

// release gives the slot back as the connection ends; a hijacked
// connection's socket, which stays open, is unregistered first.
func (w *pollWatch) release(hijacked bool) {
	p := w.p
	if p == nil {
		return
	}
	if w.in {
		if hijacked {
			w.ctl(unix.EPOLL_CTL_DEL)
		}
		p.registered.Add(-1)
	}
	p.mu.Lock()
	p.conns[w.slot] = nil
	p.free = append(p.free, w.slot)
	p.mu.Unlock()
	w.p, w.slot, w.gen, w.in = nil, -1, 0, false
}

func (w *pollWatch) ctl(op int) error {
	w.op, w.err = op, nil
	w.ev = unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: w.slot, Pad: int32(w.gen)}
	if err := w.c.rc.Control(w.ctlFn); err != nil {
		return errConnClosed
	}
	return w.err
}

func (w *pollWatch) ctlConn(fd uintptr) {
	w.fd = int(fd)
	if err := w.p.rc.Control(w.epFn); err != nil {
		w.err = err // the poller is closed
	}
}

func (w *pollWatch) ctlEpoll(epfd uintptr) {
	w.err = unix.EpollCtl(int(epfd), w.op, w.fd, &w.ev)
}

// peek looks at the socket: peekData, peekNone, or peekEnd (the client
// hung up, or the connection is closed).
func (w *pollWatch) peek() int {
	w.res = peekEnd
	w.c.rc.Control(w.peekFn)
	return w.res
}

func (w *pollWatch) peekConn(fd uintptr) { w.res = peekSocket(fd) }
