package h1conformance

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// oversize is a case sending a request whose head is 64 KiB over the
// server's limit, built by build from a filler of that many bytes. The
// server must answer one of statuses; the connection may then be reset
// before the answer's body ends, since the client is still writing.
func oversize(name string, build func(filler string) string, statuses ...int) testCase {
	return testCase{name, func(t testing.TB, s *server) {
		c := s.dial(t)
		raw := build(strings.Repeat("a", s.opts.MaxHeaderBytes+64<<10))
		// Write while reading: the server may answer and close before it
		// has read everything.
		go c.nc.Write([]byte(raw))
		resp, err := c.next("GET")
		if err != nil && (resp == nil || !gone(err)) {
			t.Fatalf("want %v for a head over %d bytes, got %v", statuses, s.opts.MaxHeaderBytes, err)
		}
		if !slices.Contains(statuses, resp.status) {
			t.Fatalf("want %v for a head over %d bytes, got %v", statuses, s.opts.MaxHeaderBytes, resp)
		}
	}}
}

var limitCases = []testCase{
	oversize("9110-5.4/oversize-fields", func(filler string) string {
		var b strings.Builder
		b.WriteString("GET /echo HTTP/1.1\r\n" + host)
		for len(filler) > 0 {
			n := min(len(filler), 8<<10)
			b.WriteString("X-Filler: " + filler[:n] + "\r\n")
			filler = filler[n:]
		}
		b.WriteString("\r\n")
		return b.String()
	}, 431),
	oversize("9112-3/oversize-request-line", func(filler string) string {
		return "GET /echo?" + filler + " HTTP/1.1\r\n" + host + "\r\n"
	}, 414, 431),
	// RFC 9112 §9.5 lets a server close a connection it waits on; a head
	// that trickles in a byte at a time must not hold it open past the
	// server's read-header timeout.
	{"9112-9.5/slowloris-head", func(t testing.TB, s *server) {
		c := s.dial(t)
		bound := s.opts.ReadHeaderTimeout + closeGrace
		c.nc.SetDeadline(time.Now().Add(bound + time.Second))
		c.send("GET /echo HTTP/1.1\r\n" + host + "X-Slow: ")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.nc.Write([]byte("a")); err != nil {
						return
					}
				}
			}
		}()
		start := time.Now()
		c.nc.SetReadDeadline(start.Add(bound))
		resp, err := c.next("GET")
		switch {
		case err == nil && (resp.status == 408 || resp.status == 400):
			c.closed(closeGrace)
		case err == nil:
			t.Fatalf("want a close (or 408) for a head still arriving after %v, got %v", s.opts.ReadHeaderTimeout, resp)
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("the connection is still open %v into a trickling head (read-header timeout %v)", bound, s.opts.ReadHeaderTimeout)
		case !gone(err):
			t.Fatalf("want a close, got %v", err)
		}
		if d := time.Since(start); d < s.opts.ReadHeaderTimeout/2 {
			t.Fatalf("closed after %v, well before the read-header timeout %v", d, s.opts.ReadHeaderTimeout)
		}
	}},
}
