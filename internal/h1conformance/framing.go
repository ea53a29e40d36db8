package h1conformance

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

const host = "Host: conformance.test\r\n"

// wantEcho fails the case unless resp is /echo's 200 for a request with
// that method and target, carrying body.
func wantEcho(t testing.TB, resp *response, method, target, body string) {
	t.Helper()
	if resp.status != 200 {
		t.Fatalf("want 200 from /echo, got %v: %q", resp, resp.body)
	}
	if m, tg := resp.get("X-Echo-Method"), resp.get("X-Echo-Target"); m != method || tg != target {
		t.Fatalf("answer is for %s %s, want %s %s", m, tg, method, target)
	}
	if string(resp.body) != body || resp.get("X-Echo-Body-Length") != strconv.Itoa(len(body)) {
		t.Fatalf("echoed body %q (X-Echo-Body-Length %s), want %q", resp.body, resp.get("X-Echo-Body-Length"), body)
	}
}

// chunkedEcho is a case sending body with the given Transfer-Encoding
// value; the server must decode it to want. A request for /echo?after
// follows on the same connection, so a server that stops short of the end
// of the chunked body answers garbage instead.
func chunkedEcho(name, te, body, want string) testCase {
	return testCase{name, func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: " + te + "\r\n\r\n" + body +
			"GET /echo?after HTTP/1.1\r\n" + host + "\r\n")
		first := c.final("POST")
		wantEcho(t, first, "POST", "/echo", want)
		if next := c.after(first, "GET"); next != nil {
			wantEcho(t, next, "GET", "/echo?after", "")
		}
	}}
}

