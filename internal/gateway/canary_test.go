package gateway

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/judge"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/testkit"
)

// testCanary is a route's canary split as the table builds it.
func testCanary(t *testing.T, weight float64, sticky string) *canary {
	t.Helper()
	c := &canary{side: side{backend: &originBackend{tname: "origin:v2"}}}
	c.setSplit(config.Canary{Origin: "v2", Weight: weight, Sticky: sticky})
	return c
}

// ipRequest is a request from client i of 2^24, a distinct address each.
func ipRequest(i int) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:%d", i>>16&255, i>>8&255, i&255, 1024+i%50000)
	return r
}

// splitKey returns an X-User-Id whose side at weight (in hundredths of a
// percent) is s.
func splitKey(s turnout.Side, weight uint32) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("user-%d", i)
		if (bucket(k) < weight) == (s == turnout.Canary) {
			return k
		}
	}
}

// TestSplitAccuracy: 100,000 distinct clients at 5 % send 5 % ± 0.3 % of
// them to the canary, keyed by address, by header and by cookie.
func TestSplitAccuracy(t *testing.T) {
	const n = 100_000
	for _, sticky := range []string{"ip", "header:X-User-Id", "cookie:session"} {
		c := testCanary(t, 5, sticky)
		canaries := 0
		for i := range n {
			r := ipRequest(i)
			r.Header.Set("X-User-Id", fmt.Sprintf("user-%d", i))
			r.Header.Set("Cookie", fmt.Sprintf("theme=dark; session=%x", i*7919))
			if c.pick(r) == turnout.Canary {
				canaries++
			}
		}
		share := 100 * float64(canaries) / n
		t.Logf("sticky %s: %.3f %% of %d clients on the canary at weight 5", sticky, share, n)
		if math.Abs(share-5) > 0.3 {
			t.Errorf("sticky %s: %.2f %% of %d clients on the canary at weight 5, want 5 ± 0.3", sticky, share, n)
		}
	}
}

// TestSplitSticky: as the weight grows 0 → 1 → 5 → 25 → 50 → 100, no
// client moves from the canary back to the baseline, and the ends are
// all-baseline and all-canary.
func TestSplitSticky(t *testing.T) {
	const n = 100_000
	weights := []float64{0, 1, 5, 25, 50, 100}
	splits := make([]*canary, len(weights))
	for i, w := range weights {
		splits[i] = testCanary(t, w, "ip")
	}
	counts := make([]int, len(weights))
	for i := range n {
		r := ipRequest(i)
		was := turnout.Baseline
		for j, c := range splits {
			s := c.pick(r)
			if was == turnout.Canary && s == turnout.Baseline {
				t.Fatalf("client %s moved from the canary at weight %v back to the baseline at %v", r.RemoteAddr, weights[j-1], weights[j])
			}
			if s == turnout.Canary {
				counts[j]++
			}
			was = s
		}
	}
	if counts[0] != 0 || counts[len(counts)-1] != n {
		t.Errorf("weight 0 sent %d clients to the canary, weight 100 %d of %d", counts[0], counts[len(counts)-1], n)
	}
	for j, w := range weights {
		if share := 100 * float64(counts[j]) / n; math.Abs(share-w) > 0.5 {
			t.Errorf("weight %v: %.2f %% on the canary", w, share)
		}
	}
}

// TestSplitUniform: the buckets of 100,000 sequential keys (user ids and
// addresses, the keys most alike) spread evenly over 100 groups of 100
// buckets: Pearson's χ² with 99 degrees of freedom stays below 170 (its
// mean is 99 and its standard deviation 14; 170 is p < 10⁻⁵). The keys are
// fixed, so the test is deterministic.
func TestSplitUniform(t *testing.T) {
	const n, groups = 100_000, 100
	for _, kind := range []string{"user", "ip"} {
		var hist [groups]int
		for i := range n {
			k := fmt.Sprintf("user-%d", i)
			if kind == "ip" {
				k = peerHost(ipRequest(i).RemoteAddr)
			}
			b := bucket(k)
			if b >= splitBuckets {
				t.Fatalf("bucket(%q) = %d, past %d", k, b, splitBuckets)
			}
			hist[b/(splitBuckets/groups)]++
		}
		want := float64(n) / groups
		chi2 := 0.0
		for _, c := range hist {
			chi2 += (float64(c) - want) * (float64(c) - want) / want
		}
		t.Logf("%s keys: χ² = %.1f over %d groups", kind, chi2, groups)
		if chi2 > 170 {
			t.Errorf("%s keys: χ² = %.1f over %d groups, want below 170 (uneven spread: %v)", kind, chi2, groups, hist)
		}
	}
}

