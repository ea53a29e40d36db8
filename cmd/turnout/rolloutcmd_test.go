package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/judge"
	"github.com/turnout/turnout/internal/rollout"
	"github.com/turnout/turnout/internal/testkit"
)

// TestRolloutStatusTable: `turnout rollout status` prints each rollout's
// position and both sides' figures from the admin API, one row a side,
// the last verdict on the baseline's; -o json is the API's answer.
func TestRolloutStatusTable(t *testing.T) {
	judged := time.Date(2026, 12, 6, 9, 1, 0, 0, time.Local)
	v := judge.Verdict{Decision: judge.Fail, Reason: "canary p99 412 ms vs baseline 180 ms, U-test p=0.0003",
		Baseline: judge.SideStats{Requests: 1200, Failures: 6, ErrorRate: 0.005, P50: 20 * time.Millisecond, P99: 180 * time.Millisecond},
		Canary:   judge.SideStats{Requests: 250, P50: 3200 * time.Microsecond, P99: 412 * time.Millisecond}}
	statuses := []rollout.Status{
		{Route: "GET /user/{id}", Baseline: "users", Canary: "function:users", State: "running", Step: 2, Steps: []float64{1, 5, 25, 50, 100},
			Weight: 5, InStep: 63 * time.Second, StepFor: 5 * time.Minute, Verdict: &v, Judged: judged},
		{Route: "GET /items/{id}", Baseline: "legacy", Canary: "function:items", State: "paused", Step: 1, Steps: []float64{0.5},
			Weight: 0.5, InStep: 200 * time.Millisecond, StepFor: 90 * time.Minute},
	}
	_, svc := deploytest.Seeded(t, cliConfigV1)
	flags := adminServer(t, admin.Options{Service: svc, Rollouts: func(context.Context) ([]rollout.Status, error) { return statuses, nil }}, "viewer", "viewer")
	with := func(args ...string) []string { return append(args, flags...) }

	r := runCLI(cmdRollout, with("status")...)
	if r.err != nil {
		t.Fatalf("status: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	want := `ROUTE            STATE    STEP  WEIGHT  IN STEP         SIDE      TARGET          REQUESTS  ERROR RATE  P50     P99     LAST VERDICT
GET /user/{id}   running  2/5   5%      1m03s of 5m     baseline  users           1200      0.50%       20 ms   180 ms  fail: canary p99 412 ms vs baseline 180 ms, U-test p=0.0003 (09:01:00)
                                                        canary    function:users  250       0.00%       3.2 ms  412 ms
GET /items/{id}  paused   1/1   0.5%    200ms of 1h30m  baseline  legacy          -         -           -       -       none yet
                                                        canary    function:items  -         -           -       -
`
	if r.stdout != want {
		t.Errorf("status:\n%s\nwant:\n%s", r.stdout, want)
	}

	// One route, its match unquoted and spaced as the shell splits it.
	r = runCLI(cmdRollout, with("status", "GET", "/items/{id}", "-o", "table")...)
	if r.err != nil || strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stdout, "GET /items/{id}  paused") {
		t.Errorf("status of one route: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	r = runCLI(cmdRollout, with("status", "GET /nope")...)
	if r.err == nil || !strings.Contains(r.err.Error(), `route "GET /nope" has no rollout`) {
		t.Errorf("status of a route without a rollout: %v\n%s%s", r.err, r.stdout, r.stderr)
	}

	r = runCLI(cmdRollout, with("status", "-o", "json")...)
	var got struct{ Rollouts []json.RawMessage }
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &got) != nil || len(got.Rollouts) != 2 {
		t.Fatalf("status json: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `"decision": "fail"`) || !strings.Contains(r.stdout, `"state": "paused"`) {
		t.Errorf("status json:\n%s", r.stdout)
	}

	// A viewer may look, not act: the server's 403, said plainly.
	r = runCLI(cmdRollout, with("pause", "GET /user/{id}")...)
	if r.err == nil || !strings.Contains(r.err.Error(), "role viewer may not rollout.pause (needs deployer)") {
		t.Errorf("pause as viewer: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
}

// TestRolloutUsage: what cannot be a rollout command is refused before
// the admin API is called (no server listens at --admin).
func TestRolloutUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"stauts"},
		{"step", "GET /user/{id}"},
		{"pause"},
		{"status", "-m", "why"},
		{"status", "--wait"},
		{"--bogus", "status"},
	} {
		r := runCLI(cmdRollout, append(args, "--admin", "http://127.0.0.1:1", "--token", "x")...)
		if !errors.Is(r.err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, r.err)
		}
	}
	r := runCLI(cmdRollout, "status", "-o", "yaml", "--admin", "http://127.0.0.1:1", "--token", "x")
	if r.err == nil || !strings.Contains(r.err.Error(), "use text or json") {
		t.Errorf("-o yaml: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	for _, c := range []struct{ in, want string }{
		{"0s", "0s"}, {"200ms", "200ms"}, {"45s", "45s"}, {"63s", "1m03s"}, {"5m", "5m"}, {"90m", "1h30m"}, {"1h0m5s", "1h00m05s"}, {"2h", "2h"},
	} {
		d, _ := time.ParseDuration(c.in)
		if got := span(d); got != c.want {
			t.Errorf("span(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

// startRolloutNode starts a node whose route GET /x/{id} has a rollout
// from origin a to origin b, aborted in the file: the controller leaves it
// until started. Both origins answer alike, and the latency checks are as
// good as off: these tests are about operating a rollout, and on a loaded
// machine two sub-millisecond origins' p99s, a warm side against one with
// few, cold connections, differ by more than the ceilings now and then.
func startRolloutNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
	cfgPath := writeNodeConfig(t, dir, "off", fmt.Sprintf(`origins:
  a: {url: %s}
  b: {url: %s}
routes:
  - match: "GET /x/{id}"
    origin: a
    canary: {origin: b, sticky: "header:X-User"}
    rollout:
      {steps: [50, 90], step_for: 1h, interval: 200ms, min_requests: 20, state: aborted,
       analysis: {latency_tolerance: 10, max_p99_ratio: 1000}}
  - {match: /, origin: a}
`, a.URL, b.URL))
	return startNode(t, cfgPath)
}

// TestRolloutCLIEndToEnd drives a rollout with the CLI against a real
// `turnout serve`, its controller judging real traffic: start, the status
// table with both sides' figures, pause, resume, abort, start, promote,
// and what is refused.
func TestRolloutCLIEndToEnd(t *testing.T) {
	n := startRolloutNode(t)
	flags := []string{"--admin", n.admin, "--token", testToken}
	with := func(args ...string) []string { return append(args, flags...) }
	status := func() string {
		t.Helper()
		r := runCLI(cmdRollout, with("status")...)
		if r.err != nil {
			t.Fatalf("status: %v\n%s%s", r.err, r.stdout, r.stderr)
		}
		return r.stdout
	}
	// The controller reads each deployment the node serves in its own
	// goroutine: its status follows an action shortly after.
	shows := func(what string, want ...string) {
		t.Helper()
		var s string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			s = status()
			for _, l := range strings.Split(s, "\n") {
				if f := strings.Fields(l); len(f) >= len(want) && slices.Equal(f[:len(want)], want) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %s: want a line beginning %q in:\n%s", what, want, s)
			}
		}
	}
	const rt = "GET /x/{id}"
	shows("before start", "GET", "/x/{id}", "aborted", "0/2", "0%")

	r := runCLI(cmdRollout, with("start", "GET", "/x/{id}", "-m", "go")...)
	if r.err != nil || !strings.Contains(r.stdout, "deployment 2 is active: rollout") || !strings.Contains(r.stdout, "go") {
		t.Fatalf("start: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	shows("after start", "GET", "/x/{id}", "running", "1/2", "50%")

	// Traffic on both sides until the controller's verdict counts it.
	client := &http.Client{Timeout: 5 * time.Second}
	i := 0
	stop := testkit.Load(1, func(int) bool {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/x/%d", n.public, i), nil)
		req.Header.Set("X-User", strconv.Itoa(i))
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		i++
		return i < 20000 // bounded; a verdict needs 20 a side
	})
	defer stop()
	c := &admin.Client{BaseURL: n.admin, Token: testToken}
	testkit.Eventually(t, 20*time.Second, "a verdict with requests on both sides", func() bool {
		st, err := c.Rollouts(context.Background(), rt)
		return err == nil && len(st) == 1 && st[0].Verdict != nil && st[0].Verdict.Baseline.Requests > 0 && st[0].Verdict.Canary.Requests > 0
	})
	stop()
	// The table shows them: a count of requests on each side's row.
	judged := status()
	lines := strings.Split(judged, "\n")
	if len(lines) < 3 || !strings.Contains(lines[1], "baseline  a ") || !strings.Contains(lines[2], "canary    b ") {
		t.Fatalf("status with a verdict:\n%s", judged)
	}
	col := strings.Index(lines[0], "REQUESTS")
	for _, l := range lines[1:3] {
		if n, err := strconv.Atoi(strings.Fields(l[col:])[0]); err != nil || n == 0 {
			t.Errorf("no requests counted on a side in:\n%s", judged)
		}
	}

	r = runCLI(cmdRollout, with("pause", rt, "-m", "hold")...)
	if r.err != nil || !strings.Contains(r.stdout, "deployment 3 is active: rollout pause GET /x/{id} (by e2e") || !strings.Contains(r.stdout, "  hold\n") {
		t.Fatalf("pause: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	r = runCLI(cmdRollout, with("pause", rt)...)
	if r.err == nil || !strings.Contains(r.err.Error(), "the rollout is paused, not running") {
		t.Fatalf("second pause: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	shows("after pause", "GET", "/x/{id}", "paused", "1/2", "50%")
	if r = runCLI(cmdRollout, with("resume", rt)...); r.err != nil {
		t.Fatalf("resume: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if r = runCLI(cmdRollout, with("abort", rt, "--wait")...); r.err != nil || !strings.Contains(r.stdout, "acked") {
		t.Fatalf("abort --wait: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	shows("after abort", "GET", "/x/{id}", "aborted", "0/2", "0%")
	if got := get(t, "http://"+n.public+"/x/1"); got != "a" {
		t.Fatalf("after abort, the route answered %q, want the baseline a", got)
	}
	r = runCLI(cmdRollout, with("pause", "/")...)
	if r.err == nil || !strings.Contains(r.err.Error(), "no rollout") {
		t.Fatalf("pause a route without a rollout: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	r = runCLI(cmdRollout, with("abort", "GET /nope")...)
	if r.err == nil || !strings.Contains(r.err.Error(), rt) {
		t.Fatalf("abort an unknown route: %v\n%s%s", r.err, r.stdout, r.stderr)
	}

	// Started again and promoted: the canary is the route's target, and the
	// rollout is no longer listed.
	if r = runCLI(cmdRollout, with("start", rt)...); r.err != nil {
		t.Fatalf("start again: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if r = runCLI(cmdRollout, with("promote", rt, "-o", "json")...); r.err != nil || !strings.Contains(r.stdout, `"cause"`) {
		t.Fatalf("promote: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	shows("after promote", "no", "rollouts:")
	if got := get(t, "http://"+n.public+"/x/1"); got != "b" {
		t.Fatalf("after promote, the route answered %q, want the canary b", got)
	}
}
