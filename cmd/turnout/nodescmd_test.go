package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/testkit"
)

// TestCLINodesAndWait: `turnout nodes`, `status` and --wait against the
// real admin API on a bolt store, with deploytest.Acker standing in for the
// node's follower and a second node record that stops acking.
func TestCLINodesAndWait(t *testing.T) {
	flags, st := cliServer(t)
	with := func(args ...string) []string { return append(args, flags...) }
	ctx := context.Background()

	r := runCLI(cmdNodes, flags...)
	if r.err != nil || !strings.Contains(r.stdout, "no live nodes") {
		t.Fatalf("nodes before any ack: %+v", r)
	}

	deploytest.Acker(t, st, "solo", 0, false)
	r = runCLI(cmdNodes, flags...)
	testkit.ContainsAll(t, "nodes", r.stdout, "NAME", "ADDRESS", "DEPLOYMENT", "LAG", "APPLIED", "VERSION", "solo", "http://solo.test:8081")
	if r.err != nil || strings.Contains(r.stdout, "NACK") {
		t.Fatalf("nodes: %+v", r)
	}
	// One node and no NACK: status does not list the fleet.
	r = runCLI(cmdStatus, flags...)
	if r.err != nil || strings.Contains(r.stdout, "solo") {
		t.Fatalf("status of a fleet of one: %+v", r)
	}

	// apply --wait: each node's propagation, exit 0.
	v2 := writeTemp(t, "v2.yaml", strings.Replace(cliConfigV1, "9100", "9101", 1))
	r = runCLI(cmdApply, with("-f", v2, "--wait")...)
	if r.err != nil {
		t.Fatalf("apply --wait: %+v", r)
	}
	testkit.ContainsAll(t, "apply --wait", r.stdout, "deployment 2 is active", "NODE", "PROPAGATION", " ms\n", "every live node (1) acked deployment 2")

	// -o json carries the propagation.
	r = runCLI(cmdRollback, with("--wait-timeout", "5s", "-o", "json")...)
	var res admin.Applied
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &res) != nil || res.ID != 3 || res.Propagation == nil ||
		len(res.Propagation.Nodes) != 1 || res.Propagation.Nodes[0].State != deploy.AckDone || res.Propagation.Nodes[0].PropagationMS == nil {
		t.Fatalf("rollback --wait-timeout -o json: %+v", r)
	}

	// A second node that stopped acking at deployment 3: the wait times
	// out, naming it, exit 1; the deployment is stored.
	if err := st.Ack(ctx, deploy.Node{Name: "stale", AdminURL: "http://10.0.0.2:8081", Deployment: 3, AppliedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(with("route", "off", "GET /user/{id}", "--wait-timeout", "1s"), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "deployment 4 is stored and active, but not acked in 1s by stale") {
		t.Fatalf("route off, stale not acking: exit %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errb)
	}
	testkit.ContainsAll(t, "route off --wait stdout", out.String(), "deployment 4 is active", "solo", "acked", "stale", "waiting")
	if d, _ := st.Active(ctx); d.ID != 4 {
		t.Fatalf("active = %d, want the route off stored as 4", d.ID)
	}

	// Two nodes: status lists them; stale lags.
	r = runCLI(cmdStatus, flags...)
	testkit.ContainsAll(t, "status of two nodes", r.stdout, "solo", "stale", "http://10.0.0.2:8081")

	// stale refuses deployment 4: nodes and status say so loudly.
	if err := st.Ack(ctx, deploy.Node{Name: "stale", Deployment: 3, Refused: 4, Error: "cannot compile route GET /user/{id}"}); err != nil {
		t.Fatal(err)
	}
	r = runCLI(cmdNodes, flags...)
	testkit.ContainsAll(t, "nodes with a NACK", r.stdout, "3 (REFUSED 4)", "NACK: node stale refused deployment 4 and still serves 3: cannot compile route GET /user/{id}")
	r = runCLI(cmdStatus, flags...)
	testkit.ContainsAll(t, "status with a NACK", r.stdout, "NACK: node stale refused deployment 4")
	r = runCLI(cmdNodes, with("-o", "json")...)
	var fl admin.Fleet
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &fl) != nil || fl.Active != 4 || len(fl.Nodes) != 2 ||
		fl.Nodes[1].Name != "stale" || fl.Nodes[1].Lag != 1 || fl.Nodes[1].Refused != 4 {
		t.Fatalf("nodes -o json: %+v", r)
	}

	// A wait timeout out of bounds changes nothing.
	r = runCLI(cmdRoute, with("on", "GET /user/{id}", "--wait-timeout", "1h")...)
	if r.err == nil || !strings.Contains(r.err.Error(), "--wait-timeout 1h0m0s") {
		t.Fatalf("route on --wait-timeout 1h: %+v", r)
	}
	if d, _ := st.Active(ctx); d.ID != 4 {
		t.Fatalf("active = %d after a refused --wait-timeout, want 4", d.ID)
	}
}
