package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/h1loop"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/testkit"
)

// recordingOrigin is a stand-in origin that remembers the request targets it saw.
type recordingOrigin struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

// serveEdge serves h on a loopback port with the HTTP/1.1 server the edge
// uses by default until the test ends, and returns its host:port: for a
// gateway, event loops (internal/h1loop) serving its plain origin routes
// in front of h1.Server, which serves the rest; for any other handler,
// h1.Server.
func serveEdge(t testing.TB, h http.Handler) string {
	t.Helper()
	fallback := &h1.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	g, ok := h.(*Gateway)
	if !ok || !h1loop.Supported {
		return testkit.ServeWith(t, fallback)
	}
	return testkit.ServeWith(t, &h1loop.Server{
		Route: func(r *h1.Request, remote string) (h1loop.Exchange, bool) {
			if x, ok := g.BeginLoop(r, remote); ok {
				return x, true
			}
			return nil, false
		},
		Fallback:          fallback,
		ReadHeaderTimeout: 5 * time.Second,
	})
}

func newOrigin(t *testing.T, name string) *recordingOrigin {
	o := &recordingOrigin{name: name}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen = append(o.seen, r.Method+" "+r.RequestURI)
		o.mu.Unlock()
		w.Header().Set("X-Origin", name)
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s saw %s %s host=%s xff=%s rid=%s", name, r.Method, r.RequestURI, r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Request-Id"))
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *recordingOrigin) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...)
}

func (o *recordingOrigin) reset() {
	o.mu.Lock()
	o.seen = nil
	o.mu.Unlock()
}

// harness is a Gateway behind a real listener on loopback.
type harness struct {
	gw   *Gateway
	addr string
	m    *metrics.Metrics
}

func newHarness(t *testing.T, yaml string) *harness {
	t.Helper()
	return newHarnessWith(t, Options{}, yaml)
}

// newHarnessWith is newHarness with opts; unset Metrics, RetireGrace and
// Logger get the harness's defaults.
func newHarnessWith(t *testing.T, opts Options, yaml string) *harness {
	t.Helper()
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.RetireGrace == 0 {
		opts.RetireGrace = 10 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := opts.Metrics
	gw := New(opts)
	h := &harness{gw: gw, m: m}
	h.apply(t, 1, yaml)
	t.Cleanup(func() { gw.Close() })
	h.addr = serveEdge(t, gw)
	return h
}

// withLegacy is a config whose legacy origin, "legacy", is at legacyURL,
// beside more origins given as name, URL pairs, and routes: one YAML flow
// mapping each.
func withLegacy(legacyURL string, origins []string, routes ...string) string {
	var b strings.Builder
	b.WriteString("legacy: legacy\norigins:\n  legacy: {url: " + legacyURL + "}\n")
	for i := 0; i+1 < len(origins); i += 2 {
		fmt.Fprintf(&b, "  %s: {url: %s}\n", origins[i], origins[i+1])
	}
	b.WriteString("routes:\n")
	for _, r := range routes {
		b.WriteString("  - " + r + "\n")
	}
	return b.String()
}

func (h *harness) apply(t *testing.T, id uint64, yaml string) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := h.gw.Apply(id, cfg); err != nil {
		t.Fatal(err)
	}
}

// raw sends bytes over a fresh TCP connection and returns everything the
// server wrote before closing or going quiet.
func raw(t *testing.T, addr, req string) string {
	t.Helper()
	resp, _ := rawExchange(t, addr, req, 2*time.Second)
	return resp
}

func status(resp string) int {
	var code int
	fmt.Sscanf(resp, "HTTP/1.1 %d", &code)
	return code
}

