package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/rollout"
	"github.com/turnout/turnout/internal/shadow"
	"github.com/turnout/turnout/internal/shadow/diff"
	"github.com/turnout/turnout/internal/testkit"
)

// shadowOrigins are a legacy API and its replacement that answer alike but
// for a total sent as a string, both with a timestamp that differs on
// every call and a session cookie that must not reach a report.
func shadowOrigins(t *testing.T) (legacy, next *httptest.Server) {
	t.Helper()
	answer := func(total string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Set-Cookie", "session=cookie-s3cret")
			fmt.Fprintf(w, `{"id": %q, "total": %s, "generatedAt": "%d"}`, r.PathValue("id"), total, time.Now().UnixNano())
		}
	}
	mux := func(h http.HandlerFunc) *http.ServeMux {
		m := http.NewServeMux()
		m.HandleFunc("/items/{id}", h)
		return m
	}
	legacy, next = httptest.NewServer(mux(answer("3"))), httptest.NewServer(mux(answer(`"3"`)))
	t.Cleanup(legacy.Close)
	t.Cleanup(next.Close)
	return legacy, next
}

// shadowNode starts a real `turnout serve` whose GET /items/{id} is
// shadowed to next, every request mirrored and probed for noise, and sends
// it n requests with a secret bearer token, /items/0 to /items/n-1 with a
// query, then one to each of paths; it returns once the node has compared
// them all.
func shadowNode(t *testing.T, n int, paths ...string) *node {
	t.Helper()
	legacy, next := shadowOrigins(t)
	cfgPath := writeNodeConfig(t, t.TempDir(), "off", fmt.Sprintf(`origins:
  legacy: {url: %s}
  next: {url: %s}
routes:
  - match: "GET /items/{id}"
    origin: legacy
    shadow: {to: next, sample: 100%%, noise: 100%%}
  - {match: /, origin: legacy}
`, legacy.URL, next.URL))
	nd := startNode(t, cfgPath)
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range n {
		paths = slices.Insert(paths, i, fmt.Sprintf("/items/%d?q=%d", i, i))
	}
	for _, p := range paths {
		req, _ := http.NewRequest("GET", "http://"+nd.public+p, nil)
		req.Header.Set("Authorization", "Bearer token-s3cret")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	c := &admin.Client{BaseURL: nd.admin, Token: testToken}
	testkit.Eventually(t, 20*time.Second, "every request compared", func() bool {
		s, err := c.Shadow(context.Background(), "", 0)
		return err == nil && len(s) == 1 && s[0].Compared+s[0].ShadowError >= int64(len(paths))
	})
	return nd
}

// TestShadowCLIEndToEnd: `turnout shadow` against a real `turnout serve`
// whose shadow sends a number as a string: the counts, the differing path
// with its count and examples, the timestamp learned as noise, the
// examples side by side for one route, -o json for scripts, no secret, and
// a clear error for a route without a shadow.
func TestShadowCLIEndToEnd(t *testing.T) {
	const n = 12
	nd := shadowNode(t, n)
	with := func(args ...string) []string { return append(args, "--admin", nd.admin, "--token", testToken) }

	r := runCLI(cmdShadow, with("-o", "json")...)
	var got admin.Shadows
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &got) != nil || len(got.Routes) != 1 {
		t.Fatalf("-o json: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	s := got.Routes[0]
	if s.Route != "GET /items/{id}" || s.Target != "origin:next" || s.Compared != n || s.Diff != n || s.MatchRate != 0 {
		t.Fatalf("summary: %+v", s)
	}
	i := slices.IndexFunc(s.Paths, func(p shadow.PathCount) bool { return p.Path == "$.total" })
	if i < 0 || s.Paths[i].Kind != "type" || s.Paths[i].Count != n || len(s.Paths[i].Examples) == 0 {
		t.Fatalf("paths: %+v", s.Paths)
	}
	if !slices.ContainsFunc(s.Noise, func(p shadow.PathCount) bool { return p.Path == "$.generatedAt" }) {
		t.Errorf("$.generatedAt not learned as noise: %+v", s.Noise)
	}

	r = runCLI(cmdShadow, with()...)
	if r.err != nil {
		t.Fatalf("shadow: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"GET /items/{id} → shadow origin:next (since ",
		fmt.Sprintf("  compared             %d  both sides answered\n", n),
		fmt.Sprintf("  different            %d  diff\n", n),
		"  match rate        0.00%",
		"    COUNT  KIND  PATH",
		fmt.Sprintf("    %d     type  $.total", n),
		"turn these into ignore: rules",
		"$.generatedAt",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("shadow: no %q in:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "example ") || strings.Contains(r.stdout, " \n") {
		t.Errorf("shadow without a route: examples or trailing blanks in:\n%s", r.stdout)
	}

	// One route, unquoted: its latest examples, both answers side by side.
	r = runCLI(cmdShadow, with("GET", "/items/{id}", "--since", "5m")...)
	if r.err != nil {
		t.Fatalf("shadow ROUTE: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	for _, want := range []string{"last 5m)", "  example ", ": GET /items/", "?q=", "type $.total: 3 → \"3\"", "noise: $.generatedAt"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("shadow ROUTE: no %q in:\n%s", want, r.stdout)
		}
	}
	// Side by side: a line's fields are its label, the primary's, the shadow's.
	for _, want := range [][]string{{"PRIMARY", "SHADOW"}, {"status", "200", "200"}, {"Content-Type", "application/json", "application/json"},
		{"Set-Cookie", "[redacted]", "[redacted]"}, {"body", "{", "{"}, {`"total":`, "3,", `"total":`, `"3",`}} {
		found := false
		for l := range strings.Lines(r.stdout) {
			found = found || slices.Equal(strings.Fields(l), want)
		}
		if !found {
			t.Errorf("shadow ROUTE: no line of fields %q in:\n%s", want, r.stdout)
		}
	}
	if c := strings.Count(r.stdout, "  example "); c != shadowExamples {
		t.Errorf("%d examples shown, want %d:\n%s", c, shadowExamples, r.stdout)
	}
	for _, out := range []string{r.stdout, runCLI(cmdShadow, with("-o", "json", "GET /items/{id}")...).stdout} {
		if strings.Contains(out, "s3cret") {
			t.Errorf("a secret reached the report:\n%s", out)
		}
	}

	r = runCLI(cmdShadow, with("/")...)
	if r.err == nil || !strings.Contains(r.err.Error(), `route "/" has no shadow: add`) {
		t.Errorf("a route without a shadow: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	r = runCLI(cmdShadow, with("GET /nope")...)
	if r.err == nil || !strings.Contains(r.err.Error(), `route "GET /nope" has no shadow report on this node`) {
		t.Errorf("an unknown route: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if code := run(with("shadow", "/"), io.Discard, io.Discard); code != 1 {
		t.Errorf("exit code for a route without a shadow: %d, want 1", code)
	}
}

// TestShadowUsage: what cannot be a shadow command is refused before the
// admin API is called (no server listens at --admin).
func TestShadowUsage(t *testing.T) {
	for _, args := range [][]string{{"--since", "25h"}, {"--since", "0s"}, {"--since", "-1m"}, {"--since", "soon"}, {"--bogus"}} {
		r := runCLI(cmdShadow, append(args, "--admin", "http://127.0.0.1:1", "--token", "x")...)
		if !errors.Is(r.err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, r.err)
		}
	}
	r := runCLI(cmdShadow, "-o", "yaml", "--admin", "http://127.0.0.1:1", "--token", "x")
	if r.err == nil || !strings.Contains(r.err.Error(), "use text or json") {
		t.Errorf("-o yaml: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if got := clipped("a\x1b[2Jb\tc\r\n", 20); got != "a [2Jb c" {
		t.Errorf("clipped kept control characters: %q", got)
	}
	if got := clipped(strings.Repeat("é", 10), 5); got != "éééé…" {
		t.Errorf("clipped = %q", got)
	}
}

// TestShadowEmpty: no report on a node whose routes mirrored nothing; a
// route asked for by name with nothing mirrored is told apart from one
// without a shadow.
func TestShadowEmpty(t *testing.T) {
	_, svc := deploytest.Seeded(t, cliConfigV1)
	rep := &shadow.Report{}
	flags := adminServer(t, admin.Options{Service: svc, Shadow: rep.Summaries}, "viewer", "viewer")
	r := runCLI(cmdShadow, flags...)
	if r.err != nil || r.stdout != "no shadow reports: no route with a shadow has had a request mirrored on this node\n" {
		t.Errorf("empty: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	r = runCLI(cmdShadow, append([]string{"-o", "json"}, flags...)...)
	if r.err != nil || r.stdout != "{\n  \"routes\": []\n}\n" {
		t.Errorf("empty json: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
}

// TestRolloutStatusWaiting: `turnout rollout status` says why a rollout
// gated on its shadow has not started.
func TestRolloutStatusWaiting(t *testing.T) {
	const why = "waiting for the shadow: 120 of 1000 requests compared, match rate 99.17% (at least 99.5%)"
	_, svc := deploytest.Seeded(t, cliConfigV1)
	statuses := []rollout.Status{{Route: "GET /user/{id}", Baseline: "users", Canary: "function:users", State: "running", Step: 0,
		Steps: []float64{1, 10}, StepFor: time.Minute, Waiting: why}}
	flags := adminServer(t, admin.Options{Service: svc, Rollouts: func(context.Context) ([]rollout.Status, error) { return statuses, nil }}, "viewer", "viewer")
	r := runCLI(cmdRollout, append([]string{"status"}, flags...)...)
	if r.err != nil || !strings.HasSuffix(r.stdout, "\nGET /user/{id}: "+why+"\n") {
		t.Errorf("status: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
}

// TestShadowExampleText: an example whose shadow gave no answer shows the
// error in the shadow's column; a body longer than the terminal's lines is
// cut, saying so; an answer's control characters do not reach the
// terminal.
func TestShadowExampleText(t *testing.T) {
	_, svc := deploytest.Seeded(t, cliConfigV1)
	rep := &shadow.Report{}
	primary := diff.Answer{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: []byte("\x1b[31mred\n" + strings.Repeat("line\n", 30))}
	rep.Mirrored(&shadow.Mirrored{Route: "GET /user/{id}", Target: "function:users", Settings: &config.Shadow{}, Time: time.Now(),
		RequestID: "req-1", Method: "GET", Path: "/user/1", Primary: primary, Err: errors.New("shadow timed out after 10s")})
	flags := adminServer(t, admin.Options{Service: svc, Shadow: rep.Summaries}, "viewer", "viewer")
	r := runCLI(cmdShadow, append([]string{"GET /user/{id}"}, flags...)...)
	if r.err != nil {
		t.Fatalf("shadow: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	for _, want := range []string{"  shadow errors         1  the shadow gave no answer\n", "  match rate            -  ",
		"  example req-1: GET /user/1  shadow_error  ", "    status        200         error: shadow timed out after 10s\n",
		"    Content-Type  text/plain  -\n", "    body           [31mred\n", "                  line\n", "                  …\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "line\n"); n != shadowBodyLines-1 {
		t.Errorf("%d body lines shown, want %d:\n%s", n, shadowBodyLines-1, r.stdout)
	}
	if strings.Contains(r.stdout, "\x1b") || strings.Contains(r.stdout, "(empty)") {
		t.Errorf("an escape or an empty shadow body in:\n%q", r.stdout)
	}
}
