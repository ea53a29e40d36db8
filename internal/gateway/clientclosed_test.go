package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/testkit"
)

// h2HangUps sends n GETs for path as HTTP/2 streams (h2c, one connection)
// to gw, each cancelled after wait: the client resets the stream.
func h2HangUps(t *testing.T, gw *Gateway, path string, n int, wait time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+path, nil)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Errorf("an HTTP/2 client got %s within %s", resp.Status, wait)
			}
		}()
	}
	wg.Wait()
}

// waitCount waits until get() reaches want, and returns its last value.
func waitCount(get func() float64, want float64) float64 {
	deadline := time.Now().Add(10 * time.Second)
	for get() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return get()
}

// otherOutcomes sums route's turnout_requests_total series whose outcome
// is not client_closed.
func otherOutcomes(t *testing.T, m *metrics.Metrics, route string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != "turnout_requests_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			var r, o string
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "route":
					r = l.GetValue()
				case "outcome":
					o = l.GetValue()
				}
			}
			if r == route && o != "client_closed" {
				sum += mt.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// healthCounts sums a route's auto-rollback window.
func healthCounts(h *healthWindow) (total, failed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.buckets {
		total += b.total
		failed += b.failed
	}
	return total, failed
}

// accessLines returns the access log's records whose path is path.
func accessLines(t *testing.T, buf *bytes.Buffer, mu *sync.Mutex, path string) []map[string]any {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if line == "" || json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["path"] == path {
			out = append(out, rec)
		}
	}
	return out
}

// checkHungUp checks what n hang-ups on route (target, path) left: every
// one counted as client_closed (499) in metrics, the access log and the
// Observe hook, none as an origin error or a fallback, a closed breaker
// and an auto-rollback window that saw nothing.
func checkHungUp(t *testing.T, gw *Gateway, m *metrics.Metrics, logBuf *bytes.Buffer, logMu *sync.Mutex, obs func() []turnout.Observation,
	route, answerer, path string, n int, rollbacks *atomic.Int64) {
	t.Helper()
	closed := func() float64 {
		return testutil.ToFloat64(m.Requests.WithLabelValues(route, answerer, "4xx", "client_closed"))
	}
	// A client may give up before turnout has read its request (50 ms on
	// a loaded machine), leaving nothing to count: every request turnout
	// saw on the route must be client_closed, and nearly all sent be seen.
	got := waitCount(closed, float64(n))
	if got > float64(n) || got < float64(n-1-n/50) {
		t.Errorf("%s: turnout_requests_total{outcome=client_closed} = %v, want %d (at least %d)", route, got, n, n-1-n/50)
	}
	if other := otherOutcomes(t, m, route); other != 0 {
		t.Errorf("%s: %v requests counted with an outcome other than client_closed", route, other)
	}
	n = int(got)
	if got := testutil.CollectAndCount(m.OriginErrors); got != 0 {
		t.Errorf("%s: %d turnout_origin_errors_total series after client hang-ups, want none", route, got)
	}
	if got := testutil.CollectAndCount(m.Fallbacks); got != 0 {
		t.Errorf("%s: %d turnout_fallbacks_total series after client hang-ups, want none", route, got)
	}
	var tg *plan
	for _, x := range gw.Active().plans {
		if x.pattern == route {
			tg = x
		}
	}
	if s := tg.breaker.State(); s != breaker.Closed {
		t.Errorf("%s: breaker %s after %d client hang-ups, want closed", route, s, n)
	}
	if total, failed := healthCounts(tg.health); total != 0 || failed != 0 {
		t.Errorf("%s: the auto-rollback window counted %d requests, %d failed; client hang-ups must not feed it", route, total, failed)
	}
	if r := rollbacks.Load(); r != 0 {
		t.Errorf("%s: %d automatic rollbacks after client hang-ups", route, r)
	}
	// The metrics are counted just before the access log and the Observe
	// hook are written, on the request's goroutine: wait for those too.
	var lines []map[string]any
	var closedLines, seen int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lines = accessLines(t, logBuf, logMu, path)
		closedLines = 0
		for _, rec := range lines {
			if rec["status"] == float64(499) && rec["outcome"] == "client_closed" {
				closedLines++
			}
		}
		seen = 0
		for _, o := range obs() {
			if o.Route == route && o.Outcome == turnout.ClientClosed && o.Status == 499 {
				seen++
			}
		}
		if closedLines == n && seen == n || time.Now().After(deadline) {
			break
		}
	}
	if closedLines != n {
		t.Errorf("%s: %d of %d access-log records say status 499, outcome client_closed; first: %v", route, closedLines, len(lines), lines[:min(1, len(lines))])
	}
	if seen != n {
		t.Errorf("%s: the Observe hook saw %d client_closed requests, want %d", route, seen, n)
	}
}

// observations collects a copy of every Observation.
type observations struct {
	mu  sync.Mutex
	obs []turnout.Observation
}

func (o *observations) add(x *turnout.Observation) {
	o.mu.Lock()
	o.obs = append(o.obs, *x)
	o.mu.Unlock()
}

func (o *observations) all() []turnout.Observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]turnout.Observation(nil), o.obs...)
}

