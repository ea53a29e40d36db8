package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout/internal/authz/authztest"
)

// corsOrigin is an origin that sets CORS headers of its own, which a route
// with a policy must drop, and records what reached it.
func corsOrigin(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Max-Age", "1")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("X-Total", "3")
		fmt.Fprintf(w, "api saw %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// TestCORS drives a gateway with a CORS policy over real sockets:
// preflights answered by turnout (allowed, refused by origin, method or
// header), before a route's authorizer; actual answers decorated, the
// origin's own CORS headers replaced, turnout's own errors and the
// authorizer's 401 included; a route with cors: off and a deployment
// without CORS untouched; preflights in the access log and the rejected
// counter.
func TestCORS(t *testing.T) {
	app := "https://app.example.com"
	api, seen := corsOrigin(t)
	legacy := newOrigin(t, "legacy")
	k := authztest.NewKey(t, jose.ES256, "k1")
	iss := authztest.NewIssuer(t, k)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	withCORS := fmt.Sprintf(`authorizers:
  idp: {jwt: {issuer: %q, audience: [api]}}
cors:
  allow_origins: [%q, "https://*.example.org"]
  allow_methods: [PUT, DELETE]
  allow_headers: [Authorization, X-Trace]
  expose_headers: [X-Total]
  max_age: 600
  allow_credentials: true
`, iss.URL, app) + withLegacy(legacy.srv.URL, []string{"api", api.URL, "dead", dead},
		`{match: "PUT /items/{id}", origin: api}`,
		`{match: "GET /items/{id}", origin: api}`,
		`{match: "GET /orders/", origin: api, auth: {authorizer: idp}}`,
		`{match: "/public/", origin: api, cors: off}`,
		`{match: "/open/", origin: api, cors: {allow_origins: ["*"], allow_methods: ["*"], allow_headers: ["*"], expose_headers: ["*"]}}`,
		`{match: "GET /dead", origin: dead}`,
		`{match: /, origin: legacy}`)
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	h := newHarnessWith(t, Options{AccessLog: NewAccessLogger(lockedWriter{&logBuf, &logMu})}, withCORS)

	do := func(method, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+h.addr+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	preflight := func(path, origin, method, headers string) *http.Response {
		t.Helper()
		hdr := []string{"Origin", origin, "Access-Control-Request-Method", method}
		if headers != "" {
			hdr = append(hdr, "Access-Control-Request-Headers", headers)
		}
		resp, _ := do("OPTIONS", path, hdr...)
		return resp
	}
	noCORS := func(what string, h http.Header) {
		t.Helper()
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: carries %s: %v", what, k, h)
			}
		}
	}

	// An allowed preflight: 204 with the policy's headers, from turnout.
	resp := preflight("/items/1", app, "PUT", "x-trace,authorization")
	want := map[string]string{
		"Access-Control-Allow-Origin":      app,
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "PUT, DELETE",
		"Access-Control-Allow-Headers":     "authorization, x-trace",
		"Access-Control-Max-Age":           "600",
		"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		"X-Turnout-Served-By":              "turnout; reason=cors_preflight",
	}
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("allowed preflight: %d, want 204", resp.StatusCode)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("allowed preflight: %s %q, want %q", k, got, v)
		}
	}
	// A subdomain the wildcard covers.
	if resp := preflight("/items/1", "https://a.example.org", "PUT", ""); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://a.example.org" {
		t.Errorf("wildcard origin: %d %v", resp.StatusCode, resp.Header)
	}

	// Refused: another origin, a method or a header not allowed. The catch-
	// all route (the top-level policy too) has PATCH /items/1.
	for _, c := range [][3]string{
		{"https://evil.example.com", "PUT", ""},
		{app, "PATCH", ""},
		{app, "PUT", "x-other"},
		{"https://example.org", "PUT", ""},
	} {
		resp := preflight("/items/1", c[0], c[1], c[2])
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("preflight %v: %d %v, want 403 with Vary", c, resp.StatusCode, resp.Header)
		}
		noCORS(fmt.Sprintf("refused preflight %v", c), resp.Header)
	}
	if s := seen(); len(s) != 0 {
		t.Fatalf("preflights reached the origin: %v", s)
	}

	// The authorizer's route: the preflight needs no token; the 401 without
	// one is readable by the page.
	if resp := preflight("/orders/1", app, "GET", "authorization"); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("preflight to an authorized route without a token: %d %v, want 204 with CORS", resp.StatusCode, resp.Header)
	}
	resp, body := do("GET", "/orders/1", "Origin", app)
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != app || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("authorizer's refusal: %d %q %v, want 401 with CORS headers", resp.StatusCode, body, resp.Header)
	}

	// Actual requests: decorated, the origin's own CORS headers replaced.
	resp, body = do("PUT", "/items/7", "Origin", app)
	if resp.StatusCode != 200 || body != "api saw PUT /items/7" {
		t.Fatalf("PUT: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != app || resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		resp.Header.Get("Access-Control-Expose-Headers") != "x-total" || resp.Header.Get("Access-Control-Max-Age") != "" ||
		!slices.Equal(resp.Header.Values("Vary"), []string{"Accept-Encoding", "Origin"}) {
		t.Errorf("decorated answer: %v", resp.Header)
	}
	resp, _ = do("GET", "/items/7", "Origin", "https://evil.example.com")
	noCORS("answer to another origin", resp.Header)
	if !slices.Contains(resp.Header.Values("Vary"), "Origin") {
		t.Errorf("answer to another origin lacks Vary: Origin: %v", resp.Header)
	}
	resp, _ = do("GET", "/items/7")
	noCORS("answer without Origin", resp.Header)
	resp, _ = do("GET", "/dead", "Origin", app)
	if resp.StatusCode != 502 || resp.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("turnout's own 502: %d %v, want CORS headers", resp.StatusCode, resp.Header)
	}

	// "*" without credentials: "*" answers, and "*" methods and headers
	// echo what was asked, Authorization included.
	resp = preflight("/open/x", "https://anyone.example", "PATCH", "authorization,x-a")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Methods") != "PATCH" ||
		resp.Header.Get("Access-Control-Allow-Headers") != "authorization, x-a" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("open preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do("GET", "/open/x", "Origin", "https://anyone.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Expose-Headers") != "*" || slices.Contains(resp.Header.Values("Vary"), "Origin") {
		t.Errorf("open answer: %v", resp.Header)
	}

	// cors: off: the preflight is the origin's to answer, its headers kept.
	resp = preflight("/public/x", app, "GET", "")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Max-Age") != "1" {
		t.Errorf("cors: off preflight: %d %v, want the origin's own answer", resp.StatusCode, resp.Header)
	}
	if s := seen(); !slices.Contains(s, "OPTIONS /public/x") {
		t.Errorf("cors: off preflight did not reach the origin: %v", s)
	}

	// Counted: refused preflights as rejected, every preflight in the log.
	if n := testutil.ToFloat64(h.m.Rejected.WithLabelValues("cors_preflight")); n != 4 {
		t.Errorf("turnout_requests_rejected_total{reason=cors_preflight} = %v, want 4", n)
	}
	logMu.Lock()
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	logMu.Unlock()
	outcomes := map[string]int{}
	for _, l := range lines {
		var rec struct{ Method, Reason, Outcome string }
		json.Unmarshal([]byte(l), &rec)
		if rec.Reason == "cors_preflight" && rec.Method == "OPTIONS" {
			outcomes[rec.Outcome]++
		}
	}
	if outcomes["served"] != 4 || outcomes["rejected"] != 4 {
		t.Errorf("access log preflights by outcome %v, want 4 served and 4 rejected", outcomes)
	}

	// A deployment without CORS: nothing of it is left.
	h.apply(t, 2, withLegacy(legacy.srv.URL, []string{"api", api.URL}, `{match: "PUT /items/{id}", origin: api}`, `{match: /, origin: legacy}`))
	resp = preflight("/items/1", app, "PUT", "x-trace")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no CORS: preflight %d %v, want the legacy origin's answer", resp.StatusCode, resp.Header)
	}
	resp, _ = do("PUT", "/items/1", "Origin", app)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !slices.Equal(resp.Header.Values("Vary"), []string{"Accept-Encoding"}) {
		t.Errorf("no CORS: the origin's own headers changed: %v", resp.Header)
	}
}

