package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/testkit"
)

const cliConfigV1 = "# test gateway\n" + testkit.RoutingConfig

const cliToken = "cli-test-token"

// cliServer runs the real admin API over a bolt store seeded with
// cliConfigV1 and returns the flags that reach it.
func cliServer(t *testing.T) (flags []string, st *bolt.Store) {
	t.Helper()
	st, svc := deploytest.Seeded(t, cliConfigV1)
	return adminServer(t, admin.Options{Service: svc}, "ops", "admin"), st
}

// adminServer runs the real admin API with opts and cliToken as token
// name with role,
// and returns the flags that reach it.
func adminServer(t *testing.T, opts admin.Options, name, role string) []string {
	t.Helper()
	h := sha256.Sum256([]byte(cliToken))
	opts.Tokens = []config.Token{{Name: name, Role: role, SHA256: hex.EncodeToString(h[:])}}
	opts.Logger = testkit.QuietLogger()
	srv, err := admin.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return []string{"--admin", hs.URL, "--token", cliToken}
}

type cliResult struct {
	stdout, stderr string
	err            error
}

func runCLI(cmd func([]string, io.Writer, io.Writer) error, args ...string) cliResult {
	var out, errb bytes.Buffer
	err := cmd(args, &out, &errb)
	return cliResult{out.String(), errb.String(), err}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIWorkflow(t *testing.T) {
	flags, st := cliServer(t)
	with := func(args ...string) []string { return append(args, flags...) }

	// apply
	v2 := writeTemp(t, "v2.yaml", strings.Replace(cliConfigV1, "9100", "9101", 1))
	r := runCLI(cmdApply, with("-f", v2, "-m", "move users")...)
	if r.err != nil || !strings.Contains(r.stdout, "deployment 2 is active: apply (by ops") || !strings.Contains(r.stdout, "move users") {
		t.Fatalf("apply: %+v", r)
	}

	// apply invalid: every error on its own line, nothing changes
	bad := writeTemp(t, "bad.yaml", "origins:\n  legacy:\n    url: ftp://x\nroutes:\n  - match: /\n    origin: nowhere\n")
	r = runCLI(cmdApply, with("-f", bad)...)
	if r.err == nil {
		t.Fatal("invalid apply succeeded")
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], bad+":3:10: ") || !strings.HasPrefix(lines[1], bad+":6:") {
		t.Fatalf("apply invalid stderr:\n%s", r.stderr)
	}
	if d, _ := st.Active(context.Background()); d.ID != 2 {
		t.Fatalf("active = %d after invalid apply", d.ID)
	}

	// diff, flags after the positional arguments
	r = runCLI(cmdDiff, append([]string{"1", "2"}, flags...)...)
	if r.err != nil || !strings.Contains(r.stdout, "deployment 1 → deployment 2") ||
		!strings.Contains(r.stdout, "urls: [http://127.0.0.1:9100] → [http://127.0.0.1:9101]") ||
		!strings.Contains(r.stdout, "+    url: http://127.0.0.1:9101") {
		t.Fatalf("diff: %+v", r)
	}

	// rollback
	r = runCLI(cmdRollback, with("-m", "bad users build")...)
	if r.err != nil || !strings.Contains(r.stdout, "deployment 3 is active: rollback to 1") {
		t.Fatalf("rollback: %+v", r)
	}
	r = runCLI(cmdRollback, with("--to", "2")...)
	if r.err != nil || !strings.Contains(r.stdout, "deployment 4 is active: rollback to 2") {
		t.Fatalf("rollback --to: %+v", r)
	}
	r = runCLI(cmdRollback, with("--to", "99")...)
	if r.err == nil || !strings.Contains(r.err.Error(), "99") {
		t.Fatalf("rollback --to 99: %+v", r)
	}

	// route off (unquoted match, flags after it) and on
	r = runCLI(cmdRoute, append([]string{"off", "GET", "/user/{id}", "-m", "users 500s"}, flags...)...)
	if r.err != nil || !strings.Contains(r.stdout, "deployment 5 is active: route off GET /user/{id}") {
		t.Fatalf("route off: %+v", r)
	}
	r = runCLI(cmdRoute, with("off", "GET /user/{id}")...)
	if r.err == nil || !strings.Contains(r.err.Error(), "already off") {
		t.Fatalf("second route off: %+v", r)
	}

	// status shows the route off
	r = runCLI(cmdStatus, flags...)
	if r.err != nil || !strings.Contains(r.stdout, "active deployment 5: route off GET /user/{id}") {
		t.Fatalf("status: %+v", r)
	}
	var offLine string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "GET /user/{id}") {
			offLine = l
		}
	}
	// Where it goes now, and where `route on` returns it.
	if !strings.Contains(offLine, " OFF ") || !strings.Contains(offLine, "off → legacy; on → users") {
		t.Fatalf("status route line %q in:\n%s", offLine, r.stdout)
	}
	r = runCLI(cmdStatus, with("-o", "json")...)
	var offStatus admin.Status
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &offStatus) != nil || len(offStatus.Routes) != 2 {
		t.Fatalf("status json: %+v", r)
	}
	if got, want := offStatus.Routes[0], (turnout.RouteStatus{Match: "GET /user/{id}", Target: "legacy", WhenOn: "users", WhenOff: "legacy",
		Fallback: "legacy", Off: true, CanSwitchOff: true, Stage: turnout.StageLegacy}); got != want {
		t.Errorf("status json, the route off: %+v, want %+v", got, want)
	}
	if got, want := offStatus.Routes[1], (turnout.RouteStatus{Match: "/", Target: "legacy", WhenOn: "legacy", WhenOff: "legacy", Stage: turnout.StageLegacy}); got != want {
		t.Errorf("status json, the catch-all: %+v, want %+v", got, want)
	}
	// The catch-all already goes to the legacy origin: nowhere else to go.
	r = runCLI(cmdRoute, with("off", "/")...)
	if r.err == nil || !strings.Contains(r.err.Error(), "nowhere else to go") {
		t.Fatalf("route off /: %+v", r)
	}

	r = runCLI(cmdRoute, with("on", "GET /user/{id}")...)
	if r.err != nil || !strings.Contains(r.stdout, "deployment 6 is active: route on GET /user/{id}") {
		t.Fatalf("route on: %+v", r)
	}

	// history: deployments, the active one marked, then the audit trail
	r = runCLI(cmdHistory, with("--limit", "3")...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	hl := strings.Split(r.stdout, "\n")
	if !strings.HasPrefix(hl[0], "  ID") || !strings.HasPrefix(hl[1], "* 6 ") || !strings.HasPrefix(hl[2], "  5 ") || !strings.HasPrefix(hl[3], "  4 ") {
		t.Fatalf("history:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "audit trail:") || !strings.Contains(r.stdout, "route.on") {
		t.Fatalf("history without audit:\n%s", r.stdout)
	}
	r = runCLI(cmdHistory, with("--no-audit")...)
	if r.err != nil || strings.Contains(r.stdout, "audit trail") || !strings.Contains(r.stdout, "  1 ") {
		t.Fatalf("history --no-audit:\n%s", r.stdout)
	}

	// -o json
	r = runCLI(cmdHistory, with("-o", "json", "--limit", "2")...)
	var hist struct {
		Active      uint64
		Deployments []admin.DeploymentSummary
		Audit       []deploy.AuditEvent
	}
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &hist) != nil || hist.Active != 6 || len(hist.Deployments) != 2 || len(hist.Audit) != 2 {
		t.Fatalf("history json: %+v", r)
	}
	r = runCLI(cmdStatus, with("-o", "json")...)
	var status admin.Status
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &status) != nil || status.Active.ID != 6 || len(status.Routes) != 2 {
		t.Fatalf("status json: %+v", r)
	}
	r = runCLI(cmdDiff, with("-o", "json", "5")...)
	var diff deploy.DiffResult
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &diff) != nil || diff.A != 5 || diff.B != 6 || len(diff.Routes) != 1 {
		t.Fatalf("diff json: %+v", r)
	}

	// apply of what deployment 6 already serves (v2, its route back on):
	// nothing stored, said so, exit 0
	r = runCLI(cmdApply, with("-f", v2)...)
	if r.err != nil || r.stdout != "no change: deployment 6 is already active\n" {
		t.Fatalf("unchanged apply: %+v", r)
	}
	r = runCLI(cmdApply, with("-o", "json", "-f", v2)...)
	var same admin.Applied
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &same) != nil || !same.Unchanged || same.ID != 6 {
		t.Fatalf("unchanged apply json: %+v", r)
	}
	if d, _ := st.Active(context.Background()); d.ID != 6 {
		t.Fatalf("active = %d after an unchanged apply, want 6", d.ID)
	}

	v3 := writeTemp(t, "v3.yaml", strings.Replace(cliConfigV1, "9100", "9102", 1))
	r = runCLI(cmdApply, with("-o", "json", "-f", v3)...)
	var applied deploy.Deployment
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &applied) != nil || applied.ID != 7 {
		t.Fatalf("apply json: %+v", r)
	}
}

