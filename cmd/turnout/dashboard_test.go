package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/turnout/turnout/internal/testkit"
)

// browser starts a headless Chromium for the test and returns its context,
// bounded by timeout. It fails, never skips, when Chromium is missing:
// scripts/install-test-deps.sh (run by make test and CI) installs it.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		if exe, err = exec.LookPath("chromium-browser"); err != nil {
			t.Fatalf("the dashboard test needs Chromium: run scripts/install-test-deps.sh as root (Debian/Ubuntu: apt-get install -y chromium): %v", err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // the test may run as root in CI containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium (%s): %v", exe, err)
	}
	return bctx
}

// shot saves a full-page PNG of the current page as name.png in the test's
// temp dir, and in /tmp/shots/ when TURNOUT_SHOTS=1, for a person to look at.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	// From the top, so that the sticky header sits where it belongs.
	chromedp.Run(ctx, chromedp.Evaluate[any](`window.scrollTo({top: 0, behavior: 'instant'})`))
	time.Sleep(200 * time.Millisecond)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("TURNOUT_SHOTS") == "1" {
		os.MkdirAll("/tmp/shots", 0o755)
		os.WriteFile(filepath.Join("/tmp/shots", name+".png"), png, 0o644)
	}
}

// waitJS polls a JavaScript expression in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText.slice(0, 2000) : ''`))
			t.Fatalf("waiting for %s (%s): err %v; page text:\n%s", what, expr, err, html)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestDashboardEndToEnd drives the dashboard in a real headless Chromium
