package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/store/etcd"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
	"github.com/turnout/turnout/internal/testkit"
)

// post sends a mutation and decodes its answer, an Applied or an
// ErrorResponse as the status says.
func post(t *testing.T, url, path string, body any) (int, Applied, ErrorResponse) {
	t.Helper()
	f := &fixture{srv: &httptest.Server{URL: url}}
	resp, data := f.request(t, "POST", path, deployerToken, body)
	var ok Applied
	var bad ErrorResponse
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(data, &ok); err != nil {
			t.Fatalf("%s: %v: %s", path, err, data)
		}
	} else if err := json.Unmarshal(data, &bad); err != nil {
		t.Fatalf("%s: %v: %s", path, err, data)
	}
	return resp.StatusCode, ok, bad
}

func states(p *deploy.Propagation) string {
	if p == nil {
		return "no propagation"
	}
	var out []string
	for _, a := range p.Nodes {
		out = append(out, a.Name+"="+a.State)
	}
	return strings.Join(out, " ")
}

// TestNodesAndWaitBolt: the bolt store is a fleet of one; GET /nodes lists
// the node once it acks, with its lag, and wait=1 returns once it acks
// the new deployment, or 504 when it does not in time. A bad wait changes
// nothing.
func TestNodesAndWaitBolt(t *testing.T) {
	f := newFixture(t, nil)
	c := &Client{BaseURL: f.srv.URL, Token: viewerToken}
	ctx := context.Background()

	fl, err := c.Nodes(ctx)
	if err != nil || fl.Active != 1 || fl.Nodes == nil || len(fl.Nodes) != 0 {
		t.Fatalf("nodes before any ack = %+v, %v; want active 1 and an empty list", fl, err)
	}
	// A node that is behind, as it would be before it follows.
	if err := f.store.Ack(ctx, deploy.Node{Name: "solo", Version: "v1.2.3", Deployment: 0}); err != nil {
		t.Fatal(err)
	}
	fl, err = c.Nodes(ctx)
	if err != nil || len(fl.Nodes) != 1 || fl.Nodes[0].Name != "solo" || fl.Nodes[0].Lag != 1 || fl.Nodes[0].Version != "v1.2.3" {
		t.Fatalf("nodes = %+v, %v; want solo lagging 1", fl, err)
	}

	// Bad waits are refused before anything is stored.
	for _, q := range []string{"wait=2", "wait=1&wait_timeout=1h", "wait=1&wait_timeout=-1s", "wait=1&wait_timeout=5", "wait_timeout=5s"} {
		code, _, e := post(t, f.srv.URL, "/api/v1/deployments?"+q, ApplyRequest{Config: v2})
		if code != http.StatusBadRequest || !strings.Contains(e.Error, "wait") {
			t.Errorf("%s: %d %q, want 400 about wait", q, code, e.Error)
		}
	}
	if f.activeID(t) != 1 {
		t.Fatal("a refused wait stored a deployment")
	}

	// The node does not follow: the wait times out, naming it; the
	// deployment is stored all the same.
	start := time.Now()
	code, _, e := post(t, f.srv.URL, "/api/v1/deployments?wait=1&wait_timeout=200ms", ApplyRequest{Config: v2})
	if code != http.StatusGatewayTimeout || e.Deployment == nil || e.Deployment.ID != 2 || e.Propagation == nil ||
		!slices.Equal(e.Propagation.Waiting, []string{"solo"}) || !strings.Contains(e.Error, "not acked in 200ms by solo") {
		t.Fatalf("apply, solo not following: %d %+v", code, e)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("answered after %v, before the 200ms wait_timeout", waited)
	}
	if f.activeID(t) != 2 {
		t.Fatal("the deployment a wait timed out on is not active")
	}

	// Now it follows.
	deploytest.Acker(t, f.store, "solo", 0, false)
	res, err := (&Client{BaseURL: f.srv.URL, Token: deployerToken}).RouteOffWait(ctx, "GET /user/{id}", "", 5*time.Second)
	p := res.Propagation
	if err != nil || res.ID != 3 || p == nil || p.Deployment != 3 || len(p.Nodes) != 1 || p.Nodes[0].State != deploy.AckDone ||
		p.Nodes[0].PropagationMS == nil || *p.Nodes[0].PropagationMS < 0 || p.Waiting != nil {
		t.Fatalf("route off, waiting: %+v, %v", res, err)
	}
	// An unchanged apply waits for the active deployment: 200, acked.
	active, err := f.store.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err = (&Client{BaseURL: f.srv.URL, Token: deployerToken}).ApplyWait(ctx, ApplyRequest{Config: active.Config}, time.Second)
	if !errors.Is(err, deploy.ErrUnchanged) || res.Propagation == nil || states(res.Propagation) != "solo=acked" {
		t.Fatalf("unchanged apply, waiting: %+v, %v", res, err)
	}
	fl, err = c.Nodes(ctx)
	if err != nil || fl.Active != 3 || len(fl.Nodes) != 1 || fl.Nodes[0].Deployment != 3 || fl.Nodes[0].Lag != 0 || fl.Nodes[0].AppliedAt.IsZero() {
		t.Fatalf("nodes = %+v, %v", fl, err)
	}
	// Without wait, the answer is what it always was: no propagation.
	code, ok, _ := post(t, f.srv.URL, "/api/v1/rollback", RollbackRequest{})
	if code != http.StatusCreated || ok.ID != 4 || ok.Propagation != nil || ok.Unchanged {
		t.Fatalf("rollback: %d %+v", code, ok)
	}
}

