//go:build linux

package h1loop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/origin"
)

// ended is what a testExchange's End was told.
type ended struct {
	path         string
	status       int
	n            int64
	failure      *origin.Error
	clientClosed bool
	err          error
}

// rig is a loop server in front of one origin, with a fallback that
// answers "fallback" (and the request's path) for what is handed over.
type rig struct {
	t      testing.TB
	srv    *Server
	addr   string
	pool   *origin.Pool
	mu     sync.Mutex
	ends   []ended
	endc   chan ended
	routed atomic.Int64
	fellTo atomic.Int64
}

type testExchange struct {
	r    *rig
	w    origin.Wire
	path string
	q    []byte
	id   string
}

func (x *testExchange) Wire() origin.Wire { return x.w }
func (x *testExchange) Path() string      { return x.path }
func (x *testExchange) RawQuery() []byte  { return x.q }
func (x *testExchange) RequestID() string { return x.id }
func (x *testExchange) AppendServedFields(dst []byte) []byte {
	return append(append(append(dst, "X-Request-Id: "...), x.id...), "\r\n"...)
}
func (x *testExchange) AppendFailure(dst []byte, err *origin.Error) []byte {
	body := "failed: " + err.Kind.String() + "\n"
	dst = h1.AppendStatusLine(dst, err.StatusCode())
	dst = append(dst, "Content-Type: text/plain\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}
func (x *testExchange) End(status int, n int64, failure *origin.Error, clientClosed bool, err error) {
	e := ended{x.path, status, n, failure, clientClosed, err}
	x.r.mu.Lock()
	x.r.ends = append(x.r.ends, e)
	x.r.mu.Unlock()
	select {
	case x.r.endc <- e:
	default:
	}
}

func newRig(t testing.TB, originURL string, tune func(*config.Origin, *Server)) *rig {
	t.Helper()
	return newRigOpts(t, originURL, origin.Options{}, tune)
}

// newRigOpts is newRig with the pool's options given.
func newRigOpts(t testing.TB, originURL string, opts origin.Options, tune func(*config.Origin, *Server)) *rig {
	t.Helper()
	r := &rig{t: t, endc: make(chan ended, 1024)}
	o := config.Origin{Name: "legacy", URLs: []string{originURL}}
	srv := &Server{
		ReadHeaderTimeout: 2 * time.Second,
		IdleTimeout:       5 * time.Second,
		Loops:             2,
	}
	srv.Fallback = &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.fellTo.Add(1)
		io.Copy(io.Discard, req.Body)
		fmt.Fprintf(w, "fallback %s %s", req.Method, req.URL.Path)
	})}
	if tune != nil {
		tune(&o, srv)
	}
	pool, err := origin.NewPool(o, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	r.pool = pool
	srv.Route = func(req *h1.Request, remote string) (Exchange, bool) {
		w, ok := pool.PickWire()
		if !ok {
			return nil, false
		}
		target := string(req.Target)
		path, q, _ := strings.Cut(target, "?")
		if strings.HasPrefix(path, "/fallback") {
			return nil, false
		}
		if path == "/panic" {
			panic("a bug")
		}
		r.routed.Add(1)
		return &testExchange{r: r, w: w, path: path, q: []byte(q), id: "id-" + strconv.FormatInt(r.routed.Load(), 10)}, true
	}
	r.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		ln.Close()
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	r.addr = ln.Addr().String()
	return r
}

func (r *rig) endFor(path string) ended {
	r.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-r.endc:
			if e.path == path {
				return e
			}
		case <-timeout:
			r.t.Fatalf("no End for %s", path)
		}
	}
}

