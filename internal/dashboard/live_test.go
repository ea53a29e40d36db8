package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout"
)

// clock is a settable time source for Live.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newTestLive(maxKeys int) (*Live, *clock) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	l := NewLive(maxKeys)
	l.now = c.now
	return l, c
}

func obs(route, target string, outcome turnout.Outcome, reason string, status int, d time.Duration) *turnout.Observation {
	return &turnout.Observation{Route: route, Target: target, Outcome: outcome, Reason: reason, Status: status, Duration: d}
}

func find(ps []SeriesPoints, route, target string) *SeriesPoints {
	for i := range ps {
		if ps[i].Route == route && ps[i].Target == target {
			return &ps[i]
		}
	}
	return nil
}

func TestLiveCountsPerSecond(t *testing.T) {
	l, c := newTestLive(0)
	t0 := c.now()
	// Second t0: 3 served by the function, one 502, one fallback, one throttle.
	l.Observe(obs("GET /user/{id}", "function:user", turnout.Served, "", 200, 2*time.Millisecond))
	l.Observe(obs("GET /user/{id}", "function:user", turnout.Served, "", 502, 3*time.Millisecond))
	l.Observe(obs("GET /user/{id}", "origin:legacy", turnout.Fallback, "timeout", 200, 40*time.Millisecond))
	l.Observe(obs("GET /user/{id}", "origin:legacy", turnout.Fallback, "throttled", 200, 1*time.Millisecond))
	l.Observe(obs("GET /user/{id}", "origin:legacy", turnout.BreakerOpen, "", 200, 1*time.Millisecond))
	l.Observe(obs("", "", turnout.Rejected, "bad_path", 400, 0)) // not charted
	c.set(t0.Add(time.Second))
	l.Observe(obs("/", "origin:legacy", turnout.Served, "", 200, 700*time.Microsecond))
	c.set(t0.Add(2 * time.Second))

	p := l.Points(0)
	if p.To != t0.Unix()+1 {
		t.Fatalf("to = %d, want the last complete second %d", p.To, t0.Unix()+1)
	}
	if p.To-p.From+1 != Window {
		t.Fatalf("range %d..%d is not the whole window", p.From, p.To)
	}
	last := Window - 1 // index of p.To
	fn := find(p.Series, "GET /user/{id}", "function:user")
	if fn == nil {
		t.Fatalf("no series for the function target: %+v", p.Series)
	}
	if fn.Requests[last-1] != 2 || fn.Errors[last-1] != 1 || fn.Total != 2 {
		t.Errorf("function series at t0: requests %d errors %d total %d, want 2, 1, 2", fn.Requests[last-1], fn.Errors[last-1], fn.Total)
	}
	leg := find(p.Series, "GET /user/{id}", "origin:legacy")
	if leg == nil || leg.Fallbacks[last-1] != 3 || leg.Throttles[last-1] != 1 || leg.BreakerOpen[last-1] != 1 {
		t.Errorf("legacy series = %+v, want 3 fallbacks (one breaker-open), 1 throttle, 1 breaker-open at t0", leg)
	}
	rt := find(p.Routes, "GET /user/{id}", "")
	if rt == nil || rt.Requests[last-1] != 5 || rt.Requests[last] != 0 || rt.Total != 5 {
		t.Fatalf("route aggregate = %+v, want 5 requests at t0", rt)
	}
	if rt.Recent.Requests != 5 || rt.Recent.Errors != 1 || rt.Recent.Fallbacks != 3 || rt.Recent.Seconds != RecentWindow {
		t.Errorf("recent = %+v", rt.Recent)
	}
	// p50 of {1,1,2,3,40} ms lands in the (1,2] ms bucket; p99 in (25,50].
	if q := rt.P50[last-1]; q <= 1 || q > 2 {
		t.Errorf("p50 = %v ms, want within (1, 2]", q)
	}
	if q := rt.P99[last-1]; q <= 25 || q > 50 {
		t.Errorf("p99 = %v ms, want within (25, 50]", q)
	}
	if find(p.Routes, "", "") != nil {
		t.Errorf("a rejected request was charted: %+v", p.Routes)
	}
	root := find(p.Routes, "/", "")
	if root == nil || root.Requests[last] != 1 || root.Requests[last-1] != 0 {
		t.Errorf("route / = %+v, want one request in the last second", root)
	}

	// Incremental: since the last second seen, nothing new yet.
	if q := l.Points(p.To); q.From <= q.To || len(q.Series) != 0 {
		t.Errorf("points since %d = %+v, want an empty range", p.To, q)
	}
	// The ring forgets what is older than the window.
	c.set(t0.Add((Window + 5) * time.Second))
	if q := l.Points(0); len(q.Series) != 0 {
		t.Errorf("after the window passed, series = %+v", q.Series)
	}
}