// BenchmarkCORS measures what a CORS policy costs on the request path: an
// actual request from an allowed origin on a route with a policy (its
// answer decorated), a preflight turnout answers, and, for comparison, the
// same request on a route without one (BenchmarkServeHTTP/origin's path;
// the CORS hooks cost it a method comparison and a nil check).
func BenchmarkCORS(b *testing.B) {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer o.Close()
	gw := benchGateway(b, fmt.Sprintf(`origins: {a: {url: %s}}
routes:
  - {match: "GET /plain/{id}", origin: a}
  - {match: "/cors/{id}", origin: a, cors: {allow_origins: ["https://app.example.com"], allow_methods: [PUT], allow_headers: [X-Trace], allow_credentials: true}}
`, o.URL))
	for _, c := range []struct {
		name, method, path string
		hdr                http.Header
	}{
		{"no_cors", "GET", "/plain/42", http.Header{"Origin": {"https://app.example.com"}}},
		{"decorated", "GET", "/cors/42", http.Header{"Origin": {"https://app.example.com"}}},
		{"preflight", "OPTIONS", "/cors/42", http.Header{"Origin": {"https://app.example.com"},
			"Access-Control-Request-Method": {"PUT"}, "Access-Control-Request-Headers": {"x-trace"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(c.method, c.path, nil)
			req.RemoteAddr = "127.0.0.1:1234"
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				req.Header = c.hdr.Clone()
				w := httptest.NewRecorder()
				gw.ServeHTTP(w, req)
				if w.Code >= 300 {
					b.Fatalf("%s %s: %d", c.method, c.path, w.Code)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