func TestRequestPolicyRawBytes(t *testing.T) {
	legacy, users, adm := newOrigin(t, "legacy"), newOrigin(t, "users"), newOrigin(t, "admin")
	h := newHarness(t, fmt.Sprintf(`
origins:
  legacy: {url: %s}
  users: {url: %s}
  admin: {url: %s}
routes:
  - {match: "GET /user/{id}", origin: users}
  - {match: "/admin/", origin: admin}
  - {match: "GET api.example.com/v2/{rest...}", origin: users}
  - {match: /, origin: legacy}
`, legacy.srv.URL, users.srv.URL, adm.srv.URL))

	// Answered by the HTTP server itself, without the gateway's request id.
	refusedByServer := map[string]bool{"CONNECT refused": true, "CL and TE": true}
	for _, tc := range []struct {
		name    string
		req     string
		code    int
		origin  *recordingOrigin // nil: no origin may see anything
		seen    string
		closeIt bool // the connection must be closed after the response
	}{
		{"plain", "GET /user/42 HTTP/1.1\r\nHost: x\r\n\r\n", 200, users, "GET /user/42", false},
		{"query kept byte-exact", "GET /user/42?a=1;2&a=3&b=%2F HTTP/1.1\r\nHost: x\r\n\r\n", 200, users, "GET /user/42?a=1;2&a=3&b=%2F", false},
		{"encoded slash", "GET /user/..%2fadmin HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"double slash normalised", "GET //admin/x HTTP/1.1\r\nHost: x\r\n\r\n", 200, adm, "GET /admin/x", false},
		{"double slash to legacy", "GET //admin HTTP/1.1\r\nHost: x\r\n\r\n", 200, legacy, "GET /admin", false},
		{"path parameter", "GET /admin;x HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"dot-semicolon", "GET /user/..;/admin HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"dot segments", "GET /user/../admin/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"encoded dot segments", "GET /user/%2e%2e/admin/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"NUL", "GET /public%00.json HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"backslash", "GET /admin\\x HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"encoded backslash", "GET /user/..%5cadmin HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"encoded unreserved decoded", "GET /%61dmin/x HTTP/1.1\r\nHost: x\r\n\r\n", 200, adm, "GET /admin/x", false},
		// Refused by turnout's HTTP/1.1 server before the gateway (with
		// http1_server: net/http, the gateway answers CONNECT 405 and lets
		// Transfer-Encoding win over Content-Length, then closes).
		{"CONNECT refused", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501, nil, "", true},
		{"absolute form, undeclared host", "GET http://evil.example/admin/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", false},
		{"absolute form, declared host", "GET http://api.example.com/v2/a HTTP/1.1\r\nHost: api.example.com\r\n\r\n", 200, users, "GET /v2/a", false},
		{"host case and trailing dot", "GET /v2/b HTTP/1.1\r\nHost: API.Example.COM.:8080\r\n\r\n", 200, users, "GET /v2/b", false},
		{"underscore header", "GET /user/1 HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n", 400, nil, "", false},
		{"CL and TE", "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, "", true},
		{"unmatched without catch-all is legacy here", "DELETE /user/1 HTTP/1.1\r\nHost: x\r\n\r\n", 200, legacy, "DELETE /user/1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, o := range []*recordingOrigin{legacy, users, adm} {
				o.reset()
			}
			req := tc.req
			if !tc.closeIt {
				req = strings.Replace(req, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
			}
			resp := raw(t, h.addr, req)
			if got := status(resp); got != tc.code {
				t.Fatalf("status %d, want %d; response:\n%s", got, tc.code, resp)
			}
			if !refusedByServer[tc.name] && !strings.Contains(resp, "X-Request-Id: ") {
				t.Errorf("no X-Request-Id in response:\n%s", resp)
			}
			if tc.closeIt && strings.Count(resp, "HTTP/1.1 ") != 1 {
				t.Errorf("connection served more than one response:\n%s", resp)
			}
			for _, o := range []*recordingOrigin{legacy, users, adm} {
				got := o.requests()
				if o != tc.origin {
					if len(got) > 0 {
						t.Errorf("origin %s saw %q, want nothing", o.name, got)
					}
					continue
				}
				if len(got) != 1 || got[0] != tc.seen {
					t.Errorf("origin %s saw %q, want [%q]", o.name, got, tc.seen)
				}
			}
		})
	}
}

func TestNotFoundWithoutCatchAll(t *testing.T) {
	users := newOrigin(t, "users")
	h := newHarness(t, fmt.Sprintf("origins: {users: {url: %s}}\nroutes: [{match: \"GET /user/{id}\", origin: users}]\n", users.srv.URL))
	resp := raw(t, h.addr, "POST /user/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if status(resp) != 404 || !strings.Contains(resp, `"request_id"`) {
		t.Fatalf("want 404 with request id, got:\n%s", resp)
	}
}

// TestCaseInsensitiveRouting: in front of an origin that matches paths
// ignoring case (IIS), routing.case_insensitive sends "/ADMIN/x" to the route
// guarding "/admin/", not to the catch-all, and forwards the path as sent.
// Off (the default), matching is case-sensitive as API Gateway's is.
func TestCaseInsensitiveRouting(t *testing.T) {
	legacy, admin := newOrigin(t, "legacy"), newOrigin(t, "admin")
	cfg := func(ci bool) string {
		return fmt.Sprintf("routing: {case_insensitive: %v}\norigins: {legacy: {url: %s}, admin: {url: %s}}\nroutes:\n  - {match: /, origin: legacy}\n  - {match: /admin/, origin: admin}\n  - {match: \"GET /Reports/{year}\", origin: admin}\n",
			ci, legacy.srv.URL, admin.srv.URL)
	}
	h := newHarness(t, cfg(true))
	get := func(path string) string {
		t.Helper()
		resp := raw(t, h.addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if status(resp) != 200 {
			t.Fatalf("GET %s: %s", path, resp)
		}
		_, body, _ := strings.Cut(resp, "\r\n\r\n")
		name, _, _ := strings.Cut(body, " ")
		return name
	}
	for path, want := range map[string]string{
		"/admin/users": "admin", "/ADMIN/users": "admin", "/Admin/Users?x=1": "admin",
		"/adm%C4%B1n/users": "admin", // the dotless ı, which .NET takes for I
		"/reports/2024":     "admin", "/REPORTS/2024": "admin", "/ADMIN": "legacy", "/other": "legacy",
	} {
		if got := get(path); got != want {
			t.Errorf("case-insensitive: GET %s served by %s, want %s", path, got, want)
		}
	}
	if got, want := admin.requests(), "GET /ADMIN/users"; !slices.Contains(got, want) {
		t.Errorf("admin origin saw %q, want %q: the path forwarded as sent", got, want)
	}

	// A config that did not come from Parse has no table: Build compiles
	// one with the same options.
	parsed, err := config.Parse("test.yaml", []byte(cfg(true)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.gw.Apply(2, &config.Config{Routing: parsed.Routing, Origins: parsed.Origins, Routes: parsed.Routes}); err != nil {
		t.Fatal(err)
	}
	if got := get("/ADMIN/users"); got != "admin" {
		t.Errorf("table built from a bare config: GET /ADMIN/users served by %s, want admin", got)
	}

	h.apply(t, 3, cfg(false))
	for path, want := range map[string]string{"/admin/users": "admin", "/ADMIN/users": "legacy", "/REPORTS/2024": "legacy"} {
		if got := get(path); got != want {
			t.Errorf("case-sensitive: GET %s served by %s, want %s", path, got, want)
		}
	}
}

// TestStatusTargets: an off route reports where it goes now and where it
// returns when switched on; the catch-all on the legacy origin has nowhere
// else to go.
func TestStatusTargets(t *testing.T) {
	legacy, users := newOrigin(t, "legacy"), newOrigin(t, "users")
	h := newHarness(t, fmt.Sprintf("origins: {legacy: {url: %s}, users: {url: %s}}\nroutes:\n  - {match: \"GET /u/{id}\", origin: users, off: true}\n  - {match: /, origin: legacy}\n",
		legacy.srv.URL, users.srv.URL))
	st := h.gw.Status()
	want := []turnout.RouteStatus{
		{Match: "GET /u/{id}", Target: "legacy", WhenOn: "users", WhenOff: "legacy", Off: true, CanSwitchOff: true, Stage: turnout.StageLegacy},
		{Match: "/", Target: "legacy", WhenOn: "legacy", WhenOff: "legacy", Stage: turnout.StageLegacy},
	}
	if !slices.Equal(st.Routes, want) {
		t.Errorf("Status().Routes = %+v, want %+v", st.Routes, want)
	}
}

func TestOriginErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + ln.Addr().String()
	ln.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	h := newHarness(t, fmt.Sprintf(`
legacy: down
origins:
  down: {url: %s}
  slow: {url: %s, timeouts: {response_header: 300ms}}
routes:
  - {match: /down/, origin: down}
  - {match: /slow/, origin: slow}
`, refused, slow.URL))
	for _, tc := range []struct {
		path string
		code int
		max  time.Duration
	}{
		{"/down/x", 502, time.Second},
		{"/slow/x", 504, 2 * time.Second},
	} {
		start := time.Now()
		resp := raw(t, h.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-123\r\nConnection: close\r\n\r\n")
		if status(resp) != tc.code || !strings.Contains(resp, `"request_id":"trace-123"`) {
			t.Errorf("%s: want %d with request id, got:\n%s", tc.path, tc.code, resp)
		}
		if d := time.Since(start); d > tc.max {
			t.Errorf("%s took %v, want under %v", tc.path, d, tc.max)
		}
	}
}

// TestSwapUnderLoad keeps concurrent clients running while deployments are
// applied and rolled back 50 times, and asserts no request fails and each
// swap is visible to the very next request.
func TestSwapUnderLoad(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	cfg := func(target string) string {
		return fmt.Sprintf("origins:\n  a: {url: %s}\n  b: {url: %s}\nroutes:\n  - {match: /, origin: %s}\n", a.srv.URL, b.srv.URL, target)
	}
	h := newHarness(t, cfg("a"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var mu sync.Mutex
	var total, failed int
	stop := testkit.Load(8, func(int) bool {
		resp, err := client.Get("http://" + h.addr + "/load")
		ok := err == nil && resp.StatusCode == 200
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		mu.Lock()
		total++
		if !ok {
			failed++
		}
		mu.Unlock()
		return true
	})
	for i := 0; i < 50; i++ {
		target := []string{"b", "a"}[i%2]
		h.apply(t, uint64(i+2), cfg(target))
		resp, err := client.Get("http://" + h.addr + "/probe")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Origin"); got != target {
			t.Fatalf("swap %d: first request after apply served by %q, want %q", i, got, target)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if failed != 0 || total < 100 {
		t.Fatalf("%d of %d requests failed during 50 swaps", failed, total)
	}
	t.Logf("%d requests, 0 failed, across 50 swaps", total)
}

func TestMetrics(t *testing.T) {
	legacy := newOrigin(t, "legacy")
	h := newHarness(t, fmt.Sprintf("origins: {legacy: {url: %s}}\nroutes: [{match: \"GET /user/{id}\", origin: legacy}, {match: /, origin: legacy}]\n", legacy.srv.URL))
	for i := 0; i < 3; i++ {
		raw(t, h.addr, "GET /user/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	}
	raw(t, h.addr, "GET /a;b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	h.m.Registry.MustRegister(h.gw.HealthCollector())
	rec := httptest.NewRecorder()
	h.m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`turnout_requests_total{code="2xx",outcome="served",route="GET /user/{id}",target="origin:legacy"} 3`,
		`turnout_requests_total{code="4xx",outcome="rejected",route="",target=""} 1`,
		`turnout_request_duration_seconds_count{route="GET /user/{id}",target="origin:legacy"} 3`,
		`turnout_requests_rejected_total{reason="bad_path"} 1`,
		`turnout_active_deployment 1`,
		`turnout_origin_up{address="` + legacy.srv.URL + `",origin="legacy"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestWebSocketThroughGateway checks that an upgrade survives the gateway's
// response recorder (the origin hijacks through http.ResponseController).
func TestWebSocketThroughGateway(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not an upgrade", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		line, _ := brw.ReadString('\n')
		io.WriteString(c, "echo:"+line)
	}))
	defer ws.Close()
	h := newHarness(t, fmt.Sprintf("origins: {ws: {url: %s}}\nroutes: [{match: /, origin: ws}]\n", ws.URL))
	c := testkit.Dial(t, h.addr, 3*time.Second)
	defer c.Close()
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	io.WriteString(c, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:hello\n" {
		t.Fatalf("frame through the gateway: %q, %v", line, err)
	}
}

// TestOriginFallback covers an origin primary: a refused connection and a
// listed status go to the fallback for replayable requests (body replayed),
// a non-listed status is passed through, a POST is never sent twice.
func TestOriginFallback(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + ln.Addr().String()
	ln.Close()
	var primaryPOSTs, legacyPOSTs int
	var mu sync.Mutex
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			mu.Lock()
			primaryPOSTs++
			mu.Unlock()
		}
		w.Header().Set("X-Primary", "yes")
		code := map[string]int{"/s/503": 503, "/s/404": 404}[r.URL.Path]
		if code == 0 {
			code = 503
		}
		w.WriteHeader(code)
		io.WriteString(w, "primary body")
	}))
	defer primary.Close()
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == "POST" {
			mu.Lock()
			legacyPOSTs++
			mu.Unlock()
		}
		fmt.Fprintf(w, "legacy got %s %q", r.URL.Path, b)
	}))
	defer legacy.Close()
	h := newHarness(t, withLegacy(legacy.URL, []string{"primary", primary.URL, "down", refused},
		`{match: "/s/", origin: primary, fallback: legacy, fallback_on_status: [503]}`,
		`{match: "/down/", origin: down, fallback: legacy}`))
	for _, tc := range []struct {
		method, path, body string
		code               int
		want, servedBy     string
	}{
		{"PUT", "/s/503", "payload", 200, `legacy got /s/503 "payload"`, "origin:legacy; fallback=status"},
		{"GET", "/s/404", "", 404, "primary body", "origin:primary"},
		{"GET", "/down/x", "", 200, `legacy got /down/x ""`, "origin:legacy; fallback=origin_connect"},
		{"POST", "/s/503", "once", 503, "primary body", "origin:primary"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+h.addr+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || string(b) != tc.want || resp.Header.Get("X-Turnout-Served-By") != tc.servedBy {
			t.Errorf("%s %s: %d %q by %q; want %d %q by %q", tc.method, tc.path, resp.StatusCode, b, resp.Header.Get("X-Turnout-Served-By"), tc.code, tc.want, tc.servedBy)
		}
		if tc.path == "/s/503" && tc.method == "PUT" && resp.Header.Get("X-Primary") != "" {
			t.Errorf("the held-back primary response leaked a header")
		}
	}
	if primaryPOSTs != 1 || legacyPOSTs != 0 {
		t.Errorf("POST sent %d times to the primary and %d to the fallback; want once and never", primaryPOSTs, legacyPOSTs)
	}
}

// TestFallbackDownToo: primary and fallback both refuse connections. The
// client gets one clear 502, and nothing leaks.
func TestFallbackDownToo(t *testing.T) {
	h := newHarness(t, fmt.Sprintf("legacy: legacy\norigins:\n  legacy: {url: %s}\n  primary: {url: %s}\nroutes:\n  - {match: /, origin: primary, fallback: legacy}\n", testkit.RefusedURL(t), testkit.RefusedURL(t)))
	client := &http.Client{Transport: &http.Transport{}}
	get := func() (int, string) {
		resp, err := client.Get("http://" + h.addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get() // warm up pools and keep-alive
	before := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		if code, body := get(); code != 502 || !strings.Contains(body, "origin legacy") {
			t.Fatalf("both down: %d %s", code, body)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines grew from %d to %d over 50 requests", before, after)
	}
}

// TestRateLimit: past a route's token bucket, requests spill over to the
// fallback, or get 429 with Retry-After when the route says reject.
func TestRateLimit(t *testing.T) {
	primary, legacy := newOrigin(t, "primary"), newOrigin(t, "legacy")
	h := newHarness(t, withLegacy(legacy.srv.URL, []string{"primary", primary.srv.URL},
		`{match: "/spill/", origin: primary, fallback: legacy, rate_limit: {rps: 0.001, burst: 2}}`,
		`{match: "/reject/", origin: primary, fallback: legacy, rate_limit: {rps: 0.001, burst: 2, over: reject}}`))
	for _, tc := range []struct {
		path  string
		codes []int
		by    []string
	}{
		{"/spill/x", []int{200, 200, 200, 200}, []string{"origin:primary", "origin:primary", "origin:legacy; fallback=rate_limited", "origin:legacy; fallback=rate_limited"}},
		{"/reject/x", []int{200, 200, 429, 429}, []string{"origin:primary", "origin:primary", "turnout; reason=rate_limited; target=origin:primary", "turnout; reason=rate_limited; target=origin:primary"}},
	} {
		for i := range tc.codes {
			resp, err := http.Post("http://"+h.addr+tc.path, "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.codes[i] || resp.Header.Get("X-Turnout-Served-By") != tc.by[i] {
				t.Errorf("%s #%d: %d by %q, want %d by %q", tc.path, i, resp.StatusCode, resp.Header.Get("X-Turnout-Served-By"), tc.codes[i], tc.by[i])
			}
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s: 429 without Retry-After", tc.path)
			}
		}
	}
}

// TestFallbackReserve: a primary that never answers is cut at
// timeout − fallback_reserve, so the fallback still answers within the
// route's timeout.
func TestFallbackReserve(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	legacy := newOrigin(t, "legacy")
	h := newHarness(t, withLegacy(legacy.srv.URL, []string{"slow", slow.URL},
		`{match: /, origin: slow, fallback: legacy, timeout: 3s, fallback_reserve: 2s}`))
	start := time.Now()
	resp, err := http.Get("http://" + h.addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != 200 || resp.Header.Get("X-Turnout-Served-By") != "origin:legacy; fallback=origin_timeout" {
		t.Fatalf("%d by %q", resp.StatusCode, resp.Header.Get("X-Turnout-Served-By"))
	}
	// The primary is cut at 3s − 2s; had it not been, the fallback would
	// have had no time left and the answer would be a 504 at 3s.
	if took < 900*time.Millisecond || took > 2900*time.Millisecond {
		t.Errorf("answered after %s; the primary should be cut at 1s, leaving the fallback 2s", took)
	}
}

// TestFallbackAccessLog: the access log says why the fallback ran.
func TestFallbackAccessLog(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	m := metrics.New()
	gw := New(Options{Metrics: m, Logger: slog.New(slog.DiscardHandler), AccessLog: NewAccessLogger(lockedWriter{&buf, &mu}), RetireGrace: time.Millisecond})
	defer gw.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + ln.Addr().String()
	ln.Close()
	legacy := newOrigin(t, "legacy")
	cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf("legacy: legacy\norigins:\n  legacy: {url: %s}\n  down: {url: %s}\nroutes:\n  - {match: /, origin: down, fallback: legacy}\n", legacy.srv.URL, refused)))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Apply(1, cfg); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	mu.Lock()
	defer mu.Unlock()
	if rec.Code != 200 || !strings.Contains(buf.String(), `"error":"fallback: origin_connect: `) {
		t.Errorf("%d; access log: %s", rec.Code, buf.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
