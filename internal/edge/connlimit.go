package edge

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/turnout/turnout/internal/h1"
)

// A public listener holds at most limits.max_connections connections. When
// all of them are taken and a new client connects, the connection that has
// been idle the longest — a keep-alive connection between two requests —
// is closed to make room for it, so clients that connected once and went
// quiet cannot lock everyone else out (with netutil.LimitListener, which
// this replaces, 10,000 such clients left new ones waiting in the accept
// queue until they timed out: issue 13). Envoy's overload manager answers
// the same pressure by draining keep-alive connections or shortening idle
// timeouts; closing the connection idle the longest, and only when a new
// client is waiting, takes no more than that client needs.
//
// What counts as idle:
//
//   - HTTP/1: from the end of a response (http.Server's StateIdle) until
//     the client sends the next byte. A connection that has received part
//     of a request is never closed, nor is one that has not finished its
//     first request (those are bounded by read_header_timeout).
//   - HTTP/2: no stream open (StateIdle, which net/http reports for HTTP/2
//     as well) and nothing received for h2Quiet, so a HEADERS frame just
//     read is never cut off before its stream opens.
//   - Hijacked connections (WebSockets) are never closed.
//
// When no connection is idle, new clients wait in the kernel's accept
// queue, as before, until one closes or goes idle.
//
// A connection is closed without a word (net/http offers no way to send
// one HTTP/2 connection a GOAWAY from outside), as idle_timeout closes an
// HTTP/1 one. A client that sends a request at that very moment sees the
// connection closed before any answer; HTTP clients retry idempotent
// requests on a fresh connection then (RFC 9112 §9.3.1), and the
// connection idle the longest is the least likely to be in that moment.
//
// The request path takes no lock: ConnState and Read only touch the
// connection's own atomics. Accepting and closing a connection take the
// listener's mutex, and finding the longest idle connections scans them
// all, once per evictBatch evictions.

// h2Quiet is how long an HTTP/2 connection with no stream open must have
// received nothing before it counts as idle.
const h2Quiet = time.Second

// evictBatch is how many of the longest idle connections one scan finds;
// the next ones to close are taken from them until they run out.
const evictBatch = 32

// recheckEvery bounds how long Accept sleeps at the limit, for HTTP/2
// connections that turn idle when their quiet time is up (nothing else
// announces that).
const recheckEvery = 100 * time.Millisecond

// Connection states, kept by conn.state.
const (
	stNew      int32 = iota // accepted, first request not yet read
	stActive                // a request in progress, or bytes of one received
	stIdle                  // between requests
	stHijacked              // handed over by the handler; never closed here
	stEvicted               // being closed to make room
)

// Protocols, kept by conn.proto.
const (
	protoUnknown int32 = iota
	protoHTTP1
	protoHTTP2
)

// epoch anchors mono, a monotonic clock in nanoseconds.
var epoch = time.Now()

func mono() int64 { return int64(time.Since(epoch)) }

// connLimit caps and tracks one listener's connections.
type connLimit struct {
	name string // listener label: http or https
	max  int

	mu    sync.Mutex
	open  []*conn // conn.idx is each one's index
	ready []evictable
	full  atomic.Bool   // len(open) >= max: idle transitions wake a waiting Accept
	wake  chan struct{} // buffered 1: a connection closed or went idle

	evicted atomic.Int64
}

// evictable is a connection found idle by a scan, with its idle key then.
type evictable struct {
	c   *conn
	key int64
}

func newConnLimit(name string, limit int) *connLimit {
	return &connLimit{name: name, max: limit, wake: make(chan struct{}, 1)}
}

// listener wraps ln. max <= 0 (Limits built by hand, without
// WithDefaults) leaves ln uncapped and untracked rather than refusing
// every connection.
func (l *connLimit) listener(ln net.Listener) net.Listener {
	if l.max <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, l: l, closed: make(chan struct{})}
}

func (l *connLimit) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// wait returns once l has room, or an idle connection it can close to
// make room, or closed is closed. With c, it then admits c, closing that
// connection; when it is no longer idle by then (a rare race), c waits
// here, accepted, for the next one.
func (l *connLimit) wait(c *conn, closed <-chan struct{}) error {
	var timer *time.Timer
	for {
		l.mu.Lock()
		if len(l.open) < l.max {
			if c != nil {
				c.idx = len(l.open)
				l.open = append(l.open, c)
				l.full.Store(len(l.open) >= l.max)
			}
			l.mu.Unlock()
			return nil
		}
		l.full.Store(true)
		victim := l.nextIdleLocked(c != nil)
		l.mu.Unlock()
		if victim != nil {
			if c == nil {
				return nil
			}
			victim.evict()
			continue
		}
		if timer == nil {
			timer = time.NewTimer(recheckEvery)
			defer timer.Stop()
		} else {
			timer.Reset(recheckEvery)
		}
		select {
		case <-l.wake:
		case <-timer.C:
		case <-closed:
			return net.ErrClosed
		}
	}
}

// nextIdleLocked returns the connection idle the longest, or nil when none
// is; take removes it from the batch the last scan found. It is taken from
// that batch as long as the connection is still idle with the same key
// (one that has since been busy is younger than any other the scan passed
// over); when the batch runs out, it scans again.
func (l *connLimit) nextIdleLocked(take bool) *conn {
	now := mono()
	for pass := 0; pass < 2; pass++ {
		for len(l.ready) > 0 {
			e := l.ready[0]
			if key, ok := e.c.idleKey(now); ok && key == e.key && e.c.idx >= 0 {
				if take {
					l.ready = l.ready[1:]
				}
				return e.c
			}
			l.ready = l.ready[1:]
		}
		if pass == 0 {
			l.scanLocked(now)
		}
	}
	return nil
}

