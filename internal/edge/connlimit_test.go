package edge

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/testkit"
)

// keepAlive is an HTTP/1.1 client connection kept open between requests,
// written and read by hand so the test knows exactly which connection
// each request took.
type keepAlive struct {
	c  net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{c: c, br: bufio.NewReader(c)}
}

// send writes a GET for path without waiting for the answer.
func (k *keepAlive) send(t *testing.T, path string) {
	t.Helper()
	if _, err := fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// answer reads one response within wait and returns its status and body.
func (k *keepAlive) answer(wait time.Duration) (int, string, error) {
	k.c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), err
}

// get sends a GET and wants its 200.
func (k *keepAlive) get(t *testing.T, path string) {
	t.Helper()
	k.send(t, path)
	if code, body, err := k.answer(10 * time.Second); err != nil || code != 200 {
		t.Fatalf("GET %s: %d %q %v, want 200", path, code, body, err)
	}
}

// closedByServer reports whether the server closed the connection: it
// waits up to wait for EOF (or a reset); false when the read timed out.
func (k *keepAlive) closedByServer(t *testing.T, wait time.Duration) bool {
	t.Helper()
	k.c.SetReadDeadline(time.Now().Add(wait))
	_, err := k.br.ReadByte()
	switch {
	case err == nil:
		t.Fatal("the server sent bytes nobody asked for")
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return true
	case !isTimeout(err):
		t.Fatalf("reading: %v", err)
	}
	return false
}

// connGauges reads the connection families from the edge's collector.
func connGauges(t *testing.T, e *Edge) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "turnout_connections_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[mf.GetName()+"{"+m.GetLabel()[0].GetValue()+"}"] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return got
}

// TestIdleConnectionsMakeRoom: with max_connections held by idle keep-alive
// clients, each new client is served, and the connection idle the longest
// is the one closed to make room for it.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	r := start(t, Options{Handler: echoBody, Limits: limits(func(l *config.Limits) { l.MaxConnections = 3 })})
	// A client reads its answer before the server marks the connection
	// idle: wait for that after each request, so the order is known.
	idleAfter := func(k *keepAlive, path string, n int) {
		k.get(t, path)
		testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d connections are idle", n), func() bool { return r.e.plainConns.idle() == n })
	}
	var idle []*keepAlive
	for i := range 3 {
		k := dialKeepAlive(t, r.plain)
		idleAfter(k, "/", i+1)
		idle = append(idle, k)
	}
	// idle[1] is used again, so idle[0] and then idle[2] have been idle
	// the longest.
	idleAfter(idle[1], "/again", 3)

	first := dialKeepAlive(t, r.plain)
	first.get(t, "/new")
	if !idle[0].closedByServer(t, 10*time.Second) {
		t.Fatal("the connection idle the longest is still open")
	}
	second := dialKeepAlive(t, r.plain)
	second.get(t, "/new")
	if !idle[2].closedByServer(t, 10*time.Second) {
		t.Fatal("the connection idle the second longest is still open")
	}
	if idle[1].closedByServer(t, 200*time.Millisecond) {
		t.Fatal("the connection used most recently was closed")
	}
	// The survivors still serve.
	idle[1].get(t, "/")
	first.get(t, "/")

	got := connGauges(t, r.e)
	if got["turnout_connections_evicted_total{http}"] != 2 || got["turnout_connections_open{http}"] != 3 || got["turnout_connections_limit{http}"] != 3 {
		t.Errorf("metrics %v, want 2 evicted, 3 open, limit 3", got)
	}
}

// holding answers each request with answer(r), a request for /hold only
// once release is closed: a connection in the middle of a request.
func holding(release <-chan struct{}, answer func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		fmt.Fprint(w, answer(r))
	})
}

