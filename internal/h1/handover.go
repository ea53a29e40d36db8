package h1

import (
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"
)

// ServeConn serves nc, a connection accepted elsewhere, as Serve serves
// the connections it accepts; buffered holds the bytes already read from
// nc, which are taken as its first (internal/h1loop hands over a
// connection it will not serve, with the request it read). It returns at
// once: the connection is served on its own goroutine, and Shutdown and
// Close count it. After Shutdown or Close, nc is closed at once.
func (s *Server) ServeConn(nc net.Conn, buffered []byte) {
	c := newConn(s, nc)
	if len(buffered) > 0 {
		if len(buffered) <= bufSize {
			c.buf = getBuf()
		} else {
			c.buf = make([]byte, len(buffered))
		}
		c.w = copy(c.buf, buffered)
	}
	if !s.trackConn(c) {
		nc.Close()
		c.r = c.w
		c.releaseBuf()
		return
	}
	c.setState(http.StateNew)
	go c.serve()
}

// AppendStatusLine appends the status line this server writes for code.
func AppendStatusLine(out []byte, code int) []byte { return appendStatusLine(out, code) }

// AppendDate appends the Date field this server writes ("Date: ...\r\n"),
// formatted once a second.
func AppendDate(out []byte) []byte { return appendDate(out) }

// FieldIs reports whether the field name equals lower, a lower-case
// name, in any case.
func FieldIs(name []byte, lower string) bool { return equalFold(name, lower) }

// Has reports whether r has a field named lower (a lower-case name), in
// any case.
func (r *Request) Has(lower string) bool {
	for _, f := range r.Fields {
		if equalFold(f.Name, lower) {
			return true
		}
	}
	return false
}

// AcceptBackoff reports whether an Accept error is one to wait out and
// try again (a timeout, no file descriptors left, an aborted connection),
// as net/http does: then it doubles *delay (5 ms to 1 s) and sleeps that
// long. Any other error ends the serving.
func AcceptBackoff(err error, delay *time.Duration, logf func(format string, args ...any)) bool {
	if ne, ok := err.(net.Error); !(ok && ne.Timeout() || errors.Is(err, syscall.EMFILE) ||
		errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED)) {
		return false
	}
	*delay = min(max(2**delay, 5*time.Millisecond), time.Second)
	logf("Accept error: %v; retrying in %v", err, *delay)
	time.Sleep(*delay)
	return true
}