// testOrigin answers by path: /len/N N bytes with a length, /chunked two
// flushed parts, /close a body ended by closing, /nocontent 204, /slow
// after 300 ms, /echo the request head as the origin saw it.
func testOrigin(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/len/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/len/"))
			w.Header().Set("Content-Length", strconv.Itoa(n))
			w.Header().Set("X-Origin", "yes")
			w.Write(bytes.Repeat([]byte("a"), n))
		case r.URL.Path == "/chunked":
			w.Write([]byte("part one,"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		case r.URL.Path == "/close":
			c, bw, _ := w.(http.Hijacker).Hijack()
			bw.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
			bw.Flush()
			c.Close()
		case r.URL.Path == "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/slow":
			select {
			case <-time.After(300 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
			w.Write([]byte("slow"))
		case r.URL.Path == "/echo":
			fmt.Fprintf(w, "%s %s host=%s xff=%s id=%s", r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Request-Id"))
		default:
			w.Write([]byte("hello"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(b)
}

func TestServesPlainRequests(t *testing.T) {
	o := testOrigin(t)
	r := newRig(t, o.URL, nil)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	base := "http://" + r.addr
	for round := 0; round < 3; round++ { // the same connections, kept alive
		resp, body := get(t, c, base+"/len/5")
		if resp.StatusCode != 200 || body != "aaaaa" || resp.Header.Get("X-Origin") != "yes" || resp.ContentLength != 5 {
			t.Fatalf("/len/5: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "id-") || resp.Header.Get("Date") == "" {
			t.Fatalf("/len/5: gateway fields missing: %v", resp.Header)
		}
		if e := r.endFor("/len/5"); e.status != 200 || e.n != 5 || e.clientClosed || e.failure != nil {
			t.Fatalf("End for /len/5: %+v", e)
		}
		resp, body = get(t, c, base+"/len/200000")
		if len(body) != 200000 {
			t.Fatalf("/len/200000: %d bytes", len(body))
		}
		if e := r.endFor("/len/200000"); e.n != 200000 {
			t.Fatalf("End for /len/200000: %+v", e)
		}
		resp, body = get(t, c, base+"/chunked")
		if body != "part one,part two" || len(resp.TransferEncoding) != 1 {
			t.Fatalf("/chunked: %q %v", body, resp.TransferEncoding)
		}
		r.endFor("/chunked")
		resp, body = get(t, c, base+"/close")
		if body != "until the end" || len(resp.TransferEncoding) != 1 || resp.Close {
			t.Fatalf("/close: %q %v close=%v", body, resp.TransferEncoding, resp.Close)
		}
		if e := r.endFor("/close"); e.n != int64(len("until the end")) {
			t.Fatalf("End for /close: %+v", e)
		}
		resp, body = get(t, c, base+"/nocontent")
		if resp.StatusCode != 204 || body != "" {
			t.Fatalf("/nocontent: %d %q", resp.StatusCode, body)
		}
		r.endFor("/nocontent")
		req, _ := http.NewRequest(http.MethodHead, base+"/len/7", nil)
		hr, err := c.Do(req)
		if err != nil || hr.StatusCode != 200 || hr.ContentLength != 7 {
			t.Fatalf("HEAD: %v %v", hr, err)
		}
		hr.Body.Close()
		r.endFor("/len/7")
		_, body = get(t, c, base+"/echo?a=b%20c")
		if !strings.HasPrefix(body, "GET /echo?a=b%20c host="+r.addr+" xff=127.0.0.1 id=id-") {
			t.Fatalf("/echo: %q", body)
		}
		r.endFor("/echo")
	}
	if n := r.fellTo.Load(); n != 0 {
		t.Fatalf("%d requests went to the fallback", n)
	}
}

// rawConn sends raw bytes and reads answers with a bufio.Reader.
func rawConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

func TestPipelinedAndHandedOver(t *testing.T) {
	o := testOrigin(t)
	r := newRig(t, o.URL, nil)
	c, br := rawConn(t, r.addr)
	// Three pipelined requests the loop serves, then one it hands over
	// with a body, then one more: the connection stays with the
	// goroutine server for good.
	io.WriteString(c, "GET /len/3 HTTP/1.1\r\nHost: a\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a\r\n\r\nHEAD /len/9 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /len/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"+
		"GET /len/2 HTTP/1.1\r\nHost: a\r\n\r\n")
	want := []struct{ method, body string }{{"GET", "aaa"}, {"GET", "part one,part two"}, {"HEAD", ""}, {"POST", "fallback POST /len/1"}, {"GET", "fallback GET /len/2"}}
	for _, w := range want {
		resp, body := readAnswer(t, br, w.method)
		if resp.StatusCode != 200 || body != w.body {
			t.Fatalf("%s: %d %q, want %q", w.method, resp.StatusCode, body, w.body)
		}
	}
	if got := r.fellTo.Load(); got != 2 {
		t.Fatalf("fallback served %d requests, want 2", got)
	}
	// HTTP/1.0, a request that could not be sent again (a POST, even
	// without a body) and a route the router refuses go to the fallback
	// too.
	for _, req := range []string{"GET /len/1 HTTP/1.0\r\n\r\n", "POST /len/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET /fallback/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"} {
		c, br := rawConn(t, r.addr)
		io.WriteString(c, req)
		_, body := readAnswer(t, br, "GET")
		if !strings.HasPrefix(body, "fallback ") {
			t.Fatalf("%q: answered %q", req, body)
		}
	}
	// A head split over many writes is put together.
	c, br = rawConn(t, r.addr)
	for _, part := range []string{"GE", "T /len/4 HT", "TP/1.1\r\nHo", "st: a\r\n", "\r\n"} {
		io.WriteString(c, part)
		time.Sleep(5 * time.Millisecond)
	}
	if _, body := readAnswer(t, br, "GET"); body != "aaaa" {
		t.Fatalf("split head: %q", body)
	}
}

func TestOriginFailures(t *testing.T) {
	// Nothing listens: connect refused, 502.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	r := newRig(t, dead, nil)
	c, br := rawConn(t, r.addr)
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := readAnswer(t, br, "GET")
	if resp.StatusCode != 502 || !strings.HasPrefix(body, "failed: ") {
		t.Fatalf("dead origin: %d %q", resp.StatusCode, body)
	}
	if e := r.endFor("/x"); e.failure == nil || e.status != 502 {
		t.Fatalf("End: %+v", e)
	}
	// The connection stays usable.
	io.WriteString(c, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != 502 {
		t.Fatalf("second request: %d", resp.StatusCode)
	}

	// An origin slower than its response-header timeout: 504.
	o := testOrigin(t)
	r = newRig(t, o.URL, func(o *config.Origin, _ *Server) {
		o.Timeouts.ResponseHeader = config.Duration(100 * time.Millisecond)
	})
	c, br = rawConn(t, r.addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != 504 {
		t.Fatalf("slow origin: %d", resp.StatusCode)
	}
	if e := r.endFor("/slow"); e.failure == nil || e.failure.Kind != origin.KindTimeout {
		t.Fatalf("End: %+v", e)
	}
}

func TestClientGoneMidRequest(t *testing.T) {
	canceled := make(chan struct{}, 1)
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(5 * time.Second):
		}
	}))
	defer o.Close()
	r := newRig(t, o.URL, nil)
	c, _ := rawConn(t, r.addr)
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if e := r.endFor("/wait"); !e.clientClosed || e.status != 499 {
		t.Fatalf("End: %+v", e)
	}
	select {
	case <-canceled: // the origin connection was closed with it
	case <-time.After(5 * time.Second):
		t.Fatal("the origin's request went on after the client left")
	}
}

func TestSlowReaderGetsEverything(t *testing.T) {
	o := testOrigin(t)
	r := newRig(t, o.URL, nil)
	// A small receive buffer, set before connecting (shrinking it on a
	// connected socket stalls TCP itself), and reads with pauses: the
	// loop meets a full socket and must wait for room.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192) })
	}}
	c, err := d.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReaderSize(slowReader{c}, 4096)
	const size = 16 << 20
	io.WriteString(c, "GET /len/"+strconv.Itoa(size)+" HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // let the socket buffers fill
	resp, body := readAnswer(t, br, "GET")
	if resp.StatusCode != 200 || len(body) != size || strings.Trim(body, "a") != "" {
		t.Fatalf("got %d, %d bytes", resp.StatusCode, len(body))
	}
	if e := r.endFor("/len/" + strconv.Itoa(size)); e.n != size {
		t.Fatalf("End: %+v", e)
	}
}

// slowReader pauses before each read.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(20 * time.Microsecond)
	return s.r.Read(p)
}

func TestTimeoutsAndLimit(t *testing.T) {
	o := testOrigin(t)
	r := newRig(t, o.URL, func(_ *config.Origin, s *Server) {
		s.IdleTimeout = 300 * time.Millisecond
		s.ReadHeaderTimeout = 300 * time.Millisecond
		s.MaxConns = 2
		s.Loops = 1
	})
	// Idle past IdleTimeout: closed.
	c, br := rawConn(t, r.addr)
	io.WriteString(c, "GET /len/1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswer(t, br, "GET")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF", err)
	}
	// Half a head past ReadHeaderTimeout: closed.
	c, br = rawConn(t, r.addr)
	io.WriteString(c, "GET /len/1 HTTP/1.1\r\n")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("slow head: read %v, want EOF", err)
	}
	// Two idle connections and a third client: the longest idle goes.
	a, abr := rawConn(t, r.addr)
	io.WriteString(a, "GET /len/1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswer(t, abr, "GET")
	b, bbr := rawConn(t, r.addr)
	io.WriteString(b, "GET /len/1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswer(t, bbr, "GET")
	n, nbr := rawConn(t, r.addr)
	io.WriteString(n, "GET /len/2 HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readAnswer(t, nbr, "GET"); body != "aa" {
		t.Fatalf("new client: %q", body)
	}
	if _, err := abr.ReadByte(); err != io.EOF {
		t.Fatalf("longest idle: read %v, want EOF", err)
	}
	if _, evicted := r.srv.Stats(); evicted != 1 {
		t.Fatalf("evicted %d, want 1", evicted)
	}
}

func TestShutdownDrains(t *testing.T) {
	o := testOrigin(t)
	r := newRig(t, o.URL, nil)
	idle, ibr := rawConn(t, r.addr)
	io.WriteString(idle, "GET /len/1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswer(t, ibr, "GET")
	busy, bbr := rawConn(t, r.addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- r.srv.Shutdown(ctx)
	}()
	resp, body := readAnswer(t, bbr, "GET")
	if body != "slow" || !resp.Close {
		t.Fatalf("in flight at shutdown: %q close=%v", body, resp.Close)
	}
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Fatalf("idle at shutdown: %v, want EOF", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestPanicClosesOnlyItsConnection(t *testing.T) {
	o := testOrigin(t)
	var logged atomic.Int64
	r := newRig(t, o.URL, func(_ *config.Origin, s *Server) {
		s.Loops = 1
		s.Logf = func(string, ...any) { logged.Add(1) }
	})
	other, obr := rawConn(t, r.addr)
	io.WriteString(other, "GET /len/1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswer(t, obr, "GET")
	c, br := rawConn(t, r.addr)
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after a panic: read %v, want EOF", err)
	}
	if logged.Load() == 0 {
		t.Fatal("the panic was not logged")
	}
	// The loop and its other connection go on.
	io.WriteString(other, "GET /len/2 HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readAnswer(t, obr, "GET"); body != "aa" {
		t.Fatalf("after a panic: %q", body)
	}
}

// TestHalfClosedClientGetsItsAnswers: a client that sends its requests
// and then closes its side (printf … | nc) still reads the answers that
// come within the hang-up grace (a slow one is abandoned, as
// h1.Server's watch and net/http abandon it: TestClientGoneMidRequest).
func TestHalfClosedClientGetsItsAnswers(t *testing.T) {
	o := testOrigin(t)
	r := newRig(t, o.URL, nil)
	c, br := rawConn(t, r.addr)
	io.WriteString(c, "GET /len/5 HTTP/1.1\r\nHost: a\r\n\r\nGET /len/3 HTTP/1.1\r\nHost: a\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	if _, body := readAnswer(t, br, "GET"); body != "aaaaa" {
		t.Fatalf("first answer %q", body)
	}
	if _, body := readAnswer(t, br, "GET"); body != "aaa" {
		t.Fatalf("second answer %q", body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("then: %v, want EOF", err)
	}
}

// TestOriginResetMidAnswer: an origin that resets its connection after
// the head and part of the body: the client gets what was sent and then
// the connection closes — never a second answer after the first's head.
func TestOriginResetMidAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
				time.Sleep(20 * time.Millisecond)
				c.(*net.TCPConn).SetLinger(0) // close with a reset
				c.Close()
			}()
		}
	}()
	r := newRig(t, "http://"+ln.Addr().String(), nil)
	c, _ := rawConn(t, r.addr)
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	got, _ := io.ReadAll(c)
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(got, []byte("\r\n\r\nabc")) {
		t.Fatalf("the client got %q", got)
	}
	if e := r.endFor("/x"); e.err == nil || e.status != 200 || e.n != 3 {
		t.Fatalf("End: %+v", e)
	}
}
