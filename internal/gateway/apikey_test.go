package gateway

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/testkit"
)

// newTestKey returns a generated API key and its hash.
func newTestKey(t testing.TB) (key, hash string) {
	t.Helper()
	key, err := config.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	return key, config.HashAPIKey(key)
}

// TestAPIKeys: routes with api_key_required answer 403 without a known,
// enabled key and 429 past a key's own rate limit, in API Gateway's words,
// before the origin sees anything. A key's bucket is shared by every such
// route, kept across a deployment that keeps the key's limit and replaced
// when the limit changes; the access log names the key, never shows it.
func TestAPIKeys(t *testing.T) {
	legacy, users := newOrigin(t, "legacy"), newOrigin(t, "users")
	mobile, mobileHash := newTestKey(t)
	web, webHash := newTestKey(t)
	old, oldHash := newTestKey(t)
	stranger, _ := newTestKey(t)
	cfg := func(mobileBurst int, routeOff string) string {
		return fmt.Sprintf(`api_keys:
  mobile: {sha256: %s, rate_limit: {rps: 0.001, burst: %d}}
  web: {sha256: %s}
  old: {sha256: %s, disabled: true}
`, mobileHash, mobileBurst, webHash, oldHash) + withLegacy(legacy.srv.URL, []string{"users", users.srv.URL},
			`{match: "/a/", origin: users, fallback: legacy, api_key_required: true`+routeOff+`}`,
			`{match: "/b/", origin: users, api_key_required: true}`,
			`{match: "/", origin: legacy}`)
	}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	m := metrics.New()
	h := newHarnessWith(t, Options{Metrics: m, AccessLog: NewAccessLogger(lockedWriter{&logBuf, &logMu})}, cfg(2, ""))

	get := func(path string, keys ...string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+h.addr+path, nil)
		for _, k := range keys {
			req.Header.Add("X-Api-Key", k)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	const forbidden, tooMany = `{"message":"Forbidden"}`, `{"message":"Too Many Requests"}`
	for _, c := range []struct {
		name string
		keys []string
	}{
		{"no key", nil},
		{"an empty key", []string{""}},
		{"an unknown key", []string{stranger}},
		{"a hash instead of the key", []string{webHash}},
		{"two keys", []string{web, mobile}},
		{"a disabled key", []string{old}},
	} {
		code, body, hd := get("/a/1", c.keys...)
		if code != 403 || body != forbidden || hd.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q %q; want 403 %s", c.name, code, body, hd.Get("Content-Type"), forbidden)
		}
	}
	if n := len(users.requests()); n != 0 {
		t.Fatalf("the origin saw %d requests refused for their key", n)
	}
	if code, _, _ := get("/other"); code != 200 {
		t.Errorf("a route without api_key_required, no key: %d, want 200", code)
	}

	// mobile's burst of 2 is shared by /a/ and /b/; web has no limit.
	for i, c := range []struct {
		path, key string
		code      int
	}{{"/a/1", mobile, 200}, {"/b/1", mobile, 200}, {"/a/2", mobile, 429}, {"/b/2", mobile, 429}, {"/a/3", web, 200}, {"/b/3", web, 200}, {"/b/4", web, 200}} {
		code, body, hd := get(c.path, c.key)
		if code != c.code {
			t.Errorf("#%d %s: %d %q, want %d", i, c.path, code, body, c.code)
		}
		if code == 429 && (body != tooMany || hd.Get("Retry-After") == "" || hd.Get("X-Turnout-Served-By") != "turnout; reason=api_key_throttled") {
			t.Errorf("#%d %s: 429 %q, Retry-After %q, served by %q", i, c.path, body, hd.Get("Retry-After"), hd.Get("X-Turnout-Served-By"))
		}
	}

	// A deployment that keeps mobile's limit keeps its bucket (still
	// empty), and the route switched off still requires a key.
	h.apply(t, 2, cfg(2, ", off: true"))
	if code, _, _ := get("/a/4", mobile); code != 429 {
		t.Errorf("after a deployment keeping the key: %d, want 429 (the same bucket)", code)
	}
	if code, body, _ := get("/a/5"); code != 403 || body != forbidden {
		t.Errorf("switched off, no key: %d %q, want 403 (off does not open a route)", code, body)
	}
	if code, body, _ := get("/a/5", web); code != 200 || !strings.HasPrefix(body, "legacy saw") {
		t.Errorf("switched off, a good key: %d %q, want the fallback's answer", code, body)
	}
	// A new limit is a new bucket; the old one goes with the last table
	// holding it.
	h.apply(t, 3, cfg(3, ""))
	if code, _, _ := get("/a/6", mobile); code != 200 {
		t.Errorf("after the key's burst changed: %d, want 200 (a new bucket)", code)
	}
	testkit.Eventually(t, 5*time.Second, "the replaced bucket released", func() bool {
		h.gw.mu.Lock()
		defer h.gw.mu.Unlock()
		_, kept := h.gw.keyBuckets["mobile|0.001|3"]
		return len(h.gw.keyBuckets) == 1 && kept
	})

	for _, c := range []struct {
		key, result string
		want        float64
	}{{"", "missing", 3}, {"", "invalid", 3}, {"old", "disabled", 1}, {"mobile", "allowed", 3}, {"mobile", "throttled", 3}, {"web", "allowed", 4}} {
		if got := testutil.ToFloat64(m.APIKeyRequests.WithLabelValues(c.key, c.result)); got != c.want {
			t.Errorf("turnout_api_key_requests_total{key=%q,result=%q} = %v, want %v", c.key, c.result, got, c.want)
		}
	}

	logMu.Lock()
	log := logBuf.String()
	logMu.Unlock()
	for _, k := range []string{mobile, web, old, stranger} {
		if strings.Contains(log, k) {
			t.Fatalf("the access log shows an API key:\n%s", log)
		}
	}
	for _, want := range []string{`"api_key":"mobile","api_key_result":"throttled"`, `"api_key":"web","api_key_result":"allowed"`,
		`"api_key":"old","api_key_result":"disabled"`, `"api_key_result":"missing","status":403,"outcome":"rejected","reason":"api_key"`,
		`"status":429,"outcome":"throttled","reason":"api_key_throttled"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the access log has no %s:\n%s", want, log)
		}
	}
}

// TestAPIKeyAfterAuthorizer: a route with both an authorizer and
// api_key_required checks the authorizer first, as API Gateway does, so a
// request with neither gets the authorizer's 401.
func TestAPIKeyAfterAuthorizer(t *testing.T) {
	legacy := newOrigin(t, "legacy")
	_, hash := newTestKey(t)
	h := newHarness(t, fmt.Sprintf(`authorizers:
  idp: {jwt: {issuer: "http://127.0.0.1:1", audience: [api]}}
api_keys:
  web: {sha256: %s}
`, hash)+withLegacy(legacy.srv.URL, nil, `{match: "/", origin: legacy, auth: {authorizer: idp}, api_key_required: true}`))
	resp, err := http.Get("http://" + h.addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("neither token nor key: %d, want the authorizer's 401", resp.StatusCode)
	}
	for _, result := range []string{"missing", "invalid"} {
		if v := testutil.ToFloat64(h.m.APIKeyRequests.WithLabelValues("", result)); v != 0 {
			t.Errorf("a request the authorizer refused was counted %s", result)
		}
	}
}

// TestAPIKeyLookupAllocs: finding a key costs no allocation, so a keyed
// route allocates no more than another.
func TestAPIKeyLookupAllocs(t *testing.T) {
	key, hash := newTestKey(t)
	g := New(Options{Logger: slog.New(slog.DiscardHandler)})
	defer g.Close()
	g.mu.Lock()
	kr, err := g.keyringLocked(&Table{}, []config.APIKey{{Name: "k", SHA256: hash}})
	g.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if kr.lookup(key) == nil || kr.lookup(key[:len(key)-1]) != nil || kr.lookup(hash) != nil {
		t.Fatal("lookup finds the wrong keys")
	}
	if allocs := testing.AllocsPerRun(100, func() { kr.lookup(key) }); allocs != 0 {
		t.Errorf("lookup: %v allocations", allocs)
	}
}

// BenchmarkAPIKey measures a request on a route requiring a key against
// the same route without (both carry the header, so the origin sees the
// same request), and the key's check alone: its hash, lookup and bucket.
func BenchmarkAPIKey(b *testing.B) {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer o.Close()
	key, hash := newTestKey(b)
	gw := benchGateway(b, fmt.Sprintf(`origins: {a: {url: %s}}
api_keys: {k: {sha256: %s, rate_limit: {rps: 1e9, burst: 1000000000}}}
routes:
  - {match: "GET /plain/{id}", origin: a}
  - {match: "GET /keyed/{id}", origin: a, api_key_required: true}
`, o.URL, hash))
	b.Run("check", func(b *testing.B) {
		kr := gw.Active().plans[1].keys // GET /keyed/{id}
		if kr == nil {
			b.Fatal("the keyed route has no keyring")
		}
		b.ReportAllocs()
		for b.Loop() {
			if k := kr.lookup(key); k == nil || !k.bucket.Allow() {
				b.Fatal("refused")
			}
		}
	})
	for _, path := range []string{"/plain/42", "/keyed/42"} {
		b.Run(strings.Split(path, "/")[1], func(b *testing.B) {
			req := httptest.NewRequest("GET", path, nil)
			req.RemoteAddr = "127.0.0.1:1234"
			req.Header.Set("X-Api-Key", key)
			b.ReportAllocs()
			for b.Loop() {
				gw.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
