package deploy_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/testkit"
)

// dataPlane stands in for the gateway: it serves the highest deployment
// applied, as gateway.Apply does, and counts the swaps.
type dataPlane struct {
	mu      sync.Mutex
	serving uint64
	swaps   []uint64
}

func (p *dataPlane) Apply(id uint64, _ *config.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id <= p.serving {
		return nil
	}
	p.serving = id
	p.swaps = append(p.swaps, id)
	return nil
}

func (p *dataPlane) Serving() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serving
}

func (p *dataPlane) Swaps() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint64(nil), p.swaps...)
}

// TestFollower: a node serves what its store says is active, whether this
// node made the deployment (an echo, not swapped again), another writer on
// the store did, or the deployment cannot be served (logged, the previous
// one stays).
func TestFollower(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "turnout.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dp := &dataPlane{}
	var logs testkit.SyncBuffer
	var servedMu sync.Mutex
	var served []uint64
	f := &deploy.Follower{Store: st, Apply: dp.Apply, Serving: dp.Serving, Log: slog.New(slog.NewJSONHandler(&logs, nil)),
		Node: deploy.Node{Name: "edge-1", AdminURL: "http://127.0.0.1:9001", Version: "test"},
		Served: func(d deploy.Deployment, _ time.Time) {
			servedMu.Lock()
			served = append(served, d.ID)
			servedMu.Unlock()
		}}
	local := &deploy.Service{Store: st, Activate: func(_ context.Context, d deploy.Deployment, c *config.Config) error { return f.Serve(d, c) }}
	// ack is this node's record in the store.
	ack := func() deploy.Node {
		t.Helper()
		nodes, err := st.Nodes(ctx)
		if err != nil || len(nodes) != 1 {
			t.Fatalf("nodes %v, %v; want this one", nodes, err)
		}
		return nodes[0]
	}
	elsewhere := &deploy.Service{Store: st} // another process on the same store

	first, _, err := local.Seed(ctx, readFile(t, "v1.yaml"), "v1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Activate(first); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()

	if _, err := local.Apply(ctx, readFile(t, "v2.yaml"), "v2.yaml", "ops", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := elsewhere.Rollback(ctx, 1, "ops", ""); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "deployment 3 from another writer", func() bool { return dp.Serving() == 3 })
	testkit.Eventually(t, 5*time.Second, "deployment 3 acknowledged", func() bool { return ack().Deployment == 3 })
	if n := ack(); n.Name != "edge-1" || n.AdminURL != "http://127.0.0.1:9001" || n.Version != "test" || n.AppliedAt.IsZero() || n.Refused != 0 {
		t.Fatalf("ack %+v", n)
	}

	// A config that does not parse never reaches a Service, but a store is
	// not obliged to hold only those.
	if _, err := st.Create(ctx, 3, deploy.Deployment{Config: "routes: [", Author: "other"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the refusal logged", func() bool { return strings.Contains(logs.String(), "cannot activate deployment") })
	if got := dp.Serving(); got != 3 {
		t.Fatalf("serving %d after an unparsable deployment, want 3", got)
	}
	if !strings.Contains(logs.String(), `"deployment":4`) {
		t.Fatalf("log does not name deployment 4:\n%s", logs.String())
	}
	if n := ack(); n.Deployment != 3 || n.Refused != 4 || !strings.Contains(n.Error, "does not parse") {
		t.Fatalf("after an unparsable deployment the ack is %+v; want deployment 3, refused 4 with the parse error", n)
	}
	if _, err := elsewhere.Rollback(ctx, 2, "ops", ""); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "deployment 5", func() bool { return dp.Serving() == 5 })
	testkit.Eventually(t, 5*time.Second, "deployment 5 acknowledged", func() bool { n := ack(); return n.Deployment == 5 && n.Refused == 0 && n.Error == "" })

	cancel()
	testkit.Receive(t, done, 5*time.Second, "Run to return when its context ended")
	want := []uint64{1, 2, 3, 5}
	if got := dp.Swaps(); !equal(got, want) {
		t.Fatalf("swaps = %v, want %v", got, want)
	}
	servedMu.Lock()
	defer servedMu.Unlock()
	if !equal(served, want) {
		t.Fatalf("Served told of %v, want %v", served, want)
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFollowerStopsWhenHandedOver: Run returns when the store is handed to
// a new process in an upgrade, and a new Run after the store is taken back
// catches up with what the new process did meanwhile.
func TestFollowerStopsWhenHandedOver(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "turnout.db")
	h, err := bolt.OpenHandover(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dp := &dataPlane{}
	f := &deploy.Follower{Store: h, Apply: dp.Apply, Serving: dp.Serving}
	if _, _, err := (&deploy.Service{Store: h}).Seed(ctx, readFile(t, "v1.yaml"), "v1.yaml"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	testkit.Eventually(t, 5*time.Second, "deployment 1", func() bool { return dp.Serving() == 1 })

	if err := h.Release(); err != nil {
		t.Fatal(err)
	}
	testkit.Receive(t, done, 5*time.Second, "Run to return when the store was handed over")
	next, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&deploy.Service{Store: next}).Apply(ctx, readFile(t, "v2.yaml"), "v2.yaml", "ops", ""); err != nil {
		t.Fatal(err)
	}
	next.Close()
	if err := h.Reclaim(); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go f.Run(rctx)
	testkit.Eventually(t, 5*time.Second, "deployment 2 after reclaim", func() bool { return dp.Serving() == 2 })
}

func TestFollowerActivateInvalid(t *testing.T) {
	dp := &dataPlane{}
	f := &deploy.Follower{Apply: dp.Apply, Serving: dp.Serving}
	err := f.Activate(deploy.Deployment{ID: 7, Config: "routes: ["})
	if err == nil || !strings.Contains(err.Error(), "deployment 7 does not parse") {
		t.Fatalf("err = %v", err)
	}
	if dp.Serving() != 0 {
		t.Fatal("an unparsable deployment was applied")
	}
}

// TestAutoRollbackAudited: an auto-rollback has no admin request to record
// it, so the Service does, made or failed.
func TestAutoRollbackAudited(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	mustApply(t, s, "v1.yaml")
	d, err := s.AutoRollback(ctx, "GET /user/{id}", "error rate 60% > 50%")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AutoRollback(ctx, "GET /nope", "p99 3s > 1s"); err == nil {
		t.Fatal("auto-rollback of an unknown route succeeded")
	}
	log, err := s.Store.AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 {
		t.Fatalf("audit log = %+v, want 2 events", log)
	}
	failed, made := log[0], log[1]
	if made.Actor != "turnout" || made.Action != "auto-rollback" || made.Result != "ok" ||
		made.Deployment != d.ID || made.Detail != "auto-rollback: error rate 60% > 50%" {
		t.Errorf("made: %+v", made)
	}
	if failed.Action != "auto-rollback" || failed.Result != "error" || failed.Deployment != 0 ||
		!strings.HasPrefix(failed.Detail, "auto-rollback GET /nope: p99 3s > 1s: ") {
		t.Errorf("failed: %+v", failed)
	}
}

func TestAuditBreaker(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	if err := s.AuditBreaker(ctx, "GET /user/{id}", "closed", "open"); err != nil {
		t.Fatal(err)
	}
	log, err := s.Store.AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.AuditEvent{Actor: "turnout", Action: "breaker.open", Result: "ok", Detail: "route GET /user/{id}: circuit breaker closed → open"}
	if len(log) != 1 {
		t.Fatalf("audit log = %+v", log)
	}
	got := log[0]
	got.Seq, got.Time = 0, time.Time{}
	if got != want {
		t.Fatalf("event = %+v, want %+v", got, want)
	}
}
