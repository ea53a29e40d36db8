package h1conformance

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"
)

// closeGrace bounds how long a server may take to close a connection it
// must close.
const closeGrace = 2 * time.Second

// vector is a case sending raw, which RFC 9112 says a server must refuse
// with one of statuses and then close, or (if handled is not nil) may
// instead handle, as handled checks. A server may also close without
// answering. No answer may come from the bytes of the smuggled request
// that raw carries.
func vector(name, raw string, statuses []int, handled func(testing.TB, *server, *conn, *response)) testCase {
	return testCase{name, func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send(raw)
		resp, err := c.next("POST")
		for err == nil && resp.status < 200 {
			resp, err = c.next("POST")
		}
		if err != nil {
			if resp == nil && gone(err) {
				t.Logf("closed without answering (%v)", err)
				return
			}
			if resp != nil && gone(err) && slices.Contains(statuses, resp.status) {
				// A server closing with the vector's bytes unread
				// may reset the connection before its body ends.
				t.Logf("refused with %d, then reset (%v)", resp.status, err)
				return
			}
			t.Fatalf("reading the answer: %v (%v)", err, resp)
		}
		if smuggledAnswer(resp) {
			t.Fatalf("the server answered the smuggled request")
		}
		if slices.Contains(statuses, resp.status) {
			t.Logf("refused with %d", resp.status)
			c.closed(closeGrace)
			return
		}
		if handled == nil {
			t.Fatalf("want one of %v and a close, got %v: %q", statuses, resp, resp.body)
		}
		t.Logf("handled: %v", resp)
		handled(t, s, c, resp)
	}}
}

// refuse is a vector a server must refuse.
func refuse(name, raw string, statuses ...int) testCase {
	return vector(name, raw, statuses, nil)
}

// fieldValue is a vector putting value in an X-Test field: the server must
// refuse it, or (RFC 9110 §5.5, RFC 9112 §5.2) replace the offending bytes
// with SP, as want shows.
func fieldValue(name, value, want string) testCase {
	return vector(name, "GET /echo HTTP/1.1\r\n"+host+"X-Test: "+value+"\r\n\r\n", []int{400},
		func(t testing.TB, s *server, c *conn, resp *response) {
			if resp.status != 200 || resp.get("X-Echo-Test") != want {
				t.Fatalf("want 400, or 200 with the value replaced by %q; got %v with %q", want, resp, resp.get("X-Echo-Test"))
			}
		})
}

// badLength is a vector with a malformed Content-Length.
func badLength(name, value string) testCase {
	return refuse(name, "POST /echo HTTP/1.1\r\n"+host+"Content-Length: "+value+"\r\n\r\nhello"+smuggled, 400)
}

// badChunked is a vector with a malformed chunked body. The server, or the
// handler reading the body, must answer 400 and close, or close.
func badChunked(name, body string) testCase {
	return refuse(name, "POST /echo HTTP/1.1\r\n"+host+"Transfer-Encoding: chunked\r\n\r\n"+body+smuggled, 400)
}

// badCoding is a vector with a Transfer-Encoding other than chunked alone:
// 400 when chunked is not the final coding (RFC 9112 §6.3), 501 for a
// coding the server does not know (§6.1).
func badCoding(name, te string) testCase {
	return refuse(name, "POST /echo HTTP/1.1\r\n"+host+te+"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"+smuggled, 400, 501)
}

