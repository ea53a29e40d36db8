package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/edge"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/testkit"
)

// rawOrigin is a backend on a bare TCP listener that keeps every byte it
// receives and parses them the way a lenient HTTP/1.1 server would, so a
// request smuggled inside another one shows up as a second request, or as a
// request line anywhere in the bytes.
type rawOrigin struct {
	ln net.Listener
	// head is the response head the origin answers every request with;
	// "" means "HTTP/1.1 200 OK" with a 2-byte body.
	head string

	mu    sync.Mutex
	reqs  []string // "METHOD target" of each request Go's parser found
	bytes bytes.Buffer
	wg    sync.WaitGroup
}

func newRawOrigin(t *testing.T, head string) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{ln: ln, head: head}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.wg.Add(1)
			go o.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); o.wg.Wait() })
	return o
}

func (o *rawOrigin) url() string { return "http://" + o.ln.Addr().String() }

func (o *rawOrigin) serve(c net.Conn) {
	defer o.wg.Done()
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(io.TeeReader(c, rawRecorder{o}))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			// Keep reading what is left so the raw record is complete.
			io.Copy(io.Discard, br)
			return
		}
		o.mu.Lock()
		o.reqs = append(o.reqs, req.Method+" "+req.RequestURI)
		o.mu.Unlock()
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			io.Copy(io.Discard, br)
			return
		}
		head := o.head
		if head == "" {
			head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		}
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
	}
}

type rawRecorder struct{ o *rawOrigin }

func (w rawRecorder) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	return w.o.bytes.Write(p)
}

func (o *rawOrigin) seen() ([]string, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.reqs...), o.bytes.String()
}

func (o *rawOrigin) reset() {
	o.mu.Lock()
	o.reqs, o.bytes = nil, bytes.Buffer{}
	o.mu.Unlock()
}

// rawExchange writes req on a fresh connection and reads until the server
// closes it or wait passes. closed says whether the server closed it.
func rawExchange(t *testing.T, addr, req string, wait time.Duration) (resp string, closed bool) {
	t.Helper()
	c := testkit.Dial(t, addr, 0)
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(c)
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return string(b), !timedOut
}

// requestLine finds anything that a lenient parser would take for the
// smuggled request's start line.
var smuggledLine = regexp.MustCompile(`(?m)^[A-Z]+ [^ ]*admin-smuggled[^ ]* HTTP/`)

