package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/judge"
	"github.com/turnout/turnout/internal/rollout"
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
		t.Fatalf("status: %+v", r)
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
		t.Errorf("status of one route: %+v", r)
	}
	r = runCLI(cmdRollout, with("status", "GET /nope")...)
	if r.err == nil || !strings.Contains(r.err.Error(), `route "GET /nope" has no rollout`) {
		t.Errorf("status of a route without a rollout: %+v", r)
	}

	r = runCLI(cmdRollout, with("status", "-o", "json")...)
	var got struct{ Rollouts []json.RawMessage }
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &got) != nil || len(got.Rollouts) != 2 {
		t.Fatalf("status json: %+v", r)
	}
	if !strings.Contains(r.stdout, `"decision": "fail"`) || !strings.Contains(r.stdout, `"state": "paused"`) {
		t.Errorf("status json:\n%s", r.stdout)
	}

	// A viewer may look, not act: the server's 403, said plainly.
	r = runCLI(cmdRollout, with("pause", "GET /user/{id}")...)
	if r.err == nil || !strings.Contains(r.err.Error(), "role viewer may not rollout.pause (needs deployer)") {
		t.Errorf("pause as viewer: %+v", r)
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
		t.Errorf("-o yaml: %+v", r)
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
