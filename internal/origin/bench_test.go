package origin

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/turnout/turnout/internal/config"
)

// benchBody is what examples/legacy answers on /bench.
const benchBody = `{"id":"42","name":"Ada Lovelace","email":"ada@example.com","plan":"pro","created":"2015-12-10T00:00:00Z","tags":["legacy","bench"]}` + "\n"

var benchResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\n" +
	"Content-Length: " + strconv.Itoa(len(benchBody)) + "\r\n\r\n" + benchBody)

// fastOrigin answers every request with benchResponse, after reading past
// its head and its Content-Length body, without allocating for a request
// with no body, so allocs/op counts Forward alone.
func fastOrigin(b *testing.B) *rawOrigin {
	return newRawOrigin(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			n := 0
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
				if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
					n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
				}
			}
			if _, err := br.Discard(n); err != nil {
				return
			}
			if _, err := c.Write(benchResponse); err != nil {
				return
			}
		}
	})
}

// discardWriter is a ResponseWriter with a fresh header map per request,
// like net/http's.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func benchRequest() *http.Request {
	r := httptest.NewRequest("GET", "http://api.example.test/user/42?fields=id,name", nil)
	r.RemoteAddr = "192.0.2.10:54321"
	r.Header.Set("User-Agent", "wrk")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("X-Request-Id", "01JD3Z8Q4V6W7X8Y9Z0A1B2C3D")
	return r
}

// BenchmarkForward measures one GET through the fast path over a real
// loopback keep-alive connection: the origin's share is a ReadSlice loop and
// a Write, so allocs/op is Forward's own.
func BenchmarkForward(b *testing.B) {
	o := fastOrigin(b)
	p := newTestPool(b, config.Origin{}, Options{}, o.URL())
	// A cancelable context like net/http's, so the cancellation watch
	// does its real work.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := benchRequest().WithContext(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := &discardWriter{h: make(http.Header)}
		if err := p.Forward(w, r); err != nil || w.code != 200 || w.n != len(benchBody) {
			b.Fatalf("Forward: %v (status %d, %d bytes)", err, w.code, w.n)
		}
	}
}

// BenchmarkForwardParallel is BenchmarkForward from GOMAXPROCS goroutines,
// which exercises the idle-connection pool under contention.
func BenchmarkForwardParallel(b *testing.B) { benchForwardParallel(b, nil) }

// BenchmarkForwardPostParallel is BenchmarkForwardParallel with a POST and
// a small body: a request that cannot be replayed, so it also pays for the
// liveness probe and takes only settled connections (see the package doc),
// which keeps more of them open.
func BenchmarkForwardPostParallel(b *testing.B) {
	benchForwardParallel(b, []byte(`{"name":"Ada Lovelace","plan":"pro"}`))
}

// benchForwardParallel forwards benchRequest to fastOrigin from GOMAXPROCS
// goroutines, as a POST of body when there is one, and reports how many
// connections the origin accepted.
func benchForwardParallel(b *testing.B, body []byte) {
	o := fastOrigin(b)
	p := newTestPool(b, config.Origin{}, Options{}, o.URL())
	b.ReportAllocs()
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest().WithContext(ctx)
		if body != nil {
			r.Method = "POST"
			r.ContentLength = int64(len(body))
		}
		for pb.Next() {
			if body != nil {
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			w := &discardWriter{h: make(http.Header)}
			if err := p.Forward(w, r); err != nil || w.code != 200 {
				b.Fatalf("Forward: %v", err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(o.conns.Load()), "conns")
}
