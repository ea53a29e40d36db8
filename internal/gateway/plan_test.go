package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/metrics"
)

// TestAbortedAnswerEveryRoute: an origin that dies in the middle of its
// answer is recorded the same way on a plain route and on a route with a
// fallback — outcome error, reason origin_aborted, the status it had sent —
// and, since a broken answer cannot tell whether the origin or the
// client's side of the copy failed, it neither trips the breaker nor feeds
// the auto-rollback window, and it is never replayed (its status is out).
func TestAbortedAnswerEveryRoute(t *testing.T) {
	aborting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "only ten b")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}))
	defer aborting.Close()
	legacy := newOrigin(t, "legacy")
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	m := metrics.New()
	h := newHarnessWith(t, Options{Metrics: m, AccessLog: NewAccessLogger(lockedWriter{&logBuf, &logMu})}, withLegacy(legacy.srv.URL, []string{"broken", aborting.URL},
		`{match: /plain/, origin: broken}`,
		`{match: /guarded/, origin: broken, fallback: legacy, auto_rollback: {max_error_rate: 0.5, window: 1m}}`))
	const n = 8 // more than the breaker's 5 consecutive failures
	for _, path := range []string{"/plain/x", "/guarded/x"} {
		for range n {
			resp, err := http.Get("http://" + h.addr + path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(resp.Body); err == nil {
				t.Errorf("%s: read a whole body from an aborted answer", path)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d, want the 200 the origin sent", path, resp.StatusCode)
			}
		}
	}
	for _, route := range []string{"/plain/", "/guarded/"} {
		got := waitCount(func() float64 {
			return testutil.ToFloat64(m.Requests.WithLabelValues(route, "origin:broken", "2xx", "error"))
		}, n)
		if got != n {
			t.Errorf("%s: turnout_requests_total{outcome=error} = %v, want %d", route, got, n)
		}
	}
	for _, path := range []string{"/plain/x", "/guarded/x"} {
		for _, rec := range accessLines(t, &logBuf, &logMu, path) {
			if rec["outcome"] != "error" || rec["reason"] != "origin_aborted" || rec["status"] != float64(200) {
				t.Errorf("%s: access log %v, want outcome error, reason origin_aborted, status 200", path, rec)
			}
		}
	}
	if c := testutil.CollectAndCount(m.Fallbacks); c != 0 {
		t.Errorf("%d turnout_fallbacks_total series: an answer already begun was replayed", c)
	}
	p := h.gw.Active().plans[1]
	if s := p.breaker.State(); s != breaker.Closed {
		t.Errorf("breaker %s after %d aborted answers, want closed", s, n)
	}
	if total, failed := healthCounts(p.health); total != 0 || failed != 0 {
		t.Errorf("the auto-rollback window counted %d requests, %d failed", total, failed)
	}
}