// scanLocked fills l.ready with up to evictBatch idle connections, the
// longest idle first.
func (l *connLimit) scanLocked(now int64) {
	batch := l.ready[:0]
	if cap(batch) < evictBatch {
		batch = make([]evictable, 0, evictBatch)
	}
	for _, c := range l.open {
		key, ok := c.idleKey(now)
		if !ok || len(batch) == evictBatch && key >= batch[len(batch)-1].key {
			continue
		}
		if len(batch) < evictBatch {
			batch = append(batch, evictable{})
		}
		i := len(batch) - 1
		for ; i > 0 && batch[i-1].key > key; i-- {
			batch[i] = batch[i-1]
		}
		batch[i] = evictable{c, key}
	}
	l.ready = batch
}

func (l *connLimit) remove(c *conn) {
	l.mu.Lock()
	last := len(l.open) - 1
	l.open[c.idx] = l.open[last]
	l.open[c.idx].idx = c.idx
	l.open[last] = nil
	l.open = l.open[:last]
	c.idx = -1
	l.full.Store(len(l.open) >= l.max)
	l.mu.Unlock()
	l.signal()
}

// stats returns how many connections are open and how many were closed
// to make room.
func (l *connLimit) stats() (open int, evicted int64) {
	l.mu.Lock()
	open = len(l.open)
	l.mu.Unlock()
	return open, l.evicted.Load()
}

// limitListener admits accepted connections through its connLimit.
type limitListener struct {
	net.Listener
	l         *connLimit
	closed    chan struct{}
	closeOnce sync.Once
}

func (ll *limitListener) Accept() (net.Conn, error) {
	// While every connection is busy, new clients stay in the kernel's
	// accept queue, where after an upgrade the next process finds them.
	if err := ll.l.wait(nil, ll.closed); err != nil {
		return nil, err
	}
	nc, err := ll.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, l: ll.l}
	if err := ll.l.wait(c, ll.closed); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (ll *limitListener) Close() error {
	ll.closeOnce.Do(func() { close(ll.closed) })
	return ll.Listener.Close()
}

// conn is an admitted connection. Its state follows http.Server's
// ConnState hook (trackState), and a read while idle marks an HTTP/1
// connection active before net/http has parsed a byte of the request.
type conn struct {
	net.Conn
	l *connLimit

	idx       int // in l.open; -1 once removed; guarded by l.mu
	state     atomic.Int32
	proto     atomic.Int32 // protoUnknown until the first request
	idleSince atomic.Int64 // mono at the last StateIdle
	lastRead  atomic.Int64 // mono at the last read, HTTP/2 only
	closeOnce sync.Once
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		switch c.proto.Load() {
		case protoHTTP2:
			c.lastRead.Store(mono())
		default:
			// The next request is arriving: from here on, closing the
			// connection would cut it off.
			if c.state.Load() == stIdle {
				c.state.CompareAndSwap(stIdle, stActive)
			}
		}
	}
	return n, err
}

// SyscallConn hands the socket to a server that waits for readability
// itself (turnout's HTTP/1.1 server reads an idle connection's next
// request without holding a buffer): the raw connection's reads are the
// connection's reads, so they end its idleness as Read does.
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	return h1.NotifyingRawConn(c.Conn, c.readSome)
}

// readSome is Read's bookkeeping after a read: the next request is
// arriving, so closing the connection from here on would cut it off.
func (c *conn) readSome() {
	if c.proto.Load() != protoHTTP2 && c.state.Load() == stIdle {
		c.state.CompareAndSwap(stIdle, stActive)
	}
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() { c.l.remove(c) })
	return c.Conn.Close()
}

// idleKey reports whether c may be closed to make room and, if so, since
// when it has been idle (smaller is longer).
func (c *conn) idleKey(now int64) (int64, bool) {
	if c.state.Load() != stIdle {
		return 0, false
	}
	key := c.idleSince.Load()
	if c.proto.Load() == protoHTTP2 {
		key = max(key, c.lastRead.Load())
		if now-key < int64(h2Quiet) {
			return 0, false
		}
	}
	return key, true
}

// evict closes c if it is still idle.
func (c *conn) evict() {
	if c.state.CompareAndSwap(stIdle, stEvicted) {
		c.l.evicted.Add(1)
		c.Close()
	}
}

// trackState is http.Server's ConnState hook for the public listeners.
// nc is the *conn a limitListener returned, or the *tls.Conn around it.
func trackState(nc net.Conn, s http.ConnState) {
	tc, isTLS := nc.(*tls.Conn)
	if isTLS {
		nc = tc.NetConn()
	}
	c, ok := nc.(*conn)
	if !ok {
		return // an uncapped listener
	}
	var st int32
	switch s {
	case http.StateActive:
		st = stActive
	case http.StateIdle:
		c.idleSince.Store(mono())
		st = stIdle
	case http.StateHijacked:
		st = stHijacked
	default: // StateNew; StateClosed is handled by Close
		return
	}
	if c.proto.Load() == protoUnknown {
		// Once per connection, when its first request starts (HTTP/1) or
		// its preface has been read (HTTP/2).
		proto := protoHTTP1
		if isTLS && tc.ConnectionState().NegotiatedProtocol == "h2" {
			proto = protoHTTP2
		}
		c.proto.Store(proto)
	}
	for {
		old := c.state.Load()
		if old == stEvicted || c.state.CompareAndSwap(old, st) {
			break
		}
	}
	if st == stIdle && c.l.full.Load() {
		c.l.signal()
	}
}