// TestRequestSmuggling sends each classic desync vector as raw bytes and
// checks, from the backend's own bytes, that the request hidden after the
// first one never reaches it: the gateway either refuses the message (4xx/5xx
// from the gateway itself, nothing forwarded) or forwards exactly one request,
// answers it and closes. /admin-smuggled matches no route, so the gateway
// answers it 404 itself if it ever parses it as a request of its own.
func TestRequestSmuggling(t *testing.T) {
	be := newRawOrigin(t, "")
	h := newHarness(t, fmt.Sprintf("origins: {backend: {url: %s}}\nroutes: [{match: /api/, origin: backend}]\n", be.url()))

	const smuggled = "GET /admin-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	type outcome int
	const (
		refused    outcome = iota // a 4xx/5xx from the gateway, nothing forwarded
		oneAndShut                // one forwarded request, one answer, then close
		oneOrNone                 // either of the above
	)
	for _, tc := range []struct {
		name string
		req  string
		want outcome
	}{
		// CL.TE and TE.CL: Go lets Transfer-Encoding win; the gateway closes
		// after answering any chunked HTTP/1 request, so the trailing bytes
		// are never read as a request (RFC 9112 §6.3 ¶3).
		{"CL then TE", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"TE then CL", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"CL+TE, CL covers the smuggled request", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"duplicate Content-Length, different", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 42\r\n\r\n" + smuggled, refused},
		{"Content-Length list", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 42\r\n\r\n" + smuggled, refused},
		{"Content-Length plus sign", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n" + smuggled, refused},
		{"Content-Length negative", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" + smuggled, refused},
		{"Content-Length hex", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x0\r\n\r\n" + smuggled, refused},
		{"Content-Length space before colon", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length : 42\r\n\r\n" + smuggled, refused},
		{"Content-Length overflow", "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551617\r\n\r\n" + smuggled, refused},
		{"TE xchunked", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, refused},
		{"TE chunked, identity", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled, refused},
		{"TE twice", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n" + smuggled, refused},
		{"TE space before colon", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, refused},
		{"TE vertical tab", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, refused},
		{"TE quoted", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, refused},
		{"TE upper case", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"TE on HTTP/1.0", "POST /api/a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"TE obs-fold", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"obs-fold hides a header line", "GET /api/a HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n Content-Length: 42\r\n\r\n" + smuggled, oneOrNone},
		{"bare LF after chunk size", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"bare LF after chunk data", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\n\n" + smuggled, oneOrNone},
		{"chunk size with junk", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"chunk extension with bare LF", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\nb\r\nhello\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"chunk size overflow", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + smuggled, oneOrNone},
		{"CR in header value", "GET /api/a HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 42\r\n\r\n" + smuggled, refused},
		{"NUL in header value", "GET /api/a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + smuggled, refused},
		{"CR in header name", "GET /api/a HTTP/1.1\r\nHost: x\r\nX\rA: a\r\n\r\n" + smuggled, refused},
		{"LF in request target", "GET /api/a\nGET /admin-smuggled HTTP/1.1\r\nHost: x\r\n\r\n", refused},
		{"header line without colon", "GET /api/a HTTP/1.1\r\nHost: x\r\nContent-Length 42\r\n\r\n" + smuggled, refused},
		{"GET with a body", "GET /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", oneOrNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be.reset()
			resp, closed := rawExchange(t, h.addr, tc.req, 3*time.Second)
			// Give a smuggled request that did slip through time to arrive.
			time.Sleep(100 * time.Millisecond)
			reqs, got := be.seen()
			t.Logf("client got:\n%s\nbackend got %q", resp, got)

			for _, r := range reqs {
				if strings.Contains(r, "admin-smuggled") {
					t.Fatalf("backend received the smuggled request %q; bytes:\n%q", r, got)
				}
			}
			if m := smuggledLine.FindString(got); m != "" {
				t.Fatalf("backend bytes carry the smuggled request line %q:\n%q", m, got)
			}
			if len(reqs) > 1 {
				t.Fatalf("backend saw %d requests from one client message: %q", len(reqs), reqs)
			}
			var code int
			fmt.Sscanf(strings.TrimPrefix(resp, "HTTP/1.0 "), "HTTP/1.1 %d", &code)
			if strings.HasPrefix(resp, "HTTP/1.0 ") {
				fmt.Sscanf(resp, "HTTP/1.0 %d", &code)
			}
			if code == 0 {
				t.Fatalf("client got no HTTP answer: %q", resp)
			}
			if code == http.StatusBadGateway {
				// The client sent the broken bytes; blaming the backend
				// would count against it (breaker, origin errors).
				t.Errorf("a malformed request got 502, as if the backend had failed; want a 4xx")
			}
			nresp := strings.Count(resp, "HTTP/1.1 ") + strings.Count(resp, "HTTP/1.0 ")
			switch {
			case len(reqs) == 0:
				if tc.want == oneAndShut {
					t.Fatalf("nothing reached the backend; client got %d", code)
				}
				if code < 400 {
					t.Fatalf("nothing forwarded yet the client got %d", code)
				}
			default:
				if tc.want == refused {
					t.Fatalf("want the gateway to refuse, backend saw %q; client got %d", reqs, code)
				}
				if nresp != 1 && !onlyGatewayAnswersAfter(resp) {
					t.Fatalf("client got %d answers for one forwarded request:\n%s", nresp, resp)
				}
			}
			// The upstream connection a broken body was cut on must not be
			// reused: a clean request next must reach the backend intact.
			be.reset()
			after, _ := rawExchange(t, h.addr, "GET /api/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3*time.Second)
			if reqs, got := be.seen(); status(after) != 200 || len(reqs) != 1 || reqs[0] != "GET /api/after" {
				t.Fatalf("next clean request: client got %q, backend got %q", after, got)
			}
			if !closed && nresp == 1 && tc.want != oneAndShut && strings.Contains(tc.req, "chunked") && code != 400 {
				t.Errorf("connection left open after a chunked request")
			}
		})
	}
}

// onlyGatewayAnswersAfter reports whether every answer after the first is the
// gateway's own 404 for /admin-smuggled parsed as a pipelined request of its
// own, which is correct: the gateway saw it and applied its routes to it.
func onlyGatewayAnswersAfter(resp string) bool {
	parts := strings.Split(resp, "HTTP/1.1 ")
	for _, p := range parts[2:] {
		if !strings.HasPrefix(p, "404 ") {
			return false
		}
	}
	return true
}

// TestSlowClients trickles a request head one byte at a time, stalls a
// request body, and opens a connection that says nothing, against the
// public server turnout builds (internal/edge) with 300 ms limits, and checks
// that each connection is closed near its limit while a well-behaved client
// on other connections is served throughout.
func TestSlowClients(t *testing.T) {
	be := newRawOrigin(t, "")
	cfg, err := config.Parse("slow.yaml", []byte(fmt.Sprintf(`
limits: {read_header_timeout: 300ms, body_timeout: 300ms, idle_timeout: 2s}
origins: {backend: {url: %s}}
routes: [{match: /api/, origin: backend}]
`, be.url())))
	if err != nil {
		t.Fatal(err)
	}
	node := cfg.WithDefaults()
	gw := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { gw.Close() })
	if err := gw.Apply(1, cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(edge.Options{Handler: gw, Limits: node.Limits, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	if err := e.Serve(ln, nil, errc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	addr := ln.Addr().String()

	// A normal client keeps sending requests while the slow ones hang on.
	var served, failed int
	client := &http.Client{Timeout: 2 * time.Second}
	stop := testkit.Load(1, func(int) bool {
		resp, err := client.Get("http://" + addr + "/api/ok")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != 200 {
			failed++
		} else {
			served++
		}
		time.Sleep(20 * time.Millisecond)
		return true
	})

	t.Run("slowloris head", func(t *testing.T) {
		c := testkit.Dial(t, addr, 0)
		defer c.Close()
		head := "GET /api/slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 200) + "\r\n\r\n"
		start := time.Now()
		var writeErr error
		for i := 0; i < len(head) && writeErr == nil; i++ {
			_, writeErr = c.Write([]byte{head[i]})
			time.Sleep(20 * time.Millisecond) // 200+ bytes × 20 ms ≫ 300 ms
		}
		// The server stops reading at the deadline; the next read sees the
		// close (possibly after a 408 the server writes on the way out).
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		el := time.Since(start)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v with a head trickled past read_header_timeout", el)
		}
		if strings.Contains(string(b), "200 OK") {
			t.Fatalf("trickled request was served: %q", b)
		}
		if writeErr == nil && el > 5*time.Second {
			t.Fatalf("trickled head was accepted for %v", el)
		}
		t.Logf("closed after %v; got %q; write error %v", el, b, writeErr)
	})

	t.Run("stalled body", func(t *testing.T) {
		c := testkit.Dial(t, addr, 0)
		defer c.Close()
		start := time.Now()
		// 3 of 10 bytes, then nothing.
		io.WriteString(c, "POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		el := time.Since(start)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection with a stalled body still open after %v (body_timeout 300ms); got %q", el, b)
		}
		if !strings.HasPrefix(string(b), "HTTP/1.1 408 ") {
			t.Fatalf("stalled body: got %q, want 408 then close", b)
		}
		t.Logf("closed after %v with %q", el, strings.SplitN(string(b), "\r\n", 2)[0])
	})

	t.Run("idle connection", func(t *testing.T) {
		c := testkit.Dial(t, addr, 0)
		defer c.Close()
		// Nothing is sent: a connection that never starts a request is
		// closed by the header timeout too.
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("silent connection still open after 3 s with read_header_timeout 300ms")
		}
	})

	stop()
	if failed > 0 || served == 0 {
		t.Fatalf("normal client during the slow ones: %d served, %d failed", served, failed)
	}
	t.Logf("normal client served %d requests meanwhile", served)
}
