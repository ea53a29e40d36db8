package h1conformance

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var connectionCases = []testCase{
	// RFC 9112 §9.3: HTTP/1.1 connections persist by default.
	{"9112-9.3/persistent-by-default", func(t testing.TB, s *server) {
		c := s.dial(t)
		for i := range 3 {
			target := fmt.Sprintf("/echo?%d", i)
			c.send("GET " + target + " HTTP/1.1\r\n" + host + "\r\n")
			resp := c.final("GET")
			wantEcho(t, resp, "GET", target, "")
			if resp.closes() {
				t.Fatalf("answer %d closes the connection: %v", i, resp)
			}
		}
	}},
	// RFC 9112 §9.6: a server that receives "close" closes after its
	// answer.
	{"9112-9.6/connection-close", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("GET /echo HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n")
		wantEcho(t, c.final("GET"), "GET", "/echo", "")
		c.closed(closeGrace)
	}},
	// RFC 9112 §9.3: an HTTP/1.0 connection closes unless keep-alive.
	{"9112-9.3/http10-closes", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("GET /echo HTTP/1.0\r\n" + host + "\r\n")
		wantEcho(t, c.final("GET"), "GET", "/echo", "")
		c.closed(closeGrace)
	}},
	{"9112-9.3/http10-keep-alive", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("GET /echo HTTP/1.0\r\n" + host + "Connection: keep-alive\r\n\r\n")
		resp := c.final("GET")
		wantEcho(t, resp, "GET", "/echo", "")
		if !strings.Contains(strings.ToLower(resp.get("Connection")), "keep-alive") {
			c.closed(closeGrace) // the server declined to keep it
			return
		}
		if resp.framing != lengthBody {
			t.Fatalf("a kept-alive HTTP/1.0 answer must carry Content-Length, got %v", resp)
		}
		c.send("GET /echo?again HTTP/1.0\r\n" + host + "\r\n")
		wantEcho(t, c.final("GET"), "GET", "/echo?again", "")
	}},
	// RFC 9112 §9.5: a server may close an idle connection; it must, here,
	// within its idle timeout.
	{"9112-9.5/idle-timeout", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.nc.SetDeadline(time.Now().Add(s.opts.IdleTimeout + 2*closeGrace))
		c.send("GET /echo HTTP/1.1\r\n" + host + "\r\n")
		wantEcho(t, c.final("GET"), "GET", "/echo", "")
		c.closed(s.opts.IdleTimeout + closeGrace)
	}},
	// RFC 9112 §9.6: a client that half-closes after its request still
	// gets the answer.
	{"9112-9.6/half-closed-client", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("POST /echo HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello")
		if err := c.nc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		wantEcho(t, c.final("POST"), "POST", "/echo", "hello")
	}},
	// RFC 9112 §9.6 ¶9 (incomplete messages) and RFC 9110 §9.2.2: a client
	// that hangs up mid-request abandons it; the handler's context must
	// say so, rather than the server working on an answer nobody reads.
	{"9112-9.6/hang-up-cancels-handler", func(t testing.TB, s *server) {
		id := fmt.Sprintf("%x", rand.Uint64())
		c := s.dial(t)
		c.send("GET /slow?id=" + id + " HTTP/1.1\r\n" + host + "\r\n")
		waitSlow(t, s, id, "pending")
		c.nc.Close()
		waitSlow(t, s, id, "cancelled")
	}},
}

// waitSlow polls /slow-result until /slow's request id is in state want.
func waitSlow(t testing.TB, s *server, id, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp := s.get(t, "/slow-result?id="+id)
		got := string(resp.body)
		if resp.status == 200 && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/slow %s: want %q within 3s, still %v %q", id, want, resp, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
