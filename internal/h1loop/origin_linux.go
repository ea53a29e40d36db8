//go:build linux

package h1loop

import (
	"io"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/origin"
)

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
