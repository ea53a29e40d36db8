package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/testkit"
)

// TestServedByEveryAnswer: every answer says where it came from — the
// legacy origin on a plain or switched-off route, a function, the fallback
// and why, and turnout itself for a 429, 502, 504, 404 or 400, with the
// reason and the target that failed — so `curl -i` tells where a request
// went. served_by_header: off removes the header from all of them, and
// another name renames it.
func TestServedByEveryAnswer(t *testing.T) {
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	legacy := newOrigin(t, "legacy")
	dir := testkit.BuildFunctions(t, "sleep")
	host, err := fnhost.New(fnhost.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	config := func(servedBy string) string {
		return fmt.Sprintf(`%s
legacy: legacy
origins:
  legacy: {url: %s}
  dead: {url: %s}
  dead2: {url: %s}
  slow: {url: %s}
functions:
  busy: {handler: %s, concurrency: 1, queue_size: 0, env: {SLEEP_MS: "400"}}
routes:
  - {match: "GET /legacy/", origin: legacy}
  - {match: "GET /off", origin: dead, fallback: legacy, off: true}
  - {match: "GET /fb", origin: dead, fallback: legacy}
  - {match: "POST /fb", origin: dead, fallback: legacy}
  - {match: "GET /both", origin: dead, fallback: dead2}
  - {match: "GET /limited", origin: legacy, rate_limit: {rps: 0.001, burst: 1, over: reject}}
  - {match: "GET /dead", origin: dead}
  - {match: "GET /slow", origin: slow, timeout: 100ms}
  - {match: "GET /busy", function: busy}
`, servedBy, legacy.srv.URL, refused(), refused(), slow.URL, filepath.Join(dir, "sleep"))
	}
	h := newHarnessWith(t, Options{Functions: &invoke.Router{Hosted: host}}, config(""))
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+h.addr+path, strings.NewReader("x"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	type answer struct {
		method, path string
		code         int
		by           string
	}
	answers := []answer{
		{"GET", "/legacy/x", 200, "origin:legacy"},
		{"GET", "/off", 200, "origin:legacy"},
		{"GET", "/fb", 200, "origin:legacy; fallback=origin_connect"},
		{"POST", "/fb", 502, "turnout; reason=origin_connect; target=origin:dead"},
		{"GET", "/both", 502, "turnout; reason=origin_connect; target=origin:dead2; fallback=origin_connect"},
		{"GET", "/limited", 200, "origin:legacy"},
		{"GET", "/limited", 429, "turnout; reason=rate_limited; target=origin:legacy"},
		{"GET", "/dead", 502, "turnout; reason=origin_connect; target=origin:dead"},
		{"GET", "/slow", 504, "turnout; reason=origin_timeout; target=origin:slow"},
		{"GET", "/busy", 200, "function:busy"},
		{"GET", "/nowhere", 404, "turnout; reason=no_route"},
	}
	check := func(name string, header string, want func(answer) string) {
		t.Helper()
		for _, a := range answers {
			resp := do(a.method, a.path)
			if resp.StatusCode != a.code || resp.Header.Get(header) != want(a) {
				t.Errorf("%s: %s %s: %d with %s %q; want %d with %q", name, a.method, a.path, resp.StatusCode, header, resp.Header.Get(header), a.code, want(a))
			}
		}
		// A function at its concurrency limit: 429 from turnout.
		held := make(chan *http.Response, 1)
		go func() { held <- do("GET", "/busy") }()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if s := host.Stats(); len(s) == 1 && s[0].InUse == 1 {
				break
			}
		}
		throttled := answer{"GET", "/busy", 429, "turnout; reason=throttled; target=function:busy"}
		if resp := do("GET", "/busy"); resp.StatusCode != 429 || resp.Header.Get(header) != want(throttled) {
			t.Errorf("%s: a throttled function: %d with %s %q; want 429 with %q", name, resp.StatusCode, header, resp.Header.Get(header), want(throttled))
		}
		<-held
		// A request refused before routing.
		resp := raw(t, h.addr, "GET /a/../b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		rejected := answer{"GET", "/a/../b", 400, "turnout; reason=bad_path"}
		if got := headerLine(resp, header); status(resp) != 400 || got != want(rejected) {
			t.Errorf("%s: a bad path: %d with %s %q; want 400 with %q", name, status(resp), header, got, want(rejected))
		}
	}
	check("default", "X-Turnout-Served-By", func(a answer) string { return a.by })
	h.apply(t, 2, config("served_by_header: off"))
	check("off", "X-Turnout-Served-By", func(answer) string { return "" })
	h.apply(t, 3, config("served_by_header: X-Served"))
	check("renamed", "X-Served", func(a answer) string { return a.by })

	// Before any deployment, turnout answers 503 itself.
	rec := httptest.NewRecorder()
	New(Options{Logger: slog.New(slog.DiscardHandler)}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 503 || rec.Header().Get("X-Turnout-Served-By") != "turnout; reason=no_deployment" {
		t.Errorf("no deployment: %d by %q", rec.Code, rec.Header().Get("X-Turnout-Served-By"))
	}
}

// headerLine returns the value of header in a raw HTTP/1 response.
func headerLine(resp, header string) string {
	for _, line := range strings.Split(resp, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, header) {
			return strings.TrimSpace(v)
		}
		if line == "" {
			break
		}
	}
	return ""
}
