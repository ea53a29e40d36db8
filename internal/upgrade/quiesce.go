package upgrade

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/turnout/turnout/internal/h1"
)

// quiesceGrace is how long Quiesce waits after the last accepted
// connection delivered its first bytes, so the server has parsed that
// request before the caller shuts it down.
const quiesceGrace = 100 * time.Millisecond

// Listener wraps a listener so that it can be quiesced before the server
// on it shuts down.
//
// http.Server.Shutdown alone drops requests in a hand-over: a connection
// accepted just before Shutdown whose first request is read just after it
// began is closed without an answer (net/http's conn.serve returns when it
// sees the server shutting down), and a client on a fresh connection does
// not retry, so it sees EOF. Quiesce closes the listener first (the socket
// stays open in the new process, so no connection is refused), waits until
// every connection it accepted has sent something, and only then should the
// caller call Shutdown, which answers those requests and closes idle
// keep-alive connections (where clients retry idempotent requests).
type Listener struct {
	net.Listener

	// tls: the server speaks TLS on these connections, so a connection's
	// first bytes are its ClientHello, not its request (see trackedConn.Read).
	tls bool

	mu    sync.Mutex
	fresh map[*trackedConn]struct{}
	last  time.Time     // when a fresh connection last delivered bytes
	quiet chan struct{} // closed and replaced whenever fresh becomes empty
}

// Track wraps ln.
func Track(ln net.Listener) *Listener {
	return &Listener{Listener: ln, fresh: map[*trackedConn]struct{}{}, quiet: make(chan struct{})}
}

// TrackTLS wraps ln, on which the server terminates TLS.
func TrackTLS(ln net.Listener) *Listener {
	l := Track(ln)
	l.tls = true
	return l
}

// Accept accepts a connection and tracks it until its first read.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.fresh[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

func (l *Listener) started(tc *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.fresh[tc]; !ok {
		return
	}
	delete(l.fresh, tc)
	l.last = time.Now()
	if len(l.fresh) == 0 {
		close(l.quiet)
		l.quiet = make(chan struct{})
	}
}

// Quiesce closes the listener and waits until every accepted connection
// has delivered its first bytes or closed, plus a short grace, or until ctx
// ends. A server's Serve on l returns the close error; ignore it.
func (l *Listener) Quiesce(ctx context.Context) {
	l.Listener.Close()
	for {
		l.mu.Lock()
		n, quiet, last := len(l.fresh), l.quiet, l.last
		l.mu.Unlock()
		if n == 0 {
			if wait := quiesceGrace - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
			return
		}
		select {
		case <-quiet:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

type trackedConn struct {
	net.Conn
	l     *Listener
	once  sync.Once
	wrote atomic.Bool // the server has written (its TLS handshake flight)
}

// Read marks the connection started at its first bytes. On a TLS listener
// those are the ClientHello: the request comes after the handshake, so the
// connection counts as started only at the first bytes read after the
// server answered the ClientHello (the client's Finished, which the
// request follows at once), and the grace runs from there.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil || n > 0 && (!c.l.tls || c.wrote.Load()) {
		c.once.Do(func() { c.l.started(c) })
	}
	return n, err
}

// SyscallConn hands the socket to a server that reads through it
// (turnout's HTTP/1.1 server waits for an idle connection's next request
// that way): a read callback that is done counts as a Read that returned.
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	return h1.NotifyingRawConn(c.Conn, func() {
		if !c.l.tls || c.wrote.Load() {
			c.once.Do(func() { c.l.started(c) })
		}
	})
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.wrote.Store(true)
	return c.Conn.Write(p)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.l.started(c) })
	return c.Conn.Close()
}

// File returns a copy of the socket under ln (a Track listener or a
// *net.TCPListener / *net.UnixListener), which stays open when ln closes.
func File(ln net.Listener) (*os.File, error) {
	if t, ok := ln.(*Listener); ok {
		ln = t.Listener
	}
	f, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("upgrade: a %T has no socket to copy", ln)
	}
	return f.File()
}
