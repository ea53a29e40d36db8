package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/traffic"
)

// trafficServer runs the real admin API with a traffic table fed
// observations: /user/{id} 30 times plus 3 times with a ';' in the query,
// /health 5 times, and /old/report once, two hours ago.
func trafficServer(t *testing.T) []string {
	t.Helper()
	_, svc := deploytest.Seeded(t, cliConfigV1)
	table := traffic.NewTable(traffic.Options{})
	now := time.Now()
	observe := func(n int, path, query string, at time.Time) {
		for i := range n {
			p := path
			if strings.Contains(p, "%d") {
				p = fmt.Sprintf(path, i)
			}
			table.Observe(&turnout.Observation{Time: at, Method: "GET", Host: "api.example.com", Path: p, RawQuery: query,
				Route: "GET /user/{id}", Target: "origin:users", Outcome: turnout.Served, Status: 200, Duration: time.Millisecond, RequestBytes: -1})
		}
	}
	observe(30, "/user/%d", "", now)
	observe(3, "/user/%d", "ids=1;2", now)
	observe(5, "/health", "", now)
	observe(1, "/old/report", "", now.Add(-2*time.Hour))
	return adminServer(t, admin.Options{Service: svc, Traffic: table}, "viewer", "viewer")
}

func TestTrafficCommand(t *testing.T) {
	flags := trafficServer(t)
	with := func(args ...string) []string { return append(args, flags...) }

	// Ranked by calls: the user template first.
	r := runCLI(cmdTraffic, flags...)
	if r.err != nil {
		t.Fatalf("traffic: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "CALLS") || !strings.HasPrefix(lines[1], "33 ") || !strings.Contains(lines[1], "/user/{") {
		t.Fatalf("traffic table:\n%s", r.stdout)
	}
	if !strings.Contains(lines[1], "semicolon_in_query×3") {
		t.Errorf("the ';' risk is not flagged on the user template:\n%s", lines[1])
	}

	// JSON, --limit and --risky.
	r = runCLI(cmdTraffic, with("--output", "json", "--risky")...)
	var rep traffic.Report
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &rep) != nil {
		t.Fatalf("traffic --output json: %+v", r)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Calls != 33 || len(rep.Rows[0].Risks) != 1 || rep.Rows[0].Risks[0].Kind != traffic.RiskSemicolonInQuery {
		t.Fatalf("--risky rows = %+v", rep.Rows)
	}
	r = runCLI(cmdTraffic, with("-o", "json", "--limit", "1", "--sort", "template")...)
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.Rows) != 1 || rep.Rows[0].Template != "/health" {
		t.Fatalf("-o json --limit 1 --sort template: %+v", r)
	}

	// Unused endpoints, as CSV.
	r = runCLI(cmdTraffic, with("--unused-for", "1h", "--output", "csv")...)
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if r.err != nil || err != nil || len(recs) != 2 || !strings.Contains(strings.Join(recs[1], ","), "/old/report") {
		t.Fatalf("--unused-for 1h --output csv: %+v %v", r, err)
	}

	// Bad input: a clear error, exit status 1 or 2.
	for _, c := range []struct {
		args []string
		want string
	}{
		{with("--sort", "size"), `unknown sort order "size"`},
		{with("--output", "xml"), `--output "xml": use table, json or csv`},
		{with("--limit", "-3"), "limit -3 is negative"},
		{with("extra"), "unexpected argument"},
		{[]string{"--admin", flags[1], "--token", "wrong"}, "unknown token"},
	} {
		r := runCLI(cmdTraffic, c.args...)
		if r.err == nil || !strings.Contains(r.err.Error()+r.stderr, c.want) {
			t.Errorf("traffic %v: err %v, stderr %q; want %q", c.args, r.err, r.stderr, c.want)
		}
	}
	if r := runCLI(cmdTraffic, with("--unused-for", "soon")...); !errors.Is(r.err, errUsage) {
		t.Errorf("--unused-for soon: %v, want a usage error", r.err)
	}
}

// TestTrafficFromLiveGateway runs the built binary: requests through a real
// node show up in `turnout traffic`.
func TestTrafficFromLiveGateway(t *testing.T) {
	dir := t.TempDir()
	legacy := namedOrigin(t, "legacy")
	cfgPath := writeNodeConfig(t, dir, "off", fmt.Sprintf(`origins:
  legacy: {url: %s}
  orders: {url: %s}
routes:
  - {match: "GET /orders/{id}", origin: legacy, canary: {origin: orders, weight: 5}}
  - {match: /, origin: legacy}
`, legacy.URL, namedOrigin(t, "orders").URL))
	n := startNode(t, cfgPath)
	for i := range 12 {
		get(t, fmt.Sprintf("http://%s/orders/%d", n.public, 1000+i))
	}
	get(t, "http://"+n.public+"/about")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, turnoutBin, "traffic", "--admin", n.admin, "--token", testToken, "--output", "json")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("turnout traffic: %v\n%s", err, out)
	}
	var rep traffic.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rep.Rows) < 2 || rep.Rows[0].Calls != 12 || rep.Rows[0].Template != "/orders/{id}" ||
		len(rep.Rows[0].Routes) != 1 || rep.Rows[0].Routes[0] != "GET /orders/{id}" {
		t.Fatalf("rows = %+v, want /orders/{id} first with 12 calls", rep.Rows)
	}
	// Each row shows its route's migration stage, as turnout status does.
	if rep.Rows[0].Stage != "canary 5%" || rep.Rows[1].Stage != "legacy" {
		t.Fatalf("stages = %q, %q; want canary 5%%, legacy", rep.Rows[0].Stage, rep.Rows[1].Stage)
	}
	// A viewer reading it through the admin API directly gets the same.
	resp, body, err := n.api("GET", "/traffic?limit=1", nil)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"calls": 12`) {
		t.Fatalf("GET /api/v1/traffic: %v %s", err, body)
	}
}