// TestLiveClientClosed: requests whose client went away have their own
// column; they are neither errors nor fallbacks.
func TestLiveClientClosed(t *testing.T) {
	l, c := newTestLive(0)
	t0 := c.now()
	l.Observe(obs("GET /slow", "origin:slow", turnout.Served, "", 200, 2*time.Second))
	for range 3 {
		l.Observe(obs("GET /slow", "origin:slow", turnout.ClientClosed, "", 499, 50*time.Millisecond))
	}
	c.set(t0.Add(time.Second))
	p := l.Points(0)
	last := Window - 1
	s := find(p.Series, "GET /slow", "origin:slow")
	if s == nil || s.Requests[last] != 4 || s.ClientClosed[last] != 3 || s.Errors[last] != 0 || s.Fallbacks[last] != 0 {
		t.Fatalf("series = %+v, want 4 requests, 3 client closed, no errors or fallbacks", s)
	}
	rt := find(p.Routes, "GET /slow", "")
	if rt == nil || rt.Recent.ClientClosed != 3 || rt.Recent.Errors != 0 {
		t.Errorf("route recent = %+v, want 3 client closed, no errors", rt)
	}
	b, _ := json.Marshal(rt)
	if !strings.Contains(string(b), `"client_closed":[`) {
		t.Errorf("JSON lacks the client_closed column: %s", b)
	}
}

func TestLiveSince(t *testing.T) {
	l, c := newTestLive(0)
	t0 := c.now()
	for i := range 5 {
		c.set(t0.Add(time.Duration(i) * time.Second))
		for range i + 1 {
			l.Observe(obs("/a", "origin:a", turnout.Served, "", 200, time.Millisecond))
		}
	}
	c.set(t0.Add(5 * time.Second))
	p := l.Points(t0.Unix() + 2)
	if p.From != t0.Unix()+3 || p.To != t0.Unix()+4 {
		t.Fatalf("range %d..%d, want %d..%d", p.From, p.To, t0.Unix()+3, t0.Unix()+4)
	}
	s := find(p.Series, "/a", "origin:a")
	if s == nil || len(s.Requests) != 2 || s.Requests[0] != 4 || s.Requests[1] != 5 {
		t.Fatalf("series = %+v, want requests [4 5]", s)
	}
	if s.Recent.Requests != 15 {
		t.Errorf("recent requests = %d, want all 15 of the last 10 s", s.Recent.Requests)
	}
	// A since in the future or far past is not an error.
	if q := l.Points(t0.Unix() + 100); len(q.Series) != 0 || q.From <= q.To {
		t.Errorf("since in the future: %+v", q)
	}
	if q := l.Points(1); q.To-q.From+1 != Window {
		t.Errorf("since long ago: range %d..%d", q.From, q.To)
	}
}

func TestLiveKeysBounded(t *testing.T) {
	l, c := newTestLive(10)
	t0 := c.now()
	for i := range 50 {
		l.Observe(obs(fmt.Sprintf("/r%d", i), "origin:a", turnout.Served, "", 200, time.Millisecond))
	}
	c.set(t0.Add(time.Second))
	p := l.Points(0)
	if len(p.Series) != 11 {
		t.Fatalf("%d series, want 10 and the overflow", len(p.Series))
	}
	of := find(p.Series, OverflowRoute, OverflowTarget)
	if !p.Overflow || of == nil || of.Total != 40 {
		t.Fatalf("overflow = %v, series %+v; want 40 requests in it", p.Overflow, of)
	}
}

