package h1conformance

import (
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// streamBody is what /stream?n=n writes.
func streamBody(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	return b.String()
}

// noBodyThenNext is a case sending method target, then GET /echo?after on
// the same connection: the first answer must have status and no body
// (RFC 9112 §6.3 ¶2), which the second answer's being intact proves.
func noBodyThenNext(name, method, target string, status int, check func(testing.TB, *response)) testCase {
	return testCase{name, func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send(method + " " + target + " HTTP/1.1\r\n" + host + "\r\n" + "GET /echo?after HTTP/1.1\r\n" + host + "\r\n")
		resp := c.final(method)
		if resp.status != status {
			t.Fatalf("want %d, got %v", status, resp)
		}
		if check != nil {
			check(t, resp)
		}
		if next := c.after(resp, "GET"); next != nil {
			wantEcho(t, next, "GET", "/echo?after", "")
		}
	}}
}

// noTE fails the case if resp has a Transfer-Encoding field.
func noTE(t testing.TB, resp *response) {
	t.Helper()
	if te := resp.get("Transfer-Encoding"); te != "" {
		t.Fatalf("Transfer-Encoding %q in a %d response", te, resp.status)
	}
}

var responseCases = []testCase{
	noBodyThenNext("9110-9.3.2/head-length", "HEAD", "/big?n=100", 200, func(t testing.TB, resp *response) {
		if cl := resp.get("Content-Length"); cl != "" && cl != "100" {
			t.Fatalf("HEAD's Content-Length %q, want none or the GET's 100", cl)
		}
	}),
	noBodyThenNext("9110-9.3.2/head-streamed", "HEAD", "/stream?n=3", 200, nil),
	noBodyThenNext("9110-15.3.5/no-content", "GET", "/status/204", 204, noTE),
	noBodyThenNext("9110-15.4.5/not-modified", "GET", "/status/304", 304, noTE),
	// RFC 9110 §10.1.1: with Expect: 100-continue the server sends 100
	// when the handler reads the body, and a client that has not sent the
	// body yet gets no final answer until it does.
	{"9110-10.1.1/expect-100-continue", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("POST /echo HTTP/1.1\r\n" + host + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		resp, err := c.next("POST")
		if err != nil || resp.status != 100 {
			t.Fatalf("want 100 Continue before the body, got %v (%v)", resp, err)
		}
		c.quiet(300 * time.Millisecond)
		c.send("hello")
		wantEcho(t, c.final("POST"), "POST", "/echo", "hello")
	}},
	{"9110-10.1.1/expect-unread-body", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("POST /discard HTTP/1.1\r\n" + host + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		resp, err := c.next("POST")
		if err != nil || resp.status != 200 {
			t.Fatalf("want /discard's 200 with no 100 before it, got %v (%v)", resp, err)
		}
	}},
	{"9110-10.1.1/no-100-unasked", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("POST /echo HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\n")
		c.quiet(300 * time.Millisecond)
		c.send("hello")
		resp, err := c.next("POST")
		if err != nil {
			t.Fatal(err)
		}
		if resp.status < 200 {
			t.Fatalf("a %d to a request without Expect: 100-continue", resp.status)
		}
		wantEcho(t, resp, "POST", "/echo", "hello")
	}},
	// RFC 9112 §6.1: no chunked encoding to an HTTP/1.0 client.
	{"9112-6.1/http10-not-chunked", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("GET /stream?n=5 HTTP/1.0\r\n" + host + "\r\n")
		resp := c.final("GET")
		noTE(t, resp)
		if resp.status != 200 || string(resp.body) != streamBody(5) {
			t.Fatalf("want 200 with %q, got %v %q", streamBody(5), resp, resp.body)
		}
	}},
	{"9112-6.1/http10-large", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("GET /big?n=300000 HTTP/1.0\r\n" + host + "\r\n")
		resp := c.final("GET")
		noTE(t, resp)
		if resp.status != 200 || len(resp.body) != 300000 {
			t.Fatalf("want 200 with 300000 bytes, got %v", resp)
		}
	}},
	// RFC 9110 §6.6.1: an origin server with a clock sends Date in 2xx,
	// 3xx and 4xx responses.
	{"9110-6.6.1/date", func(t testing.TB, s *server) {
		for _, target := range []string{"/echo", "/status/304", "/no-such-endpoint"} {
			resp := s.get(t, target)
			d, err := http.ParseTime(resp.get("Date"))
			if err != nil {
				t.Fatalf("%s: Date %q: %v", target, resp.get("Date"), err)
			}
			if off := time.Since(d); off > time.Minute || off < -time.Minute {
				t.Fatalf("%s: Date %v is %v off", target, d, off)
			}
		}
	}},
	// RFC 9112 §7.1: a response of unknown length to an HTTP/1.1 client,
	// flushed as it is written, is chunked.
	{"9112-7.1/streamed-is-chunked", func(t testing.TB, s *server) {
		resp := s.get(t, "/stream?n=5")
		if resp.framing != chunkedBody || string(resp.body) != streamBody(5) {
			t.Fatalf("want a chunked %q, got %v %q", streamBody(5), resp, resp.body)
		}
	}},
	{"9112-7.1/large-chunked", func(t testing.TB, s *server) {
		resp := s.get(t, "/big?n=3000000")
		if resp.status != 200 || len(resp.body) != 3000000 || strings.Trim(string(resp.body), "x\n") != "" {
			t.Fatalf("want 200 with 3000000 bytes of x, got %v", resp)
		}
	}},
	// RFC 9112 §8: a response the server cannot finish must not end as if
	// complete; for chunked, no last chunk.
	{"9112-8/aborted-response", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("GET /abort HTTP/1.1\r\n" + host + "\r\n")
		resp, err := c.next("GET")
		if err == nil {
			t.Fatalf("an aborted response ended cleanly: %v %q", resp, resp.body)
		}
		if !errors.Is(err, errTruncated) {
			t.Fatalf("want a truncated body, got %v", err)
		}
		if !strings.HasPrefix(string(resp.body), "partial") {
			t.Fatalf("want the part written before the abort, got %q", resp.body)
		}
	}},
}

// quiet fails the case if the server sends anything within d.
func (c *conn) quiet(d time.Duration) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	if _, err := c.br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		b, _ := c.br.Peek(c.br.Buffered())
		c.t.Fatalf("want nothing from the server for %v, got %q (%v)", d, b, err)
	}
	c.nc.SetReadDeadline(time.Now().Add(caseDeadline))
}