// openEtcd opens a store on cluster c, as one node of the fleet would,
// with a short lease so that a node that stops leaves the list quickly.
func openEtcd(t testing.TB, c *etcdtest.Cluster) *etcd.Store {
	t.Helper()
	st, err := etcd.Open(etcd.Options{Endpoints: c.Endpoints(), Prefix: "/fleet/", LeaseTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestWaitFleetEtcd: four nodes on a real 3-member etcd cluster, each on a
// store client of its own. The admin API of node a waits for every live
// node: one that never acks makes the wait time out (504, naming it); once
// it is gone, the wait returns when the slowest acks, with each node's
// propagation; one that refuses the deployment makes it 502, naming it
// and its error.
func TestWaitFleetEtcd(t *testing.T) {
	cluster := etcdtest.Start(t, 3)
	ctx := context.Background()
	a := openEtcd(t, cluster)
	svc := &deploy.Service{Store: a}
	if _, _, err := svc.Seed(ctx, []byte(v1), "turnout.yaml"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_ADMIN_TOKEN", adminToken)
	srv, err := New(Options{Service: svc, Logger: testkit.QuietLogger(),
		Tokens: []config.Token{{Name: "ci", Role: "deployer", SHA256: hash(deployerToken)}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c := &Client{BaseURL: hs.URL, Token: deployerToken}

	deploytest.Acker(t, a, "a", 0, false)
	deploytest.Acker(t, openEtcd(t, cluster), "b", 150*time.Millisecond, false)
	stuck := openEtcd(t, cluster)
	deploytest.Acker(t, stuck, "c", time.Hour, false) // acks deployment 1, then never again

	_, err = c.ApplyWait(ctx, ApplyRequest{Config: v2}, 3*time.Second)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusGatewayTimeout || ae.Propagation == nil ||
		!slices.Equal(ae.Propagation.Waiting, []string{"c"}) || states(ae.Propagation) != "a=acked b=acked c=waiting" ||
		!strings.Contains(ae.Message, "deployment 2 is stored and active, but not acked in 3s by c") {
		t.Fatalf("apply with c stuck: %v (%+v)", err, ae)
	}
	if b := ae.Propagation.Nodes[1]; b.PropagationMS == nil || *b.PropagationMS < 150 {
		t.Errorf("b acked after 150 ms; propagation %+v", b)
	}

	fl, err := c.Nodes(ctx)
	if err != nil || fl.Active != 2 || len(fl.Nodes) != 3 {
		t.Fatalf("nodes = %+v, %v", fl, err)
	}
	if n := fl.Nodes[2]; n.Name != "c" || n.Deployment != 1 || n.Lag != 1 || n.AdminURL != "http://c.test:8081" || n.Version != "test" {
		t.Errorf("node c = %+v, want deployment 1, lag 1", n)
	}

	// c stops: its store revokes its lease, and the wait is for a and b.
	stuck.Close()
	res, err := c.RollbackWait(ctx, 0, "", 10*time.Second)
	if err != nil || res.ID != 3 || states(res.Propagation) != "a=acked b=acked" {
		t.Fatalf("rollback with a and b: %+v, %v", res, err)
	}
	for _, n := range res.Propagation.Nodes {
		if n.PropagationMS == nil || n.Deployment != 3 {
			t.Errorf("node %s: %+v, want deployment 3 with a propagation", n.Name, n)
		}
	}

	// d cannot compile what it is sent: a NACK, with its error.
	deploytest.Acker(t, openEtcd(t, cluster), "d", 0, true)
	_, err = c.RouteOffWait(ctx, "GET /user/{id}", "", 10*time.Second)
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || ae.Deployment == nil || ae.Deployment.ID != 4 ||
		states(ae.Propagation) != "a=acked b=acked d=refused" || !slices.Equal(ae.Propagation.Refused, []string{"d"}) ||
		!strings.Contains(ae.Message, "node d refused it (it still serves deployment 3): route table does not compile") {
		t.Fatalf("route off with d refusing: %v (%+v)", err, ae)
	}
	fl, err = c.Nodes(ctx)
	if err != nil || len(fl.Nodes) != 3 || fl.Nodes[2].Refused != 4 || fl.Nodes[2].Lag != 1 || fl.Nodes[2].Error == "" {
		t.Fatalf("nodes = %+v, %v; want d refusing 4", fl, err)
	}
}

// BenchmarkApplyWait: an apply with wait=1 through the admin API, until
// every node has acked it — on bolt (one node) and on a 3-member etcd
// cluster with three nodes, each on a store client of its own — and the
// same apply without wait=1 on etcd, for what the wait adds. The nodes ack
// as soon as their watch reports the deployment.
func BenchmarkApplyWait(b *testing.B) {
	run := func(b *testing.B, wait time.Duration, st deploy.Store, others ...deploy.Store) {
		svc := &deploy.Service{Store: st}
		if _, _, err := svc.Seed(context.Background(), []byte(v1), "turnout.yaml"); err != nil {
			b.Fatal(err)
		}
		srv, err := New(Options{Service: svc, Logger: testkit.QuietLogger(),
			Tokens: []config.Token{{Name: "ci", Role: "deployer", SHA256: hash(deployerToken)}}})
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		b.Cleanup(hs.Close)
		for i, s := range append([]deploy.Store{st}, others...) {
			deploytest.Acker(b, s, string(rune('a'+i)), 0, false)
		}
		c := &Client{BaseURL: hs.URL, Token: deployerToken}
		configs := [2]string{v2, v1}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := c.ApplyWait(context.Background(), ApplyRequest{Config: configs[i%2]}, wait)
			if err != nil || wait > 0 && (res.Propagation == nil || len(res.Propagation.Nodes) != 1+len(others)) {
				b.Fatalf("apply %d: %+v, %v", i, res.Propagation, err)
			}
		}
	}
	b.Run("bolt", func(b *testing.B) {
		st, _ := deploytest.Seeded(b, v1)
		run(b, 10*time.Second, st)
	})
	b.Run("etcd-3-nodes", func(b *testing.B) {
		c := etcdtest.Start(b, 3)
		run(b, 10*time.Second, openEtcd(b, c), openEtcd(b, c), openEtcd(b, c))
	})
	b.Run("etcd-3-nodes-no-wait", func(b *testing.B) {
		c := etcdtest.Start(b, 3)
		run(b, 0, openEtcd(b, c), openEtcd(b, c), openEtcd(b, c))
	})
}
