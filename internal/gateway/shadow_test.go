package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/shadow"
	"github.com/turnout/turnout/internal/testkit"
)

// shadowSeen records what a shadow origin was sent.
type shadowSeen struct {
	mu   sync.Mutex
	reqs []string // METHOD RequestURI marker body
}

func (s *shadowSeen) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// shadowOrigin answers as handler does, after recording each request.
func shadowOrigin(t *testing.T, seen *shadowSeen, handler http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen.mu.Lock()
		seen.reqs = append(seen.reqs, fmt.Sprintf("%s %s %s %s", r.Method, r.RequestURI, r.Header.Get("X-Turnout-Shadow"), b))
		seen.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestShadowMirrorsByteForByte: a mirrored request reaches the shadow with
// the client's method, path and query byte for byte, its body, and the
// marker header; POST is mirrored only when listed; the client's answer is
// the primary's.
func TestShadowMirrorsByteForByte(t *testing.T) {
	legacy := newOrigin(t, "legacy")
	var seen shadowSeen
	sh := shadowOrigin(t, &seen, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "shadow") })
	report := &shadow.Report{}
	h := newHarnessWith(t, Options{Shadow: report}, withLegacy(legacy.srv.URL, []string{"v2", sh.URL},
		`{match: "/get/", origin: legacy, shadow: {to: v2}}`,
		`{match: "/post/", origin: legacy, shadow: {to: v2, methods: [GET, POST]}}`))
	send := func(method, path, body string) string {
		req, _ := http.NewRequest(method, "http://"+h.addr+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	if got := send("GET", "/get/x?b=2&a=1&a=%2F;c", ""); !strings.HasPrefix(got, "legacy saw GET /get/x?b=2&a=1&a=%2F;c") {
		t.Fatalf("the client got %q, want the primary's answer", got)
	}
	send("POST", "/get/x", "not mirrored")
	send("POST", "/post/y?z=1", "mirrored body")
	// A chunked body is sent to the shadow whole, with its length.
	req, _ := http.NewRequest("POST", "http://"+h.addr+"/post/chunked", io.MultiReader(strings.NewReader("in "), strings.NewReader("chunks")))
	if resp, err := http.DefaultClient.Do(req); err != nil || len(req.TransferEncoding) == 0 && req.ContentLength > 0 {
		t.Fatalf("chunked POST: %v", err)
	} else {
		resp.Body.Close()
	}
	testkit.Eventually(t, 5*time.Second, "three requests at the shadow", func() bool { return len(seen.list()) >= 3 })
	time.Sleep(50 * time.Millisecond) // a fourth, wrongly mirrored, would have arrived by now
	got := seen.list()
	slices.Sort(got)
	want := []string{"GET /get/x?b=2&a=1&a=%2F;c 1 ", "POST /post/chunked 1 in chunks", "POST /post/y?z=1 1 mirrored body"}
	if !slices.Equal(got, want) {
		t.Fatalf("the shadow saw %q, want %q", got, want)
	}
}

// TestShadowLeavesClientsAlone: a shadow that is down, slow or failing
// changes nothing a client sees — status, body, and latency within noise —
// while its copies are counted as shadow_error or dropped, never more in
// flight than concurrency + queue.
func TestShadowLeavesClientsAlone(t *testing.T) {
	legacy := newOrigin(t, "legacy")
	var seen shadowSeen
	var inFlight, most int
	var mu sync.Mutex
	release := make(chan struct{})
	slow := shadowOrigin(t, &seen, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	t.Cleanup(func() { close(release) })
	failing := shadowOrigin(t, &shadowSeen{}, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()

	report := &shadow.Report{}
	m := metrics.New()
	report.Requests = m.ShadowRequests
	h := newHarnessWith(t, Options{Shadow: report, Metrics: m}, withLegacy(legacy.srv.URL, []string{"slow", slow.URL, "failing", failing.URL, "down", down},
		`{match: "/slow/", origin: legacy, shadow: {to: slow, concurrency: 2, queue: 3}}`,
		`{match: "/failing/", origin: legacy, shadow: {to: failing}}`,
		`{match: "/down/", origin: legacy, shadow: {to: down, timeout: 1s}}`,
		`{match: "/plain/", origin: legacy}`))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(path string) (int, string, time.Duration) {
		t0 := time.Now()
		resp, err := client.Get("http://" + h.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b), time.Since(t0)
	}
	var took = map[string][]time.Duration{}
	for i := range 40 {
		for _, p := range []string{"/plain/", "/slow/", "/failing/", "/down/"} {
			code, body, d := get(fmt.Sprintf("%sr%d", p, i))
			if want := fmt.Sprintf("legacy saw GET %sr%d ", p, i); code != 200 || !strings.HasPrefix(body, want) {
				t.Fatalf("GET %sr%d: %d %q, want 200 from the primary", p, i, code, body)
			}
			took[p] = append(took[p], d)
		}
	}
	// Latency: a shadow's copy is sent after the answer, by a worker; a
	// client never waits for it. The slowest of 40 requests stays far
	// below the slow shadow's 10 s and the down one's 1 s timeout.
	for p, ds := range took {
		if slices.Max(ds) > 500*time.Millisecond {
			t.Errorf("%s: slowest request took %v", p, slices.Max(ds))
		}
	}
	testkit.Eventually(t, 10*time.Second, "the copies counted", func() bool {
		s := report.Summaries("", 0)
		byRoute := map[string]shadow.Summary{}
		for _, x := range s {
			byRoute[x.Route] = x
		}
		return len(s) == 3 && byRoute["/failing/"].Compared == 40 && byRoute["/down/"].ShadowError == 40 &&
			byRoute["/slow/"].Dropped >= 35
	})
	mu.Lock()
	if most > 2 {
		t.Errorf("%d copies in flight at the slow shadow at once, want at most concurrency 2", most)
	}
	mu.Unlock()
	for _, s := range report.Summaries("", 0) {
		if s.Route == "/failing/" && (s.Diff != 40 || !slices.ContainsFunc(s.Paths, func(p shadow.PathCount) bool { return p.Path == "status" && p.Count == 40 })) {
			t.Errorf("failing shadow: %d diffs, paths %+v; want 40, status among them 40 times", s.Diff, s.Paths)
		}
	}

	// A deployment that removes the slow shadow: once the table before
	// retires, the copies still queued for it (3, behind the 2 in flight)
	// are counted as dropped, so every copy is accounted for.
	h.apply(t, 2, withLegacy(legacy.srv.URL, nil, `{match: "/slow/", origin: legacy}`))
	testkit.Eventually(t, 10*time.Second, "the queued copies counted", func() bool {
		s := report.Summaries("/slow/", 0)
		return len(s) == 1 && s[0].Dropped == 38
	})
}