// TestMaxConnections: connections in the middle of a request — waiting for
// their answer, or partway through sending the next one — are never
// closed to make room: a new client over the cap waits until one of them
// finishes its request and goes idle, and only then takes its place.
func TestMaxConnections(t *testing.T) {
	release := make(chan struct{})
	h := holding(release, func(*http.Request) string { return "ok" })
	r := start(t, Options{Handler: h, Limits: limits(func(l *config.Limits) { l.MaxConnections = 2 })})

	held := dialKeepAlive(t, r.plain) // waiting for its answer
	held.send(t, "/hold")
	partial := dialKeepAlive(t, r.plain) // idle, then sending half a request
	partial.get(t, "/")
	// The server marks the connection idle after writing the answer the
	// client may already have read: wait for it, or the check below
	// could pass before it and the connection turn idle after.
	testkit.Eventually(t, 10*time.Second, "the answered connection counts as idle", func() bool { return r.e.plainConns.idle() == 1 })
	if _, err := io.WriteString(partial.c, "GET /second HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	// The server has read those bytes when no connection counts as idle.
	testkit.Eventually(t, 10*time.Second, "the half-sent request is read", func() bool { return r.e.plainConns.idle() == 0 })

	third := dialKeepAlive(t, r.plain)
	third.send(t, "/")
	if code, _, err := third.answer(300 * time.Millisecond); err == nil || !isTimeout(err) {
		t.Fatalf("a third connection was served over max_connections 2 with no idle connection: %d %v", code, err)
	}

	// The half-sent request completes and is answered; its connection is
	// then idle, and closed for the third client.
	io.WriteString(partial.c, "\r\n")
	if code, body, err := partial.answer(10 * time.Second); err != nil || code != 200 || body != "ok" {
		t.Fatalf("the half-sent request: %d %q %v, want 200 ok", code, body, err)
	}
	if code, _, err := third.answer(10 * time.Second); err != nil || code != 200 {
		t.Fatalf("third connection after one went idle: %d %v", code, err)
	}
	if !partial.closedByServer(t, 10*time.Second) {
		t.Error("the idle connection was not the one closed")
	}
	close(release)
	if code, body, err := held.answer(10 * time.Second); err != nil || code != 200 || body != "ok" {
		t.Fatalf("the held request: %d %q %v, want 200 ok", code, body, err)
	}
	if got := connGauges(t, r.e)["turnout_connections_evicted_total{http}"]; got != 1 {
		t.Errorf("evicted %v, want 1", got)
	}
}

// TestHTTP2IdleConnectionsMakeRoom: an HTTP/2 connection with no open
// stream counts as idle (once its client has sent nothing for h2Quiet) and
// is closed for a new client; one with a stream open is not.
func TestHTTP2IdleConnectionsMakeRoom(t *testing.T) {
	release := make(chan struct{})
	h := holding(release, func(r *http.Request) string { return r.Proto })
	ca, dir := newCA(t), t.TempDir()
	tc := &config.TLS{Certificates: []config.CertificateFiles{ca.issue(t, dir, "api.test")}}
	r := start(t, Options{Handler: h, Limits: limits(func(l *config.Limits) { l.MaxConnections = 2 }), TLS: tc})

	tr := &http2.Transport{}
	dial := func() *http2.ClientConn {
		c, err := tls.Dial("tcp", r.secure, &tls.Config{RootCAs: ca.Pool, ServerName: "api.test", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cc, err := tr.NewClientConn(c)
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	get := func(cc *http2.ClientConn, path string) error {
		req, _ := http.NewRequest("GET", "https://api.test"+path, nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "HTTP/2.0" {
			return fmt.Errorf("%d %q, want 200 HTTP/2.0", resp.StatusCode, b)
		}
		return nil
	}

	busy := dial()
	held := make(chan error, 1)
	go func() { held <- get(busy, "/hold") }()
	idle := dial()
	if err := get(idle, "/"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the hold request is in its handler", func() bool { return r.e.secureConns.busy() == 1 })

	// A new client, HTTP/1.1 this time, is served: the idle HTTP/2
	// connection makes room, the busy one is kept.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "api.test"}}}
	resp, err := client.Get("https://" + r.secure + "/new")
	if err != nil {
		t.Fatalf("new client at the cap: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/1.1" {
		t.Fatalf("new client: %q", b)
	}
	testkit.Eventually(t, 10*time.Second, "the idle HTTP/2 connection is closed", func() bool { return idle.State().Closed })
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("the request on the busy HTTP/2 connection: %v", err)
	}
	if got := connGauges(t, r.e)["turnout_connections_evicted_total{https}"]; got != 1 {
		t.Errorf("evicted %v, want 1", got)
	}
}

// idle and busy count l's connections that are idle (closable now) and
// busy (in a request).
func (l *connLimit) idle() int {
	return l.count(func(c *conn) bool { _, ok := c.idleKey(mono()); return ok })
}
func (l *connLimit) busy() int {
	return l.count(func(c *conn) bool { return c.state.Load() == stActive })
}
func (l *connLimit) count(f func(*conn) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.open {
		if f(c) {
			n++
		}
	}
	return n
}
