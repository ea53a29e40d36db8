package edge

import (
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/h1conformance"
)

// TestHTTP1Conformance holds the edge's plain listener, with each
// http1_server, to the HTTP/1.1 conformance run (docs/http1-conformance.md),
// through the edge's own wrappers (the body timeout, the connection cap).
// net/http's known departures from RFC 9112 are accepted for net/http only.
func TestHTTP1Conformance(t *testing.T) {
	for _, server := range []string{config.HTTP1ServerTurnout, config.HTTP1ServerNetHTTP} {
		t.Run(server, func(t *testing.T) {
			l := limits(func(l *config.Limits) {
				l.ReadHeaderTimeout = config.Duration(time.Second)
				l.IdleTimeout = config.Duration(time.Second)
				l.MaxHeaderBytes = 16 << 10
			})
			r := start(t, Options{Handler: h1conformance.Handler(), Limits: l, HTTP1Server: server})
			h1conformance.RunWithOptions(t, r.plain, h1conformance.Options{
				ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
				IdleTimeout:       l.IdleTimeout.D(),
				MaxHeaderBytes:    l.MaxHeaderBytes,
				NetHTTPDeviations: server == config.HTTP1ServerNetHTTP,
			})
		})
	}
}
