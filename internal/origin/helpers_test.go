package origin

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
)

// newTestPool builds a pool for urls with o's other settings and closes it
// at the end of the test.
func newTestPool(t testing.TB, o config.Origin, opts Options, urls ...string) *Pool {
	t.Helper()
	if o.Name == "" {
		o.Name = "legacy"
	}
	o.URLs = urls
	p, err := NewPool(o, opts)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// unwrapWriter mimics the gateway's ResponseWriter wrapper: Forward must
// reach Flush and Hijack through Unwrap.
type unwrapWriter struct{ http.ResponseWriter }

func (w unwrapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// front serves p like the gateway does: guarantees an X-Request-Id, wraps w,
// and turns an *Error into its status with the kind in X-Error-Kind. Other
// errors are only recorded: Forward aborts a broken response itself.
func front(t testing.TB, p *Pool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Request-Id") == "" {
			r.Header.Set("X-Request-Id", "generated-id")
		}
		err := p.Forward(unwrapWriter{w}, r)
		var oe *Error
		switch {
		case errors.As(err, &oe):
			w.Header().Set("X-Error-Kind", oe.Kind.String())
			http.Error(w, err.Error(), oe.StatusCode())
		case err != nil:
			t.Logf("front: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// origin starts an httptest origin.
func origin(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// rawOrigin accepts connections on 127.0.0.1 and hands each to serve.
// It counts connections.
type rawOrigin struct {
	ln    net.Listener
	conns atomic.Int32
	wg    sync.WaitGroup
}

func newRawOrigin(t testing.TB, serve func(c net.Conn)) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{ln: ln}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.conns.Add(1)
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); o.wg.Wait() })
	return o
}

func (o *rawOrigin) URL() string { return "http://" + o.ln.Addr().String() }

// readRequestHead reads one request head from br and returns it raw.
func readRequestHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" || line == "\n" {
			return b.String(), nil
		}
	}
}

// rawExchange sends a raw request to addr and returns the parsed response
// with its body read.
func rawExchange(t testing.TB, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}

func mustPrefixes(t testing.TB, s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range s {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(b)
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// frontOfAnswer runs a front over a raw origin that reads the first
// request head on each connection and writes answer, byte for byte.
func frontOfAnswer(t testing.TB, answer string) *httptest.Server {
	t.Helper()
	o := newRawOrigin(t, func(c net.Conn) {
		if _, err := readRequestHead(bufio.NewReader(c)); err == nil {
			io.WriteString(c, answer)
		}
	})
	return front(t, newTestPool(t, config.Origin{}, Options{}, o.URL()))
}

// eachRequest serves a raw origin's connection: it reads each request,
// drains its body and hands it to answer, until the client goes or answer
// returns false (the connection is then dropped without a word).
func eachRequest(answer func(c net.Conn, req *http.Request) bool) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if !answer(c, req) {
				return
			}
		}
	}
}