var smugglingCases = []testCase{
	// RFC 9112 §6.3 ¶3: with both, Transfer-Encoding overrides
	// Content-Length; the server may refuse, or handle the chunked body
	// and then must close. Content-Length here spans the smuggled request,
	// so a server reading by it answers nothing more; one reading by
	// Transfer-Encoding and staying open answers the smuggled request.
	vector("9112-6.3/te-and-cl",
		"POST /echo HTTP/1.1\r\n"+host+"Content-Length: "+strconv.Itoa(5+len(smuggled))+"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+smuggled,
		[]int{400}, func(t testing.TB, s *server, c *conn, resp *response) {
			if resp.status != 200 || len(resp.body) != 0 {
				t.Fatalf("want 400, or 200 for an empty chunked body; got %v %q", resp, resp.body)
			}
			closesAfterTEAndCL(t, s, c)
		}),
	vector("9112-6.3/cl-and-te",
		"POST /echo HTTP/1.1\r\n"+host+"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n5\r\nhello\r\n0\r\n\r\n"+smuggled,
		[]int{400}, func(t testing.TB, s *server, c *conn, resp *response) {
			if resp.status != 200 || string(resp.body) != "hello" {
				t.Fatalf("want 400, or 200 for the chunked body; got %v %q", resp, resp.body)
			}
			closesAfterTEAndCL(t, s, c)
		}),
	// RFC 9112 §6.1: Transfer-Encoding on HTTP/1.0 means faulty framing;
	// the server must close after the message.
	vector("9112-6.1/te-on-http10",
		"POST /echo HTTP/1.0\r\n"+host+"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"+
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled),
		[]int{400, 501}, teOnHTTP10),
	refuse("9112-6.3/differing-content-lengths",
		"POST /echo HTTP/1.1\r\n"+host+"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"+smuggled, 400),
	badLength("9110-8.6/content-length-plus", "+5"),
	badLength("9110-8.6/content-length-minus", "-5"),
	badLength("9110-8.6/content-length-hex", "0x5"),
	badLength("9110-8.6/content-length-inner-space", "5 5"),
	badLength("9110-8.6/content-length-list", "5,6"),
	badLength("9110-8.6/content-length-overflow", "99999999999999999999999"),
	badCoding("9112-6.3/chunked-not-final", "Transfer-Encoding: chunked, identity"),
	badCoding("9112-6.1/unknown-coding", "Transfer-Encoding: xchunked"),
	badCoding("9112-6.1/chunked-twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
	badChunked("9112-7.1/invalid-chunk-size", "zz\r\nhello\r\n0\r\n\r\n"),
	badChunked("9112-7.1/chunk-size-overflow", "100000000000000005\r\nhello\r\n0\r\n\r\n"),
	badChunked("9112-7.1/chunk-size-sign", "+5\r\nhello\r\n0\r\n\r\n"),
	badChunked("9112-7.1/chunk-data-too-long", "5\r\nhello!!\r\n0\r\n\r\n"),
	badChunked("9112-7.1/chunk-size-bare-lf", "5\nhello\r\n0\r\n\r\n"),
	refuse("9112-5.1/space-before-colon",
		"POST /echo HTTP/1.1\r\n"+host+"Content-Length : 5\r\n\r\nhello"+smuggled, 400),
	fieldValue("9112-5.2/obs-fold", "a\r\n b", "a b"),
	fieldValue("9112-2.2/bare-cr", "a\rb", "a b"),
	fieldValue("9110-5.5/nul", "a\x00b", "a b"),
	refuse("9112-3.2/missing-host", "GET /echo HTTP/1.1\r\n\r\n", 400),
	refuse("9112-3.2/two-hosts", "GET /echo HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", 400),
	// RFC 9112 §3.2.2: with an absolute-form target, the server uses its
	// authority and ignores Host.
	{"9112-3.2.2/absolute-form-host", func(t testing.TB, s *server) {
		c := s.dial(t)
		c.send("GET http://target.test/echo HTTP/1.1\r\nHost: other.test\r\n\r\n")
		resp := c.final("GET")
		if resp.status != 200 || resp.get("X-Echo-Host") != "target.test" {
			t.Fatalf("want 200 for host target.test, got %v for %q", resp, resp.get("X-Echo-Host"))
		}
	}},
}

// closesAfterTEAndCL fails the case unless the server closes the
// connection after handling a request with both Transfer-Encoding and
// Content-Length (RFC 9112 §6.1: "Regardless, the server MUST close the
// connection after responding to such a request").
//
// net/http deviates: it drops Content-Length, reads the chunked body and
// keeps the connection, so it answers the smuggled request. That answer
// follows Transfer-Encoding's framing, as the RFC says, but a front that
// framed by Content-Length would disagree, which is what the close is for.
// turnout's gateway closes such connections itself (Connection: close on
// every chunked HTTP/1 request).
func closesAfterTEAndCL(t testing.TB, s *server, c *conn) {
	t.Helper()
	got, end := c.answers("POST", 1)
	switch {
	case len(got) == 0 && gone(end):
	case len(got) == 1 && smuggledAnswer(got[0]) &&
		s.deviation(t, "keeps the connection after a request with both Transfer-Encoding and Content-Length"):
	default:
		t.Fatalf("after a request with both Transfer-Encoding and Content-Length: want a close (RFC 9112 §6.1), got %v (%v)", got, end)
	}
}

// teOnHTTP10 accepts an HTTP/1.0 request with Transfer-Encoding handled:
// one answer, then a close (RFC 9112 §6.1: "MUST treat the message as if
// the framing is faulty ... and close the connection after processing the
// message").
//
// net/http deviates (golang/go#12785): it ignores Transfer-Encoding on
// HTTP/1.0, reads no body, keeps the connection as asked, and then
// refuses the chunked body's first line with a 400 and closes. The
// smuggled request inside the body is never answered.
func teOnHTTP10(t testing.TB, s *server, c *conn, resp *response) {
	t.Helper()
	if resp.status != 200 {
		t.Fatalf("want 400, 501 or a handled 200, got %v", resp)
	}
	got, end := c.answers("POST", 1)
	switch {
	case len(got) == 0 && gone(end):
	case len(got) == 1 && got[0].status == 400 && !smuggledAnswer(got[0]) &&
		s.deviation(t, "ignores Transfer-Encoding on HTTP/1.0 and refuses the body as the next request"):
		c.closed(closeGrace)
	default:
		t.Fatalf("after the handled answer: want a close (RFC 9112 §6.1), got %v (%v)", got, end)
	}
}