// TestLiveConcurrent runs Observe from many goroutines with Points
// reading, for the race detector, and checks nothing is lost.
func TestLiveConcurrent(t *testing.T) {
	l, c := newTestLive(0)
	t0 := c.now()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := obs(fmt.Sprintf("/r%d", g%3), "origin:a", turnout.Served, "", 200, time.Millisecond)
			for range 1000 {
				l.Observe(o)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			l.Points(0)
		}
	}()
	wg.Wait()
	<-done
	c.set(t0.Add(time.Second))
	var total uint64
	for _, s := range l.Points(0).Routes {
		total += s.Total
	}
	if total != 8000 {
		t.Fatalf("counted %d requests, want 8000", total)
	}
}

func TestQuantileEdges(t *testing.T) {
	var h [histBuckets]uint32
	if quantile(&h, 0.5) != 0 {
		t.Error("empty histogram should give 0")
	}
	h[len(h)-1] = 3 // all slower than the last bound
	if q := quantile(&h, 0.99); q != latencyBounds[len(latencyBounds)-1] {
		t.Errorf("p99 of the unbounded bucket = %v, want its floor", q)
	}
	if latencyIndex(0) != 0 || latencyIndex(time.Hour) != len(latencyBounds) {
		t.Error("latencyIndex out of range")
	}
}

func TestHandlerServesEmbeddedUI(t *testing.T) {
	srv := httptest.NewServer(Handler("/ui/"))
	defer srv.Close()
	for path, want := range map[string]string{
		"/ui/":          `<script type="module" src="app.js">`,
		"/ui/app.js":    "function boot()",
		"/ui/app.css":   "font-family: system-ui",
		"/ui/routes.js": "/live?since=",
		"/ui/fleet.js":  "api.get('/nodes')",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy = %q", path, csp)
		}
		if strings.HasSuffix(path, ".js") && !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
			t.Errorf("GET %s: Content-Type %q, browsers refuse modules without a JavaScript type", path, resp.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Get(srv.URL + "/ui/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("missing asset: %d, want 404", resp.StatusCode)
	}
}

// TestAssetsSelfContained checks that no asset loads anything from another
// origin: the dashboard must work without the internet.
func TestAssetsSelfContained(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "api.js", "ui.js", "routes.js", "deployments.js", "functions.js", "traffic.js", "fleet.js", "app.css"} {
		b, err := fsRead(name)
		if err != nil {
			t.Fatalf("asset %s: %v", name, err)
		}
		s := string(b)
		for _, bad := range []string{"https://", "http://", "//cdn", "@import"} {
			if strings.Contains(s, bad) && !(bad == "http://" && strings.Contains(s, "http://www.w3.org/2000/svg")) {
				t.Errorf("asset %s refers to %q: everything must be embedded", name, bad)
			}
		}
	}
}

func BenchmarkLiveObserve(b *testing.B) {
	l := NewLive(0)
	routes := []string{"GET /user/{id}", "/", "POST /orders", "GET /items/{id}"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		o := &turnout.Observation{Target: "origin:legacy", Outcome: turnout.Served, Status: 200, Duration: 3 * time.Millisecond}
		i := 0
		for pb.Next() {
			o.Route = routes[i%len(routes)]
			i++
			l.Observe(o)
		}
	})
}

func fsRead(name string) ([]byte, error) { return fs.ReadFile(Assets(), name) }

// BenchmarkLivePoints measures the dashboard's first poll: the whole
// 5-minute window of 100 busy (route, target) pairs, encoded as JSON.
func BenchmarkLivePoints(b *testing.B) {
	l, c := newTestLive(0)
	t0 := c.now()
	for s := range Window + 1 {
		c.set(t0.Add(time.Duration(s) * time.Second))
		for r := range 50 {
			for _, tg := range []string{"function:f", "origin:legacy"} {
				l.Observe(obs(fmt.Sprintf("GET /r%d/{id}", r), tg, turnout.Served, "", 200, time.Duration(r)*time.Millisecond))
			}
		}
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		j, _ := json.Marshal(l.Points(0))
		size = len(j)
	}
	b.ReportMetric(float64(size), "json-bytes")
}
