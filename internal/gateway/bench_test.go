package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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
