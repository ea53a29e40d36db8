package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestCORSBrowser has a real Chromium judge turnout's CORS answers: a page
// on one loopback origin fetches from a node on another (another port), with
// a custom header (a preflight) and with credentials (a cookie), and reads
// the answer only where the route's policy allows it — the Fetch rules as a
// browser applies them, not as the tests read them — on origin and
// function routes alike.
func TestCORSBrowser(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("X-Total", "3")
		fmt.Fprintf(w, "api saw %s %s trace=%s cookie=%s", r.Method, r.URL.Path, r.Header.Get("X-Trace"), r.Header.Get("Cookie"))
	}))
	t.Cleanup(api.Close)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>page</title><p>page</p>")
	}))
	t.Cleanup(page.Close)
	pageOrigin := page.URL // http://127.0.0.1:PORT, as the browser sends it

	dir := t.TempDir()
	cfgPath := writeNodeConfig(t, dir, "off", fmt.Sprintf(`cors: {allow_origins: [%q], allow_methods: [PUT], allow_headers: [X-Trace], expose_headers: [X-Total], allow_credentials: true}
origins:
  api: {url: %s}
functions:
  hello: {handler: %s}
routes:
  - {match: /api/, origin: api}
  - {match: "GET /fn/{name}", function: hello}
  - {match: /other/, origin: api, cors: {allow_origins: ["http://127.0.0.1:1"], allow_headers: ["*"]}}
  - {match: /open/, origin: api, cors: {allow_origins: ["*"], allow_headers: ["*"]}}
  - {match: /plain/, origin: api, cors: off}
  - {match: /, origin: api}
`, pageOrigin, api.URL, filepath.Join(functionDir, "hello-v2")))
	n := startNode(t, cfgPath)
	ctx := browser(t, 60*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL+"/")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	// The page's cookie, for host 127.0.0.1: the node is same-site, so a
	// fetch with credentials carries it.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie = "session=abc"`)); err != nil {
		t.Fatal(err)
	}

	// probe fetches from the page and says what the page could read.
	probe := func(path, opts string) string {
		t.Helper()
		js := fmt.Sprintf(`fetch(%s, %s).then(
			async (r) => "read " + r.status + " " + (r.headers.get("X-Total") || "-") + " " + await r.text(),
			(e) => "blocked: " + e.message)`, jsString("http://"+n.public+path), opts)
		out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch %s %s: %v", path, opts, err)
		}
		return out
	}
	sawCount := func(what string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(slices.DeleteFunc(slices.Clone(seen), func(s string) bool { return s != what }))
	}

	for _, c := range []struct {
		name, path, opts string
		want             string // prefix of what probe returns
	}{
		// Allowed: a preflight for PUT with X-Trace, then the PUT with the
		// cookie; X-Total exposed.
		{"allowed with a custom header and credentials", "/api/x", `{method: "PUT", headers: {"X-Trace": "t1"}, credentials: "include"}`,
			"read 200 3 api saw PUT /api/x trace=t1 cookie=session=abc"},
		// A function route, with the top-level policy.
		{"function route", "/fn/world", `{headers: {"X-Trace": "t3"}, credentials: "include"}`, `read 200 - {"message":"hello from a function"`},
		// The same without credentials: still readable.
		{"allowed without credentials", "/api/y", `{method: "PUT", headers: {"X-Trace": "t2"}}`, "read 200 3 api saw PUT /api/y trace=t2 cookie="},
		// A header the policy does not allow: the preflight fails, the PUT is never sent.
		{"header not allowed", "/api/z", `{method: "PUT", headers: {"X-Other": "1"}}`, "blocked"},
		// A method the policy does not allow.
		{"method not allowed", "/api/z", `{method: "DELETE"}`, "blocked"},
		// A simple GET from an origin the policy does not list.
		{"origin not allowed", "/other/x", `{}`, "blocked"},
		// A route with cors: off.
		{"no policy", "/plain/x", `{}`, "blocked"},
		// "*": any origin reads, with a custom header; X-Total not exposed.
		{"star origin", "/open/x", `{headers: {"X-Anything": "1"}}`, "read 200 - api saw GET /open/x"},
		// "*" with credentials: the browser refuses it.
		{"star origin with credentials", "/open/x", `{credentials: "include"}`, "blocked"},
	} {
		if got := probe(c.path, c.opts); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: the page got %q, want %q", c.name, got, c.want)
		}
	}
	if n := sawCount("PUT /api/z") + sawCount("DELETE /api/z"); n != 0 {
		t.Errorf("requests whose preflight was refused reached the origin %d times", n)
	}
	if n := sawCount("OPTIONS /api/x") + sawCount("OPTIONS /api/y") + sawCount("OPTIONS /api/z"); n != 0 {
		t.Errorf("preflights reached the origin %d times: turnout answers them", n)
	}
}
