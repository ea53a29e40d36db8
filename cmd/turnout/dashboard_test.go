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
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/store/etcd"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
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

// failOnJSErrors collects the page's uncaught JavaScript errors (and
// unhandled rejections); the returned func, deferred, fails the test with
// each.
func failOnJSErrors(t *testing.T, ctx context.Context) func() {
	var mu sync.Mutex
	var errs []string
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
			mu.Lock()
			errs = append(errs, msg)
			mu.Unlock()
		}
	}()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Errorf("JavaScript error in the dashboard: %s", e)
		}
	}
}

// signIn opens the dashboard of the node whose admin URL is admin and
// signs in with the test token.
func signIn(t *testing.T, ctx context.Context, admin string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(admin+"/"),
		chromedp.WaitVisible(chromedp.ID("token-input")),
		chromedp.SendKeys(chromedp.ID("token-input"), testToken),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("page-routes")),
	)
	if err != nil {
		t.Fatalf("sign in to the dashboard at %s: %v", admin, err)
	}
}

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
	defer failOnJSErrors(t, ctx)()

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

	// Fleet: on the bolt store the node is a fleet of one, serving the
	// active deployment, nothing to flag.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=tab-fleet]`)),
		chromedp.WaitVisible(chromedp.ID("page-fleet")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the node itself, up to date", `(() => { const rs = document.querySelectorAll('[data-testid=node-row]');
		return rs.length === 1 && rs[0].dataset.lag === '0' && rs[0].querySelector('[data-testid=node-serves]').innerText.startsWith('#5') &&
			rs[0].cells[1].innerText === `+jsString(n.admin)+`; })()`)
	waitJS(t, ctx, "no alert, no banner", `document.getElementById('fleet-alert').hidden && document.getElementById('fleet-nack').hidden && document.getElementById('store-banner').hidden`)

	t.Logf("screenshots in %s; took %s", shots, time.Since(start).Round(time.Millisecond))
}

// TestDashboardFleet drives the Fleet page in a real headless Chromium
// against a real node on a real etcd, with two more nodes of the fleet
// acking through the store (deploytest.Acker): one that has not yet applied
// the latest deployment, one that refused it. A person sees the three rows,
// the lag highlighted, the refusal in red on the page and on its tab; with
// etcd gone, a banner says the node is disconnected and the page says the
// store is unreachable instead of showing an empty fleet; with etcd back,
// the fleet returns.
func TestDashboardFleet(t *testing.T) {
	start := time.Now()
	shots := t.TempDir()
	cluster := etcdtest.Start(t, 1)
	a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
	n1, cfgPath := fleetNode(t, cluster, "edge-1", a.URL, b.URL)
	view, err := etcd.Open(etcd.Options{Endpoints: cluster.Endpoints(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { view.Close() })
	waitAcked(t, view, 1, "edge-1")
	// edge-2 takes an hour to apply anything after deployment 1; edge-3
	// refuses every later one.
	deploytest.Acker(t, view, "edge-2", time.Hour, false)
	deploytest.Acker(t, view, "edge-3", 0, true)

	// Deployment 2 moves the route to b: edge-1 serves it, edge-2 lags,
	// edge-3 refuses it.
	cfg := mustRead(t, cfgPath)
	resp, body, err := n1.api("POST", "/deployments", map[string]string{"config": strings.Replace(cfg, "{match: /, origin: a}", "{match: /, origin: b}", 1), "message": "to b"})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("apply: %v %s", err, body)
	}
	waitAcked(t, view, 2, "edge-1")
	testkit.Eventually(t, 10*time.Second, "edge-3 to refuse deployment 2", func() bool {
		ns, _ := view.Nodes(context.Background())
		for _, n := range ns {
			if n.Name == "edge-3" && n.Refused == 2 {
				return true
			}
		}
		return false
	})

	ctx := browser(t, 90*time.Second)
	defer failOnJSErrors(t, ctx)()
	signIn(t, ctx, n1.admin)
	// On the Routes page already, the Fleet tab says a node refused.
	waitJS(t, ctx, "the Fleet tab's NACK alert", `!document.getElementById('fleet-alert').hidden && document.getElementById('fleet-alert').textContent === 'NACK'`)
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=tab-fleet]`)),
		chromedp.WaitVisible(chromedp.ID("page-fleet")),
	)
	if err != nil {
		t.Fatal(err)
	}
	rows := `document.querySelectorAll('[data-testid=node-row]')`
	waitJS(t, ctx, "three nodes", rows+`.length === 3`)
	shot(t, ctx, shots, "6-fleet")

	// What each row shows, and in what colours.
	type row struct {
		Name      string
		Cells     []string
		RowBg     string
		LagBg     string
		NackColor string
	}
	js := `JSON.stringify([...` + rows + `].map((r) => {
		const lag = r.querySelector('[data-testid=node-lag] .lag'), nack = r.querySelector('[data-testid=nack-text]');
		return { Name: r.dataset.node, Cells: [...r.cells].map((c) => c.innerText.trim()), RowBg: getComputedStyle(r).backgroundColor,
			LagBg: lag ? getComputedStyle(lag).backgroundColor : '', NackColor: nack ? getComputedStyle(nack).color : '' };
	}))`
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	var got []row
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got) != 3 {
		t.Fatalf("rows: %v %s", err, out)
	}
	const (
		red       = "rgb(198, 40, 40)"   // --bad
		redSoft   = "rgb(253, 236, 236)" // --bad-soft
		amberSoft = "rgb(255, 244, 214)" // --warn-soft
		lagRow    = "rgb(255, 250, 235)" // a lagging row
		none      = "rgba(0, 0, 0, 0)"
	)
	for i, name := range []string{"edge-1", "edge-2", "edge-3"} {
		if got[i].Name != name {
			t.Fatalf("row %d is %q, want %s (sorted by name): %+v", i, got[i].Name, name, got)
		}
	}
	// Columns: node, admin address, serves, lag, applied, version.
	e1, e2, e3 := got[0], got[1], got[2]
	if e1.Cells[0] != "edge-1" || e1.Cells[1] != n1.admin || !strings.HasPrefix(e1.Cells[2], "#2") || !strings.Contains(e1.Cells[2], "active") ||
		e1.Cells[3] != "0" || e1.LagBg != "" || e1.RowBg != none || e1.Cells[4] == "–" || e1.Cells[5] == "–" || e1.Cells[5] == "" {
		t.Errorf("edge-1, serving the active deployment: %+v", e1)
	}
	if e2.Cells[1] != "http://edge-2.test:8081" || e2.Cells[2] != "#1" || e2.Cells[3] != "1 behind" || e2.LagBg != amberSoft || e2.RowBg != lagRow || e2.Cells[5] != "test" {
		t.Errorf("edge-2, one behind: %+v; want its lag highlighted (%s on a %s row)", e2, amberSoft, lagRow)
	}
	if !strings.HasPrefix(e3.Cells[0], "edge-3") || !strings.Contains(e3.Cells[0], "NACK") ||
		!strings.Contains(e3.Cells[2], "refused deployment #2: route table does not compile") || e3.NackColor != red || e3.RowBg != redSoft || e3.Cells[3] != "1 behind" {
		t.Errorf("edge-3, refusing deployment 2: %+v; want the refusal in %s on a %s row", e3, red, redSoft)
	}
	text := func(id string) string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const e = document.getElementById(`+jsString(id)+`); return e.hidden ? '(hidden)' : e.innerText.trim(); })()`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got, want := text("fleet-nack"), "NACK: node edge-3 refused deployment 2 and still serves 1: route table does not compile"; got != want {
		t.Errorf("NACK banner = %q, want %q", got, want)
	}
	if got, want := text("fleet-summary"), "3 live nodes · fleet deployment #2 · 1 serves it"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if got := text("store-banner"); got != "(hidden)" {
		t.Errorf("store banner with etcd up: %q", got)
	}

	// etcd gone: the node says it is disconnected, on every page, and the
	// Fleet page says the store is unreachable rather than listing nobody.
	cluster.Kill(0)
	waitJS(t, ctx, "the store banner", `!document.getElementById('store-banner').hidden && document.getElementById('store-banner').innerText.includes('Store disconnected.') && document.getElementById('store-banner').innerText.includes('serving deployment #2 from memory')`)
	waitJS(t, ctx, "the Fleet page to say the store is unreachable", `!document.getElementById('fleet-unreachable').hidden && document.getElementById('fleet-unreachable').innerText.startsWith('Store unreachable')`)
	if got := text("fleet-empty") + "|" + text("fleet-table") + "|" + text("fleet-nack"); got != "(hidden)|(hidden)|(hidden)" {
		t.Errorf("with the store unreachable, the empty note, table and NACK banner show: %q", got)
	}
	waitJS(t, ctx, "the Fleet tab's alert", `document.getElementById('fleet-alert').textContent === 'store unreachable'`)
	shot(t, ctx, shots, "7-fleet-store-unreachable")
	// The banner is on the other pages too.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid=tab-routes]`)), chromedp.WaitVisible(chromedp.ID("page-routes"))); err != nil {
		t.Fatal(err)
	}
	if got := text("store-banner"); !strings.HasPrefix(got, "Store disconnected.") {
		t.Errorf("store banner on the Routes page: %q", got)
	}

	// etcd back: the banner goes, the fleet returns.
	cluster.Restart(0)
	cluster.WaitHealthy()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid=tab-fleet]`)), chromedp.WaitVisible(chromedp.ID("page-fleet"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the store banner to go", `document.getElementById('store-banner').hidden`)
	waitJS(t, ctx, "the fleet to return", `document.getElementById('fleet-unreachable').hidden && !!document.querySelector('[data-testid=node-row][data-node=edge-1]')`)
	t.Logf("screenshots in %s; took %s", shots, time.Since(start).Round(time.Millisecond))
}

// TestDashboardRollouts drives the Rollouts page in a real headless
// Chromium against a real node whose controller runs the rollout: Start
// through the confirm step, the weight chart's new step, both sides'
// charts counting live traffic, a verdict, then Pause.
func TestDashboardRollouts(t *testing.T) {
	start := time.Now()
	shots := t.TempDir()
	// Aborted in the file: nothing moves until Start is clicked.
	n := startRolloutNode(t)
	ctx := browser(t, 90*time.Second)
	defer failOnJSErrors(t, ctx)()
	signIn(t, ctx, n.admin)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid=tab-rollouts]`)), chromedp.WaitVisible(chromedp.ID("page-rollouts"))); err != nil {
		t.Fatal(err)
	}
	card := `document.querySelector('[data-testid=rollout-card][data-route="GET /x/{id}"]')`
	waitJS(t, ctx, "the aborted rollout with a Start button", card+` && `+card+`.dataset.state === 'aborted' && !!`+card+`.querySelector('[data-testid=rollout-start]') && !`+card+`.querySelector('[data-testid=rollout-pause]')`)

	ask := func(action string) string {
		t.Helper()
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-route="GET /x/{id}"] [data-testid=rollout-`+action+`]`)), chromedp.WaitVisible(chromedp.ID("confirm-ok")))
		if err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("confirm-text")))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	if got, want := ask("start"), "Start the rollout of GET /x/{id}: 50% of its requests to b,"; !strings.HasPrefix(got, want) {
		t.Errorf("Start asks %q, want it to begin %q", got, want)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("confirm-message"), "go"), chromedp.Click(chromedp.ID("confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the rollout running at 50%", card+`.dataset.state === 'running' && `+card+`.dataset.weight === '50'`)
	waitJS(t, ctx, "the deployment said on the page", `!document.getElementById('rollouts-ok').hidden && document.getElementById('rollouts-ok').textContent.startsWith('Deployment #2 is active: rollout')`)
	waitJS(t, ctx, "the weight chart's step", `Number(`+card+`.querySelector('[data-testid=chart-weight]').dataset.points) >= 2`)

	// Both sides count live traffic; the controller judges it.
	client := &http.Client{Timeout: 5 * time.Second}
	i := 0
	defer testkit.Load(1, func(int) bool {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/x/%d", n.public, i), nil)
		req.Header.Set("X-User", fmt.Sprint(i))
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		i++
		time.Sleep(5 * time.Millisecond)
		return i < 20000
	})()
	for _, side := range []string{"baseline", "canary"} {
		waitJS(t, ctx, "the "+side+"'s requests/s", `(() => { const c = `+card+`.querySelector('[data-testid=rollout-`+side+`] [data-testid=chart-rps] .now'); return !!c && Number(c.textContent) > 0; })()`)
	}
	waitJS(t, ctx, "a verdict", `['wait', 'pass'].includes(`+card+`.querySelector('[data-testid=rollout-verdict]').dataset.decision)`)
	shot(t, ctx, shots, "8-rollouts")

	if got := ask("pause"); !strings.HasPrefix(got, "Hold GET /x/{id} at 50% on b?") {
		t.Errorf("Pause asks %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the rollout paused, with Resume", card+`.dataset.state === 'paused' && !!`+card+`.querySelector('[data-testid=rollout-resume]')`)
	resp, body, err := n.api("GET", "/deployments/active", nil)
	var active struct {
		ID             uint64
		Cause, Message string
	}
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &active) != nil || active.ID != 3 || !strings.HasPrefix(active.Cause, "rollout") {
		t.Fatalf("after Pause, active deployment = %+v (%v %s), want 3, a rollout deployment", active, err, body)
	}
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

// TestDashboardShadow loads the Shadow page in a real headless Chromium
// against a real node whose route has a shadow that sends a number as a
// string: the counts, the differing path with its count and an example id
// that unfolds its example, the noise learned, both answers side by side —
// an answer's markup shown as text, never run — and no CSP violation.
func TestDashboardShadow(t *testing.T) {
	const n = 6
	// The last request's id is markup: the answers carry it as text.
	nd := shadowNode(t, n, "/items/%3Cimg%20src=x%20onerror=window.__pwned=1%3E")
	ctx := browser(t, 90*time.Second)
	defer failOnJSErrors(t, ctx)()
	signIn(t, ctx, nd.admin)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI))`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid=tab-shadow]`)), chromedp.WaitVisible(chromedp.ID("page-shadow"))); err != nil {
		t.Fatal(err)
	}
	card := `document.querySelector('[data-testid=shadow-card][data-route="GET /items/{id}"]')`
	waitJS(t, ctx, "the route's card with every request compared", card+fmt.Sprintf(` && %s.dataset.compared === '%d'`, card, n+1))
	waitJS(t, ctx, "the counts", card+fmt.Sprintf(`.querySelector('[data-testid=shadow-diff]').textContent === '%d' && `, n+1)+
		card+`.querySelector('[data-testid=shadow-rate]').textContent === '0%'`)
	waitJS(t, ctx, "the match rate chart", `Number(`+card+`.querySelector('[data-testid=chart-match-rate]').dataset.points) >= 1`)
	path := card + `.querySelector('[data-testid=shadow-path][data-path="$.total"]')`
	waitJS(t, ctx, "$.total counted with its kind", path+fmt.Sprintf(` && %s.dataset.count === '%d' && %s.textContent.includes('type')`, path, n+1, path))
	waitJS(t, ctx, "$.generatedAt learned as noise", `!!`+card+`.querySelector('[data-testid=shadow-noise-path][data-path="$.generatedAt"]') && `+
		card+`.querySelector('[data-testid=shadow-ignore]').textContent.includes('"$.generatedAt"')`)

	// An example id of the path unfolds its example: both answers side by side.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](path+`.querySelector('button').click()`)); err != nil {
		t.Fatal(err)
	}
	open := `[...` + card + `.querySelectorAll('[data-testid=shadow-example]')].find((d) => d.open)`
	waitJS(t, ctx, "an example unfolded", `!!`+open)
	side := func(s string) string {
		return `[...` + open + `.querySelectorAll('td[data-side=` + s + `] pre')].map((p) => p.textContent).join('')`
	}
	waitJS(t, ctx, "both bodies", side("primary")+`.includes('"total": 3,') && `+side("shadow")+`.includes('"total": "3",')`)

	// The example of the request whose id is markup shows it as text, no
	// element. Found by its path: comparisons finish in any order, so the
	// last request sent need not be the latest example.
	markup := `[...` + card + `.querySelectorAll('[data-testid=shadow-example]')].find((d) => d.textContent.includes('/items/%3Cimg'))`
	waitJS(t, ctx, "the markup request's example", `!!`+markup)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](markup+`.open = true`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the markup shown as text", markup+`.open && `+markup+`.textContent.includes('<img src=x onerror=window.__pwned=1>') && !`+markup+`.querySelector('img')`)
	shot(t, ctx, t.TempDir(), "9-shadow")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({pwned: window.__pwned || 0, csp: window.__csp, secret: document.body.textContent.includes('s3cret')})`))
	if err != nil || got != `{"pwned":0,"csp":[],"secret":false}` {
		t.Errorf("after the Shadow page: %s, %v; want nothing run, no CSP violation, no secret", got, err)
	}
}