func TestCLITokenAndUsage(t *testing.T) {
	flags, _ := cliServer(t)
	url := flags[1]

	// The token from a token file.
	tf := writeTemp(t, "turnout.db.token", cliToken+"\n")
	t.Setenv("TURNOUT_TOKEN", "")
	r := runCLI(cmdStatus, "--admin", url, "--token-file", tf)
	if r.err != nil {
		t.Fatalf("status with token file: %+v", r)
	}
	// No token anywhere: a local error that says what to do.
	r = runCLI(cmdStatus, "--admin", url, "--token-file", filepath.Join(t.TempDir(), "missing"))
	if r.err == nil || !strings.Contains(r.err.Error(), "--token") {
		t.Fatalf("no token: %+v", r)
	}
	// A wrong token is the server's 401.
	r = runCLI(cmdStatus, "--admin", url, "--token", "nope")
	if r.err == nil || !strings.Contains(r.err.Error(), "unknown token") {
		t.Fatalf("wrong token: %+v", r)
	}
	// Environment defaults.
	t.Setenv("TURNOUT_ADMIN", url)
	t.Setenv("TURNOUT_TOKEN", cliToken)
	if r := runCLI(cmdStatus); r.err != nil {
		t.Fatalf("status from env: %+v", r)
	}

	for _, c := range []struct {
		cmd  func([]string, io.Writer, io.Writer) error
		args []string
	}{
		{cmdApply, nil},
		{cmdRoute, []string{"sideways", "/x"}},
		{cmdRoute, []string{"off"}},
		{cmdDiff, []string{"a", "b"}},
		{cmdDiff, []string{"1", "2", "3"}},
		{cmdHistory, []string{"--bogus"}},
		{cmdRollback, []string{"3"}},
	} {
		if r := runCLI(c.cmd, c.args...); !errors.Is(r.err, errUsage) {
			t.Errorf("%v: err = %v, want usage error", c.args, r.err)
		}
	}
	if r := runCLI(cmdStatus, "-o", "yaml"); r.err == nil {
		t.Error("-o yaml accepted")
	}
}
