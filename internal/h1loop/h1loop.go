// Package h1loop serves turnout's plain origin routes over HTTP/1.1 on
// event loops, as nginx does: one loop per P, each an epoll instance on a
// locked thread driving every socket it owns with non-blocking reads and
// writes, keep-alive origin connections per loop, nothing allocated per
// request in its own code. A request it does not serve (see Server)
// moves its connection, once and for good, to the goroutine server
// (h1.Server), which answers it as it always has.
package h1loop

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/origin"
)

// Exchange is one request the gateway lets the loop serve, from the
// router's yes to End (internal/gateway's LoopExchange).
type Exchange interface {
	Wire() origin.Wire
	Path() string
	RawQuery() []byte
	RequestID() string
	AppendServedFields(dst []byte) []byte
	AppendFailure(dst []byte, err *origin.Error) []byte
	End(status int, n int64, failure *origin.Error, clientClosed bool, err error)
}

// Router decides whether the loop serves req, a complete request head
// without a body, from remote ("ip:port"); false hands the connection
// to Server.Fallback.
type Router func(req *h1.Request, remote string) (Exchange, bool)

// Server serves a plain HTTP/1.1 listener on event loops. It serves a
// request itself only when
//
//   - it is HTTP/1.1 without a body (no Content-Length above 0, not
//     chunked), without Upgrade or Expect, could be sent to the origin
//     again (origin.Replayable: not a POST or PATCH), and its head fits
//     in MaxHeaderBytes, and
//   - Route says yes: a plain origin route the gateway serves (no
//     function, authorizer, CORS, API key, canary, shadow, rate limit,
//     breaker, route timeout or fallback) on an http origin instance.
//
// Anything else — including every request the gateway refuses — hands
// the connection with the bytes read from it to Fallback, for good. Both
// paths forward and record a request the same way (internal/origin's
// Wire and internal/gateway's LoopExchange share the goroutine path's
// code for it).
//
// Connections are capped at MaxConns, as the goroutine path's listener
// caps them: when they are all taken, a loop closes its connection idle
// the longest to make room for a new client, or leaves new clients in
// the accept queue while none of its own is idle. Each loop applies the
// cap to the connections it holds, as a share of MaxConns; connections
// handed to Fallback count until they close but are never closed to make
// room.
type Server struct {
	Route    Router
	Fallback *h1.Server
	// ReadHeaderTimeout, IdleTimeout and MaxHeaderBytes are
	// h1.Server's, and mean the same.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxConns caps the connections (0: none).
	MaxConns int
	// Loops is the number of event loops; 0 means GOMAXPROCS.
	Loops int
	// Logf receives what goes wrong outside a request (nil: dropped).
	Logf func(format string, args ...any)

	mu        sync.Mutex
	loops     []*loop
	listeners h1.Listeners
	started   bool
	exited    chan struct{} // a loop returned
	room      chan struct{} // a connection closed or went idle
	killed    atomic.Bool   // Close was called
	closing   atomic.Bool   // Shutdown or Close was called
	open      atomic.Int64  // client connections, handed over or not
	owned     atomic.Int64  // client connections the loops hold
	evicted   atomic.Int64
}

// ErrUnsupported is returned by Serve where event loops are not built
// (not Linux); use the goroutine server there.
var ErrUnsupported = errors.New("h1loop: event loops are available on Linux only")

// Stats reports the open client connections (the loops' and those handed
// over) and how many were closed to make room for new ones.
func (s *Server) Stats() (open int, evicted int64) {
	return int(s.open.Load()), s.evicted.Load()
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// handed is a connection given to Fallback; closing it releases its place
// under MaxConns.
type handed struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (h *handed) Close() error {
	h.once.Do(func() {
		h.s.open.Add(-1)
		h.s.freed()
	})
	return h.Conn.Close()
}

// Shutdown stops accepting (closing the listeners Serve was given),
// closes idle connections, lets the requests in progress finish and
// closes their connections, then shuts Fallback down; it returns when all
// is closed, or when ctx ends (then with ctx's error, after Close).
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.owned.Load() > 0 {
		s.wakeAll()
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
	s.waitLoops(ctx.Done())
	if s.Fallback != nil {
		return s.Fallback.Shutdown(ctx)
	}
	return nil
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.killed.Store(true)
	s.closeListeners()
	s.wakeAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.waitLoops(ctx.Done())
	if s.Fallback != nil {
		return s.Fallback.Close()
	}
	return nil
}

func (s *Server) closeListeners() { s.listeners.Close() }

// waitLoops waits until every loop has returned (they do once closing
// with no client connection left), or until stop.
func (s *Server) waitLoops(stop <-chan struct{}) {
	s.mu.Lock()
	n, exited := len(s.loops), s.exited
	s.loops = nil
	s.mu.Unlock()
	for ; n > 0; n-- {
		select {
		case <-exited:
		case <-stop:
			return
		}
	}
}
