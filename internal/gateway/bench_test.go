package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/metrics"
)

// BenchmarkSwap measures making a built table active: the only step of a
// deployment that the data plane can observe.
func BenchmarkSwap(b *testing.B) {
	o := httptest.NewServer(http.NotFoundHandler())
	defer o.Close()
	cfg, err := config.Parse("b.yaml", []byte(fmt.Sprintf("origins: {a: {url: %s}}\nroutes: [{match: /, origin: a}]\n", o.URL)))
	if err != nil {
		b.Fatal(err)
	}
	gw := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), RetireGrace: time.Millisecond})
	defer gw.Close()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		t, err := gw.Build(uint64(i+1), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		gw.Swap(t)
	}
}

// BenchmarkServeHTTP measures the gateway's own per-request work on the
// request path: a plain origin route, a route with a fallback (the guarded
// path), a route with a canary (the split, and its per-side counts), and a
// request no route matches. The origin is a loopback
// httptest server, so the origin cases include one keep-alive exchange.
func BenchmarkServeHTTP(b *testing.B) {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer o.Close()
	gw := benchGateway(b, fmt.Sprintf(`origins: {a: {url: %s}, b: {url: %s}}
routes:
  - {match: "GET /plain/{id}", origin: a}
  - {match: "GET /guarded/{id}", origin: a, fallback: b}
  - {match: "GET /canary/{id}", origin: a, canary: {origin: b, weight: 50}}
`, o.URL, o.URL))
	// The same gateway with an Observe hook, to show what the hook costs.
	var seen int
	observed := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Observe: func(o *turnout.Observation) { seen += len(o.Path) }})
	defer observed.Close()
	if err := observed.Apply(1, gw.Active().Config); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		gw         *Gateway
	}{
		{"origin", "/plain/42", gw},
		{"guarded", "/guarded/42", gw},
		{"canary", "/canary/42", gw},
		{"no_route", "/nothing/here", gw},
		{"origin_observed", "/plain/42", observed},
	} {
		gw := c.gw
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.path, nil)
			req.RemoteAddr = "127.0.0.1:1234"
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				w := httptest.NewRecorder()
				gw.ServeHTTP(w, req)
			}
			// CPU time (this process: gateway and stand-in origin) is far
			// steadier than wall time on a machine shared with other work.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkSplit measures the canary split's decision on the request
// path — the sticky key read from the request, hashed, compared with the
// weight — for each kind of key. It must not allocate.
func BenchmarkSplit(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "203.0.113.77:52144"
	r.Header.Set("X-User-Id", "8d0c5d0e-5b1a-4f53-9d55-0f4a9c1e2b7a")
	r.Header.Set("Cookie", "theme=dark; lang=en; session=3f9a1c7e5b2d4a6c; consent=yes")
	for _, sticky := range []string{"ip", "header:X-User-Id", "cookie:session"} {
		c := &canary{side: side{backend: &originBackend{tname: "origin:b"}}}
		c.setSplit(config.Canary{Origin: "b", Weight: 5, Sticky: sticky})
		b.Run(strings.SplitN(sticky, ":", 2)[0], func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if c.pick(r) == turnout.Canary {
					n++
				}
			}
			if allocs := testing.AllocsPerRun(100, func() { c.pick(r) }); allocs != 0 {
				b.Errorf("the split decision allocates %v times per request", allocs)
			}
		})
	}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchGateway is a gateway serving the config src, closed when b ends.
func benchGateway(b *testing.B, src string) *Gateway {
	b.Helper()
	cfg, err := config.Parse("b.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	gw := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(gw.Close)
	if err := gw.Apply(1, cfg); err != nil {
		b.Fatal(err)
	}
	return gw
}