// TestSplitStable: a key's bucket is the same on every node and every
// run, so these values are fixed; a change of hash would move clients
// between sides in the middle of a rollout.
func TestSplitStable(t *testing.T) {
	for k, want := range map[string]uint32{"": 9367, "10.0.0.1": 7831, "user-42": 6389} {
		if got := bucket(k); got != want {
			t.Errorf("bucket(%q) = %d, want %d", k, got, want)
		}
	}
}

// TestStickyKey: which part of a request places it, and the fallback to
// the client's address when the header or cookie is missing.
func TestStickyKey(t *testing.T) {
	for _, c := range []struct {
		sticky, remote string
		header         map[string]string
		want           string
	}{
		{"ip", "192.0.2.7:5000", nil, "192.0.2.7"},
		{"ip", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"ip", "192.0.2.7", nil, "192.0.2.7"},
		{"header:x-user-id", "192.0.2.7:5000", map[string]string{"X-User-Id": "u1"}, "u1"},
		{"header:X-User-Id", "192.0.2.7:5000", map[string]string{"X-User-Id": ""}, "192.0.2.7"},
		{"header:X-User-Id", "192.0.2.7:5000", nil, "192.0.2.7"},
		{"cookie:sid", "192.0.2.7:5000", map[string]string{"Cookie": `a=1; sid="s 2"; sid=3`}, "s 2"},
		{"cookie:sid", "192.0.2.7:5000", map[string]string{"Cookie": "a=1;sid=9"}, "9"},
		{"cookie:sid", "192.0.2.7:5000", map[string]string{"Cookie": "xsid=1; sidx=2"}, "192.0.2.7"},
		{"cookie:sid", "192.0.2.7:5000", map[string]string{"Cookie": "sid="}, "192.0.2.7"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for k, v := range c.header {
			r.Header.Set(k, v)
		}
		if got := testCanary(t, 5, c.sticky).key(r); got != c.want {
			t.Errorf("sticky %s, %s %v: key %q, want %q", c.sticky, c.remote, c.header, got, c.want)
		}
	}
}

// TestCanaryOrigin: an origin route with an origin canary, through the
// gateway: each client's side answers and says so (served-by, access log,
// metrics); a failing canary falls back to the route's fallback with no
// client error, and neither the breaker nor the auto-rollback window,
// which judge the primary, counts its failures; a route switched off
// sends the canary's share to its off target too.
func TestCanaryOrigin(t *testing.T) {
	legacy, v2 := newOrigin(t, "legacy"), newOrigin(t, "v2")
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	m := metrics.New()
	h := newHarnessWith(t, Options{Metrics: m, AccessLog: NewAccessLogger(lockedWriter{&logBuf, &logMu})},
		withLegacy(legacy.srv.URL, []string{"v2", v2.srv.URL, "down", testkit.RefusedURL(t)},
			`{match: "/s/", origin: legacy, canary: {origin: v2, weight: 30, sticky: "header:X-User-Id"}}`,
			`{match: "/f/", origin: v2, fallback: legacy, auto_rollback: {max_error_rate: 0.5, window: 1m}, canary: {origin: down, weight: 100}}`,
			`{match: "/o/", origin: v2, off: true, canary: {origin: down, weight: 100}}`))
	get := func(path, key string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+h.addr+path, nil)
		if key != "" {
			req.Header.Set("X-User-Id", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body), resp.Header.Get("X-Turnout-Served-By")
	}

	for _, c := range []struct {
		side           turnout.Side
		origin, header string
	}{{turnout.Baseline, "legacy", "origin:legacy"}, {turnout.Canary, "v2", "origin:v2; canary"}} {
		key := splitKey(c.side, 3000)
		for range 3 { // sticky: the same side every time
			code, body, servedBy := get("/s/"+c.side.String(), key)
			if code != 200 || !strings.HasPrefix(body, c.origin+" saw") || servedBy != c.header {
				t.Errorf("key %s (%s): %d %q served by %q, want 200 from %s served by %q", key, c.side, code, body, servedBy, c.origin, c.header)
			}
		}
		for _, rec := range accessLines(t, &logBuf, &logMu, "/s/"+c.side.String()) {
			if rec["side"] != c.side.String() || rec["target"] != "origin:"+c.origin {
				t.Errorf("access log %v, want side %s and target origin:%s", rec, c.side, c.origin)
			}
		}
		if got := waitCount(func() float64 {
			return testutil.ToFloat64(m.CanaryRequests.WithLabelValues("/s/", c.side.String(), "served"))
		}, 3); got != 3 {
			t.Errorf("turnout_canary_requests_total{side=%s,outcome=served} = %v, want 3", c.side, got)
		}
	}

	// The canary refuses connections: every request falls back, and the
	// primary's guards are not told.
	const n = 8 // more than the breaker's 5 consecutive failures
	for range n {
		code, body, servedBy := get("/f/x", "")
		if code != 200 || !strings.HasPrefix(body, "legacy saw") || servedBy != "origin:legacy; fallback=origin_connect; canary" {
			t.Errorf("failing canary: %d %q served by %q, want 200 from legacy served by \"origin:legacy; fallback=origin_connect; canary\"", code, body, servedBy)
		}
	}
	if got := waitCount(func() float64 {
		return testutil.ToFloat64(m.CanaryRequests.WithLabelValues("/f/", "canary", "fallback"))
	}, n); got != n {
		t.Errorf("turnout_canary_requests_total{side=canary,outcome=fallback} = %v, want %d", got, n)
	}
	for _, rec := range accessLines(t, &logBuf, &logMu, "/f/x") {
		if rec["side"] != "canary" || rec["outcome"] != "fallback" || rec["reason"] != "origin_connect" || rec["target"] != "origin:down" {
			t.Errorf("access log %v, want side canary, outcome fallback, reason origin_connect, target origin:down", rec)
		}
	}
	// A route switched off sends the canary's share to its off target too.
	if code, body, servedBy := get("/o/x", ""); code != 200 || !strings.HasPrefix(body, "legacy saw") || servedBy != "origin:legacy" {
		t.Errorf("route off with a canary: %d %q served by %q, want 200 from legacy served by \"origin:legacy\"", code, body, servedBy)
	}

	p := h.gw.Active().plans[1]
	if s := p.breaker.State(); s != breaker.Closed {
		t.Errorf("breaker %s after %d canary failures, want closed: it judges the primary", s, n)
	}
	if total, failed := healthCounts(p.health); total != 0 || failed != 0 {
		t.Errorf("the auto-rollback window counted %d canary requests, %d failed", total, failed)
	}
}

// TestCanaryComparison: a route with a canary counts each side's answers
// for the judge, from the requests themselves: a canary that fails where
// its baseline does not is judged to fail; the counts survive a deployment
// that leaves the route alone, and start afresh with a new canary.
func TestCanaryComparison(t *testing.T) {
	legacy, v2 := newOrigin(t, "legacy"), newOrigin(t, "v2")
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer broken.Close()
	origins := []string{"v2", v2.srv.URL, "broken", broken.URL}
	cfg := func(canary, extra string) string {
		return withLegacy(legacy.srv.URL, origins,
			`{match: "/s/", origin: legacy, fallback: v2, canary: {origin: `+canary+`, weight: 50, sticky: "header:X-User-Id"}}`,
			`{match: "/other/", origin: legacy`+extra+`}`)
	}
	h := newHarness(t, cfg("broken", ""))
	send := func(n int) {
		for i := range n {
			req, _ := http.NewRequest("GET", "http://"+h.addr+"/s/x", nil)
			req.Header.Set("X-User-Id", fmt.Sprint("user-", i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	send(600)
	base, can, ok := h.gw.Comparison("/s/")
	if !ok || base.Requests()+can.Requests() != 600 || base.Failures != 0 || can.Failures != can.Requests() || can.Requests() < 200 {
		t.Fatalf("comparison %v: baseline %d requests %d failed, canary %d requests %d failed; want 600 in all, every canary one failed",
			ok, base.Requests(), base.Failures, can.Requests(), can.Failures)
	}
	v := judge.Analysis{}.Judge(base, can)
	if v.Decision != judge.Fail || !strings.Contains(v.Reason, "error rate") {
		t.Fatalf("verdict %v %q, want a failure on the error rate", v.Decision, v.Reason)
	}

	// Another route changes: the window goes on.
	h.apply(t, 2, cfg("broken", ", timeout: 5s"))
	if b2, c2, _ := h.gw.Comparison("/s/"); b2.Requests()+c2.Requests() != 600 {
		t.Fatalf("after a deployment that leaves the route alone: %d requests counted, want the 600 before", b2.Requests()+c2.Requests())
	}
	// A new canary starts afresh.
	h.apply(t, 3, cfg("v2", ""))
	send(10)
	if b3, c3, _ := h.gw.Comparison("/s/"); b3.Requests()+c3.Requests() != 10 || c3.Failures != 0 {
		t.Fatalf("a new canary: %d requests, %d canary failures; want 10 and 0", b3.Requests()+c3.Requests(), c3.Failures)
	}
	// Once no table has a canary on the route, its counts are let go.
	h.apply(t, 4, withLegacy(legacy.srv.URL, origins, `{match: "/s/", origin: legacy}`, `{match: "/other/", origin: legacy}`))
	testkit.Eventually(t, 5*time.Second, "the comparisons let go", func() bool {
		h.gw.mu.Lock()
		defer h.gw.mu.Unlock()
		return len(h.gw.comparisons) == 0
	})
}