// runAutoRollback runs the gateway's auto-rollback loop until the test
// ends and counts the rollbacks it asks for.
func runAutoRollback(t *testing.T, gw *Gateway) *atomic.Int64 {
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gw.RunAutoRollback(ctx, func(context.Context, string, string) error { n.Add(1); return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &n
}

// TestClientHangUpsOnSlowOrigin: clients that give up on a healthy but
// slow origin (it answers in 2 s, within the route's timeout) are
// client_closed; they neither open the breaker nor feed auto-rollback,
// and are not sent to the fallback.
func TestClientHangUpsOnSlowOrigin(t *testing.T) {
	var slowSeen atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowSeen.Add(1)
		select {
		case <-time.After(2 * time.Second):
			io.WriteString(w, "slow ok")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	legacy := newOrigin(t, "legacy")
	var buf bytes.Buffer
	var mu sync.Mutex
	var obs observations
	h := newHarnessWith(t, Options{AccessLog: NewAccessLogger(lockedWriter{&buf, &mu}), Observe: obs.add}, fmt.Sprintf(`
legacy: legacy
origins:
  legacy: {url: %s}
  slow: {url: %s}
routes:
  - match: "GET /slow"
    origin: slow
    fallback: legacy
    timeout: 10s
    auto_rollback: {max_error_rate: 0.5, window: 1s, min_requests: 5}
  - {match: "GET /plain", origin: slow}
  - {match: /, origin: legacy}
`, legacy.srv.URL, slow.URL))
	rollbacks := runAutoRollback(t, h.gw)

	const n = 40
	if answered := testkit.HangUps(t, h.addr, "/slow", n, 10, 50*time.Millisecond); answered != 0 {
		t.Errorf("%d of %d clients got an answer within 50 ms; the slow origin takes 2 s", answered, n)
	}
	h2HangUps(t, h.gw, "/slow", 10, 50*time.Millisecond) // RST_STREAM, not a closed connection
	checkHungUp(t, h.gw, h.m, &buf, &mu, obs.all, "GET /slow", "origin:slow", "/slow", n+10, rollbacks)
	// Under load a client may leave before its request reaches the origin;
	// none is sent twice.
	if got := slowSeen.Load(); got > n+10 {
		t.Errorf("the slow origin saw %d requests for %d clients", got, n+10)
	}
	if seen := legacy.requests(); len(seen) != 0 {
		t.Errorf("hang-ups were replayed on the fallback: %q", seen)
	}

	// A route without a fallback (no breaker) counts them the same way.
	if answered := testkit.HangUps(t, h.addr, "/plain", 10, 10, 50*time.Millisecond); answered != 0 {
		t.Errorf("%d of 10 clients got an answer within 50 ms", answered)
	}
	plain := func() float64 {
		return testutil.ToFloat64(h.m.Requests.WithLabelValues("GET /plain", "origin:slow", "4xx", "client_closed"))
	}
	if got := waitCount(plain, 10); got != 10 || testutil.CollectAndCount(h.m.OriginErrors) != 0 {
		t.Errorf("plain route: %v client_closed, %d origin error series; want 10 and none", got, testutil.CollectAndCount(h.m.OriginErrors))
	}
}

// TestClientHangUpsOnSlowFunction: clients that give up on a healthy
// 300 ms hosted function (an unmodified aws-lambda-go binary), running or
// queued for a slot, are client_closed: no breaker, no auto-rollback, no
// fallback, and the invocations run to completion.
func TestClientHangUpsOnSlowFunction(t *testing.T) {
	dir := testkit.BuildFunctions(t, "sleep")
	legacy := newOrigin(t, "legacy")
	quiet := slog.New(slog.DiscardHandler)
	m := metrics.New()
	host, err := fnhost.New(fnhost.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	var buf bytes.Buffer
	var mu sync.Mutex
	var obs observations
	h := newHarnessWith(t, Options{Metrics: m, Functions: &invoke.Router{Hosted: host},
		AccessLog: NewAccessLogger(lockedWriter{&buf, &mu}), Observe: obs.add}, fmt.Sprintf(`
legacy: legacy
origins:
  legacy: {url: %s}
functions:
  sleep: {handler: %s, concurrency: 5, queue_size: 40, queue_timeout: 10s, env: {SLEEP_MS: "300"}}
routes:
  - match: "GET /sleep"
    function: sleep
    fallback: legacy
    auto_rollback: {max_error_rate: 0.5, window: 1s, min_requests: 5}
  - {match: /, origin: legacy}
`, legacy.srv.URL, filepath.Join(dir, "sleep")))
	rollbacks := runAutoRollback(t, h.gw)

	const n = 40
	if answered := testkit.HangUps(t, h.addr, "/sleep", n, 10, 50*time.Millisecond); answered != 0 {
		t.Errorf("%d of %d clients got an answer within 50 ms; the function takes 300 ms", answered, n)
	}
	checkHungUp(t, h.gw, m, &buf, &mu, obs.all, "GET /sleep", "function:sleep", "/sleep", n, rollbacks)
	if got := testutil.ToFloat64(m.Invocations.WithLabelValues("sleep", "hosted", metrics.ResultClientClosed)); got != n {
		t.Errorf("turnout_function_invocations_total{result=client_closed} = %v, want %d", got, n)
	}
	if seen := legacy.requests(); len(seen) != 0 {
		t.Errorf("hang-ups were replayed on the fallback: %q", seen)
	}
	// The function still serves whoever waits for it.
	resp, err := http.Get("http://" + h.addr + "/sleep")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Turnout-Served-By") != "function:sleep" {
		t.Errorf("after the hang-ups: %d by %q", resp.StatusCode, resp.Header.Get("X-Turnout-Served-By"))
	}
}