var framingCases = []testCase{
	{"9112-6.2/content-length", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("POST /echo HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello" +
			"GET /echo?after HTTP/1.1\r\n" + host + "\r\n")
		wantEcho(t, c.final("POST"), "POST", "/echo", "hello")
		wantEcho(t, c.final("GET"), "GET", "/echo?after", "")
	}},
	{"9112-6.3/content-length-zero", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("POST /echo HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n" +
			"GET /echo?after HTTP/1.1\r\n" + host + "\r\n")
		wantEcho(t, c.final("POST"), "POST", "/echo", "")
		wantEcho(t, c.final("GET"), "GET", "/echo?after", "")
	}},
	chunkedEcho("9112-7.1/chunked", "chunked", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"),
	chunkedEcho("9112-7.1/hex-sizes-either-case", "chunked",
		"a\r\n0123456789\r\nA\r\nabcdefghij\r\n1f\r\n"+strings.Repeat("u", 31)+"\r\n1F\r\n"+strings.Repeat("U", 31)+"\r\n0\r\n\r\n",
		"0123456789abcdefghij"+strings.Repeat("u", 31)+strings.Repeat("U", 31)),
	chunkedEcho("9112-7.1/leading-zeros", "chunked", "005\r\nhello\r\n000\r\n\r\n", "hello"),
	chunkedEcho("9112-7.1/only-last-chunk", "chunked", "0\r\n\r\n", ""),
	chunkedEcho("9112-7.1.1/chunk-extensions", "chunked",
		"5;name=value\r\nhello\r\n1;a;b=\"quoted ; string\"\r\n!\r\n0;last=1\r\n\r\n", "hello!"),
	chunkedEcho("9112-7.1.2/trailer-section", "chunked", "5\r\nhello\r\n0\r\nX-Checksum: 1234\r\n\r\n", "hello"),
	// RFC 9112 §7: transfer-coding names are case-insensitive.
	chunkedEcho("9112-7/coding-name-case", "Chunked", "5\r\nhello\r\n0\r\n\r\n", "hello"),

	{"9112-6.2/body-in-delayed-writes", func(t testing.TB, s *server) {
		c := s.dial(t)
		for _, part := range []string{"POST /echo HTTP/1.1\r\n" + host, "Content-Length: 11\r\n\r\n", "hello", " wor", "ld"} {
			c.send(part)
			time.Sleep(50 * time.Millisecond)
		}
		wantEcho(t, c.final("POST"), "POST", "/echo", "hello world")
	}},
	{"9112-7.1/chunked-in-delayed-writes", func(t testing.TB, s *server) {
		c := s.dial(t)
		// Splits fall inside a size line, inside data, and between the
		// last chunk and the empty line that ends the trailer section.
		for _, part := range []string{"POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n",
			"5\r\nhel", "lo\r\n1", "\r\n!\r\n0\r\n", "\r\n"} {
			c.send(part)
			time.Sleep(50 * time.Millisecond)
		}
		wantEcho(t, c.final("POST"), "POST", "/echo", "hello!")
	}},
	{"9112-9.3.2/pipelined", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("GET /echo?1 HTTP/1.1\r\n" + host + "\r\n" +
			"POST /echo?2 HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\ntwo" +
			"POST /echo?3 HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n" +
			"GET /echo?4 HTTP/1.1\r\n" + host + "\r\n")
		want := []struct{ method, target, body string }{
			{"GET", "/echo?1", ""}, {"POST", "/echo?2", "two"}, {"POST", "/echo?3", "three"}, {"GET", "/echo?4", ""},
		}
		resp := c.final("GET")
		wantEcho(t, resp, want[0].method, want[0].target, want[0].body)
		for _, w := range want[1:] {
			if resp = c.after(resp, w.method); resp == nil {
				return
			}
			wantEcho(t, resp, w.method, w.target, w.body)
		}
	}},
	unreadBody("9112-9.3/unread-length-body", "Content-Length: "+strconv.Itoa(len(smuggled)), smuggled),
	unreadBody("9112-9.3/unread-chunked-body", "Transfer-Encoding: chunked",
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)),
	{"9112-9.3/unread-large-body", func(t testing.TB, s *server) {
		// Larger than any server drains (net/http drains 256 KiB): the
		// server must close, or read it all and answer the next request.
		c := s.dial(t)
		const n = 4 << 20
		go func() {
			c.nc.Write([]byte("POST /discard HTTP/1.1\r\n" + host + "Content-Length: " + strconv.Itoa(n) + "\r\n\r\n"))
			c.nc.Write(make([]byte, n))
			c.nc.Write([]byte("GET /echo?after HTTP/1.1\r\n" + host + "\r\n"))
		}()
		got, end := c.answers("POST", 2)
		if len(got) == 0 {
			t.Fatalf("no answer to the POST: %v", end)
		}
		if got[0].status != 200 || string(got[0].body) != "ok" {
			t.Fatalf("want /discard's 200 ok, got %v %q", got[0], got[0].body)
		}
		if len(got) == 2 {
			wantEcho(t, got[1], "GET", "/echo?after", "")
		} else if !gone(end) {
			t.Fatalf("after the POST's answer: want the next answer or a close, got %v", end)
		}
	}},
}

// unreadBody is a case whose request body, which /discard does not read,
// looks like a request: the server must skip it and answer the request
// after it, or close the connection, and never answer the body.
func unreadBody(name, framing, body string) testCase {
	return testCase{name, func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("POST /discard HTTP/1.1\r\n" + host + framing + "\r\n\r\n" + body +
			"GET /echo?after HTTP/1.1\r\n" + host + "\r\n")
		got, end := c.answers("POST", 2)
		if len(got) == 0 || got[0].status != 200 || string(got[0].body) != "ok" {
			t.Fatalf("want /discard's 200 ok first, got %v (%v)", got, end)
		}
		switch {
		case len(got) == 1 && gone(end):
		case len(got) == 2:
			if smuggledAnswer(got[1]) {
				t.Fatalf("the server answered the unread body as a request")
			}
			wantEcho(t, got[1], "GET", "/echo?after", "")
		default:
			t.Fatalf("after /discard's answer: want /echo?after's or a close, got %v", end)
		}
	}}
}
