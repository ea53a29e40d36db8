package edge

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/h1loop"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/h1conformance"
)

// TestHTTP1Conformance holds the edge's plain listener, with each
// http1_server, to the HTTP/1.1 conformance run (docs/http1-conformance.md),
// through the edge's own wrappers (the body timeout, the connection cap).
// net/http's known departures from RFC 9112 are accepted for net/http only.
func TestHTTP1Conformance(t *testing.T) {
	// With the event loops, every request here is handed to the
	// goroutine server (the router serves none): the run holds the
	// hand-over — a connection moved with the bytes read from it — to
	// the same cases.
	var handedOver atomic.Int64
	handOver := func(*h1.Request, string) (h1loop.Exchange, bool) { handedOver.Add(1); return nil, false }
	for _, server := range []string{config.HTTP1ServerTurnout, config.HTTP1ServerGoroutines, config.HTTP1ServerNetHTTP} {
		t.Run(server, func(t *testing.T) {
			l := limits(func(l *config.Limits) {
				l.ReadHeaderTimeout = config.Duration(time.Second)
				l.IdleTimeout = config.Duration(time.Second)
				l.MaxHeaderBytes = 16 << 10
			})
			r := start(t, Options{Handler: h1conformance.Handler(), Limits: l, HTTP1Server: server, Loop: handOver})
			h1conformance.RunWithOptions(t, r.plain, h1conformance.Options{
				ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
				IdleTimeout:       l.IdleTimeout.D(),
				MaxHeaderBytes:    l.MaxHeaderBytes,
				NetHTTPDeviations: server == config.HTTP1ServerNetHTTP,
			})
			if server == config.HTTP1ServerTurnout && handedOver.Load() == 0 {
				t.Fatal("no request reached the event loops")
			}
		})
	}
}
