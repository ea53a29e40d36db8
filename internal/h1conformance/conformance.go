// Package h1conformance holds an HTTP/1.1 server to RFC 9112 and RFC 9110:
// a corpus of cases, each written as raw bytes on its own TCP connections
// and answered through a strict response reader, so that a server that
// misframes a message fails rather than being papered over by a lenient
// client. Any turnout HTTP/1.1 server path must pass it (issue 20); its
// test holds the corpus itself to net/http's server.
//
// Where RFC 9112 lets a server either refuse an input or handle it, a case
// accepts both answers, but never one that lets two parsers disagree on
// where a message ends. The cases, by section, are listed in
// docs/http1-conformance.md.
package h1conformance

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options describe the server under test, so cases that wait for one of its
// timeouts wait only that long (plus a grace), and cases near a limit know
// where it is. A zero field takes the default given.
type Options struct {
	// ReadHeaderTimeout is how long the server waits for a request head
	// before closing the connection. Default 2s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long the server keeps an idle keep-alive
	// connection open. Default 2s.
	IdleTimeout time.Duration
	// MaxHeaderBytes is the largest request head the server accepts;
	// the oversize cases send 64 KiB more than this. Default 1 MiB,
	// net/http's http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// NetHTTPDeviations makes the cases where net/http's server departs
	// from the RFCs (docs/http1-conformance.md lists them) accept
	// net/http's answer too, as long as no two parsers can disagree on
	// where a message ends because of it; each acceptance is logged. Set
	// it for a server built on net/http; leave it false to hold a server
	// to the RFCs.
	NetHTTPDeviations bool
}

func (o Options) withDefaults() Options {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 2 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 1 << 20
	}
	return o
}

// Run runs every case against the HTTP/1.1 server at addr (host:port on
// loopback), each on fresh TCP connections, with the default Options. The
// server must serve Handler().
func Run(t *testing.T, addr string) { RunWithOptions(t, addr, Options{}) }

// RunWithOptions is Run for a server whose timeouts or head limit are not
// the defaults. The cases run in parallel, as subtests of one subtest
// named "http1.1", which returns when all have finished.
func RunWithOptions(t *testing.T, addr string, o Options) {
	t.Helper()
	s := &server{addr: addr, opts: o.withDefaults()}
	t.Run("http1.1", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.run(t, s)
			})
		}
	})
}

// testCase is one case, named by the section of RFC 9112 or RFC 9110 it
// holds the server to ("9112-6.3/te-and-cl").
type testCase struct {
	name string
	run  func(t testing.TB, s *server)
}

// cases is the corpus, gathered from the files that hold each part.
var cases = concat(framingCases, smugglingCases, limitCases, responseCases, connectionCases)

func concat(parts ...[]testCase) (all []testCase) {
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

type server struct {
	addr string
	opts Options
}

// caseDeadline bounds every read and write on a case's connection, so a
// server that never answers fails the case instead of hanging the run.
const caseDeadline = 5 * time.Second

// conn is one raw TCP connection to the server under test.
type conn struct {
	t  testing.TB
	nc *net.TCPConn
	br *bufio.Reader
}

func (s *server) dial(t testing.TB) *conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.addr, caseDeadline)
	if err != nil {
		t.Fatalf("dial %s: %v", s.addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(caseDeadline))
	return &conn{t: t, nc: nc.(*net.TCPConn), br: bufio.NewReaderSize(nc, 64<<10)}
}

// send writes raw bytes, failing the case if the server has gone.
func (c *conn) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, raw); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads one response, interim or final.
func (c *conn) next(method string) (*response, error) {
	return readResponse(c.br, method)
}

// final reads the final response to a request, skipping 1xx ones, and
// fails the case if it is missing or malformed.
func (c *conn) final(method string) *response {
	c.t.Helper()
	for {
		resp, err := c.next(method)
		if err != nil {
			c.t.Fatalf("reading the response to %s: %v (%v)", method, err, resp)
		}
		if resp.status >= 200 {
			return resp
		}
	}
}

// closed fails the case unless the server closes the connection within d
// without sending another byte.
func (c *conn) closed(d time.Duration) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 512)
	n, err := c.br.Read(b)
	switch {
	case n > 0:
		c.t.Fatalf("want the connection closed, got more bytes: %q", b[:n])
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.t.Fatalf("want the connection closed within %v, it is still open", d)
	case !gone(err):
		c.t.Fatalf("want the connection closed, got %v", err)
	}
}

// gone reports whether err means the server closed or reset the connection.
func gone(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

// answers reads responses to requests with method until the server closes
// the connection, a read fails, or limit responses have come. end is the
// error that stopped it: a gone error when the server closed.
func (c *conn) answers(method string, limit int) (got []*response, end error) {
	for len(got) < limit {
		resp, err := c.next(method)
		if err != nil {
			if resp != nil {
				got = append(got, resp)
			}
			return got, err
		}
		if resp.status >= 200 {
			got = append(got, resp)
		}
	}
	return got, nil
}

// deviation reports whether the case may accept net/http's departure from
// the RFCs, described by what, and logs it when it does.
func (s *server) deviation(t testing.TB, what string) bool {
	t.Helper()
	if s.opts.NetHTTPDeviations {
		t.Logf("accepted net/http deviation: %s", what)
	}
	return s.opts.NetHTTPDeviations
}

// after reads the final answer to the next pipelined request, or returns
// nil if prev, the answer before it, said the connection closes and it
// did (RFC 9112 §9.6: a server may close after any answer that says so).
func (c *conn) after(prev *response, method string) *response {
	c.t.Helper()
	if prev.closes() {
		c.closed(closeGrace)
		return nil
	}
	return c.final(method)
}

// get sends one GET on a fresh connection and returns its answer.
func (s *server) get(t testing.TB, target string) *response {
	t.Helper()
	c := s.dial(t)
	c.send("GET " + target + " HTTP/1.1\r\nHost: conformance.test\r\n\r\n")
	return c.final("GET")
}

// smuggled is the request each smuggling vector carries where a server that
// misreads the vector's framing would take it for the next request: an
// answer to it is the failure the vector probes for.
const smuggled = "GET /echo?smuggled HTTP/1.1\r\nHost: conformance.test\r\n\r\n"

// smuggledAnswer reports whether resp answers the smuggled request.
func smuggledAnswer(resp *response) bool {
	return strings.Contains(resp.get("X-Echo-Target"), "smuggled")
}