// against a real node: sign in, see a route's chart count live traffic,
// roll back from the Deployments page and see the active deployment
// change, then the Traffic and Functions pages.
func TestDashboardEndToEnd(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	shots := t.TempDir()
	legacy := namedOrigin(t, "legacy")
	routes := func(extra string) string {
		return fmt.Sprintf(`origins:
  legacy: {url: %s}
functions:
  hello: {handler: %s}
routes:
  - {match: "GET /hello/{name}", function: hello, fallback: legacy}
  - {match: "GET /items/{id}", origin: legacy}
  - {match: /, origin: legacy}
%s`, legacy.URL, filepath.Join(functionDir, "hello-v2"), extra)
	}
	cfgPath := writeNodeConfig(t, dir, "off", routes(""))
	n := startNode(t, cfgPath)
	ctx := browser(t, 90*time.Second)

	// Any uncaught JavaScript error (or unhandled rejection) fails the test.
	var jsMu sync.Mutex
	var jsErrors []string
	exceptions := chromedp.Events(ctx, cdpruntime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			jsMu.Lock()
			jsErrors = append(jsErrors, msg)
			jsMu.Unlock()
		}
	}()
	defer func() {
		jsMu.Lock()
		defer jsMu.Unlock()
		for _, e := range jsErrors {
			t.Errorf("JavaScript error in the dashboard: %s", e)
		}
	}()

	// Sign in: / redirects to /ui/.
	err := chromedp.Do(ctx,
		chromedp.Navigate(n.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("token-input")),
	)
	if err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/ui/") {
		t.Errorf("/ redirected to %s, want /ui/", loc)
	}
	// A wrong token is refused with a message, and nothing is shown.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token-input"), "not-the-token"),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	if err != nil {
		t.Fatalf("sign in with a wrong token: %v", err)
	}
	waitJS(t, ctx, "the refusal", `document.getElementById('login-error').textContent.includes('not accepted') && document.getElementById('page-routes').hidden`)
	shot(t, ctx, shots, "0-login")
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token-input"), testToken),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("page-routes")),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	waitJS(t, ctx, "the active deployment in the header", `document.getElementById('active-deployment').dataset.id === '1'`)

	// Drive traffic at the public listener until the route's counter moves.
	client := &http.Client{Timeout: 5 * time.Second}
	i := 0
	defer testkit.Load(1, func(int) bool {
		for _, p := range []string{fmt.Sprintf("/hello/n%d", i%7), fmt.Sprintf("/items/%d", i), "/", "/search?ids=1;2"} {
			if resp, err := client.Get("http://" + n.public + p); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		i++
		time.Sleep(20 * time.Millisecond)
		return true
	})()

	total := func(route string) string {
		return `(() => { const c = [...document.querySelectorAll('[data-testid=route-card]')].find((c) => c.dataset.route === ` + jsString(route) + `);
			return c ? Number(c.querySelector('[data-testid=route-total]').dataset.total) : -1; })()`
	}
	waitJS(t, ctx, "the GET /hello/{name} chart to count requests", total("GET /hello/{name}")+` > 0`)
	first, err := chromedp.Run(ctx, chromedp.Evaluate[int](total("GET /hello/{name}")))
	if err != nil {
		t.Fatal(err)
	}
	// And keep counting: the page refreshes itself about every second.
	waitJS(t, ctx, "the counter to grow with the next refresh", total("GET /hello/{name}")+fmt.Sprintf(` > %d`, first))
	waitJS(t, ctx, "the per-target row", `!!document.querySelector('[data-route="GET /hello/{name}"] tr[data-target="function:hello"]')`)
	shot(t, ctx, shots, "1-routes")

	// A second deployment through the API; the header follows.
	resp, body, err := n.api("POST", "/deployments", map[string]string{"config": mustRead(t, cfgPath) + "  - {match: \"GET /new\", origin: legacy}\n", "message": "add GET /new"})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("apply: %v %s", err, body)
	}
	waitJS(t, ctx, "the header to show deployment 2", `document.getElementById('active-deployment').dataset.id === '2'`)

	// Roll back from the Deployments page, through the confirm dialog.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=tab-deployments]`)),
		chromedp.WaitVisible(chromedp.ID("page-deployments")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the history", `document.querySelectorAll('[data-testid=deployment-row]').length === 2 && !document.getElementById('rollback-button').disabled`)
	label, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("rollback-button")))
	if label != "Roll back to #1" {
		t.Errorf("rollback button says %q, want \"Roll back to #1\"", label)
	}
	// askConfirm clicks what asks for a confirmation and returns the
	// question; confirm answers it, with message when there is one.
	askConfirm := func(click chromedp.Action[chromedp.Void]) string {
		if err := chromedp.Do(ctx, click, chromedp.WaitVisible(chromedp.ID("confirm-ok"))); err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("confirm-text")))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	confirm := func(message string) {
		steps := []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.ID("confirm-ok"))}
		if message != "" {
			steps = append([]chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.ID("confirm-message"), message)}, steps...)
		}
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	askConfirm(chromedp.Click(chromedp.ID("rollback-button")))
	shot(t, ctx, shots, "2-confirm")
	confirm("")
	waitJS(t, ctx, "the active deployment to become the rollback, 3", `document.getElementById('active-deployment').dataset.id === '3'`)
	waitJS(t, ctx, "the history to show it", `document.querySelector('[data-testid=deployment-row]').dataset.id === '3'`)
	resp, body, err = n.api("GET", "/deployments/active", nil)
	var active struct {
		ID    uint64
		Cause string
	}
	if err != nil || json.Unmarshal(body, &active) != nil || active.ID != 3 || !strings.Contains(active.Cause, "rollback") {
		t.Fatalf("after the click, active deployment = %+v (%v, %d %s), want 3, a rollback", active, err, resp.StatusCode, body)
	}
	// Compare 2 with 3: the added route shows as removed.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`input[name=diff-a][value="2"]`)),
		chromedp.Click(chromedp.CSS(`input[name=diff-b][value="3"]`)),
		chromedp.Click(chromedp.ID("diff-button")),
		chromedp.WaitVisible(chromedp.ID("diff-card")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the diff", `document.getElementById('diff-unified').textContent.includes('GET /new')`)
	shot(t, ctx, shots, "3-deployments")

	// Each route says where it goes on and off. A route whose target is
	// already the legacy origin has nowhere else to go: no Switch off.
	targetsOf := func(route string) string {
		return `(() => { const c = document.querySelector('[data-testid="route-targets-` + route + `"]'); return c ? c.firstChild.textContent : ''; })()`
	}
	waitJS(t, ctx, "GET /hello/{name} with both targets", targetsOf("GET /hello/{name}")+` === 'on → function:hello; off → legacy'`)
	for _, r := range []string{"GET /items/{id}", "/"} {
		waitJS(t, ctx, r+" with nowhere else to go and no Switch off",
			`!document.querySelector('[data-testid="route-off-`+r+`"]') && !!document.querySelector('[data-testid="route-nowhere-`+r+`"]') && `+targetsOf(r)+` === 'legacy'`)
	}

	// Switch the function route off with one click (and a confirm):
	// deployment 4.
	if got, want := askConfirm(chromedp.Click(chromedp.CSS(`[data-testid="route-off-GET /hello/{name}"]`))), "Send GET /hello/{name} to legacy instead of function:hello?"; got != want {
		t.Errorf("Switch off asks %q, want %q", got, want)
	}
	confirm("hello misbehaves")
	waitJS(t, ctx, "route off to become deployment 4", `document.getElementById('active-deployment').dataset.id === '4'`)
	waitJS(t, ctx, "the route shown as off, with where it returns", `!!document.querySelector('[data-testid="route-on-GET /hello/{name}"]') && `+
		targetsOf("GET /hello/{name}")+` === 'off → legacy; on → function:hello'`)
	resp, body, err = n.api("GET", "/deployments/active", nil)
	if err != nil || !strings.Contains(string(body), "route off GET /hello/{name}") || !strings.Contains(string(body), "hello misbehaves") {
		t.Fatalf("after Switch off, active = %s (%v)", body, err)
	}
	// The API says the same: served by legacy now, back to the function on.
	resp, body, err = n.api("GET", "/status", nil)
	var st struct {
		Routes []struct {
			Match, Target string
			WhenOn        string `json:"when_on"`
			WhenOff       string `json:"when_off"`
			Off           bool
		}
	}
	if err != nil || json.Unmarshal(body, &st) != nil {
		t.Fatalf("status: %v %s", err, body)
	}
	for _, r := range st.Routes {
		if r.Match == "GET /hello/{name}" && (r.Target != "legacy" || r.WhenOn != "function:hello" || r.WhenOff != "legacy" || !r.Off) {
			t.Errorf("status of the route off: %+v, want target legacy, when_on function:hello, when_off legacy", r)
		}
	}

	// Switch on asks to send it back to the function, not to legacy.
	if got, want := askConfirm(chromedp.Click(chromedp.CSS(`[data-testid="route-on-GET /hello/{name}"]`))), "Send GET /hello/{name} back to function:hello? While off it goes to legacy."; got != want {
		t.Errorf("Switch on asks %q, want %q", got, want)
	}
	shot(t, ctx, shots, "3b-switch-on")
	confirm("")
	waitJS(t, ctx, "route on to become deployment 5", `document.getElementById('active-deployment').dataset.id === '5'`)
	waitJS(t, ctx, "the route shown as on", `!!document.querySelector('[data-testid="route-off-GET /hello/{name}"]')`)
	resp, body, err = n.api("GET", "/deployments/active", nil)
	if err != nil || !strings.Contains(string(body), "route on GET /hello/{name}") {
		t.Fatalf("after Switch on, active = %s (%v)", body, err)
	}

	// Traffic: templates ranked by calls, with the ';' risk flagged.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=tab-traffic]`)),
		chromedp.WaitVisible(chromedp.ID("page-traffic")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "a /hello template row", `[...document.querySelectorAll('[data-testid=traffic-row]')].some((r) => r.dataset.template.startsWith('/hello/'))`)
	waitJS(t, ctx, "the ';' risk badge on /search", `!!document.querySelector('[data-template="/search"] [data-risk=semicolon_in_query]')`)
	shot(t, ctx, shots, "4-traffic")

	// Functions: the hosted function with its counters and its log lines.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=tab-functions]`)),
		chromedp.WaitVisible(chromedp.ID("page-functions")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the hello function row", `!!document.querySelector('[data-testid=function-row][data-function=hello]')`)
	// Follow live: the traffic still running adds lines to the open stream.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logs-follow")), chromedp.Click(chromedp.ID("logs-show"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "log lines", `document.querySelectorAll('#logs-output .line').length > 0`)
	received := `Number(document.getElementById('logs-output').dataset.received)`
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](received))
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "new lines while following", fmt.Sprintf(`%s > %d && document.getElementById('logs-state').textContent === 'following…'`, received, lines))
	shot(t, ctx, shots, "5-functions")

	t.Logf("screenshots in %s; took %s", shots, time.Since(start).Round(time.Millisecond))
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
