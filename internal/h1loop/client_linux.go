//go:build linux

package h1loop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/origin"
)

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
