package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
// path), and a request no route matches. The origin is a loopback
// httptest server, so the origin cases include one keep-alive exchange.
func BenchmarkServeHTTP(b *testing.B) {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer o.Close()
	cfg, err := config.Parse("b.yaml", []byte(fmt.Sprintf(`origins: {a: {url: %s}, b: {url: %s}}
routes:
  - {match: "GET /plain/{id}", origin: a}
  - {match: "GET /guarded/{id}", origin: a, fallback: b}
`, o.URL, o.URL)))
	if err != nil {
		b.Fatal(err)
	}
	gw := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler)})
	defer gw.Close()
	if err := gw.Apply(1, cfg); err != nil {
		b.Fatal(err)
	}
	// The same gateway with an Observe hook, to show what the hook costs.
	var seen int
	observed := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Observe: func(o *turnout.Observation) { seen += len(o.Path) }})
	defer observed.Close()
	if err := observed.Apply(1, cfg); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		gw         *Gateway
	}{
		{"origin", "/plain/42", gw},
		{"guarded", "/guarded/42", gw},
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

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
