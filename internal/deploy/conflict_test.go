package deploy_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
)

// TestSeedTogether: nodes of a fleet starting at once on an empty store all
// seed; one deployment is stored, and every node serves it.
func TestSeedTogether(t *testing.T) {
	ctx := context.Background()
	first, _ := newService(t)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		seeded int
	)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := &deploy.Service{Store: first.Store} // another node, the same store
			d, created, err := node.Seed(ctx, readFile(t, "v1.yaml"), "turnout.yaml")
			if err != nil || d.ID != 1 {
				t.Errorf("seed = deployment %d, %v; want 1", d.ID, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if created {
				seeded++
			}
		}()
	}
	wg.Wait()
	if seeded != 1 {
		t.Fatalf("%d nodes say they seeded the store, want 1", seeded)
	}
	if l, err := first.Store.List(ctx, 0, 0); err != nil || len(l) != 1 {
		t.Fatalf("history = %d deployments, %v; want 1", len(l), err)
	}
}

// racedStore lets another node create a deployment between this node's
// read of the active deployment and its Create.
type racedStore struct {
	deploy.Store
	other func()
	once  sync.Once
}

func (s *racedStore) Active(ctx context.Context) (deploy.Deployment, error) {
	d, err := s.Store.Active(ctx)
	s.once.Do(s.other)
	return d, err
}

// TestApplyLosesRace: two operators apply on two nodes at once; the apply
// based on a deployment the other node has since replaced stores nothing,
// activates nothing, and names the winner.
func TestApplyLosesRace(t *testing.T) {
	ctx := context.Background()
	other, _ := newService(t)
	mustApply(t, other, "v1.yaml")
	var activated int
	node := &deploy.Service{
		Store: &racedStore{Store: other.Store, other: func() {
			if _, err := other.Apply(ctx, readFile(t, "v2.yaml"), "v2.yaml", "alice", "first"); err != nil {
				t.Error(err)
			}
		}},
		Activate: func(context.Context, deploy.Deployment, *config.Config) error { activated++; return nil },
	}
	_, err := node.Apply(ctx, readFile(t, "v2.yaml"), "v2.yaml", "bob", "second")
	var conflict *deploy.ConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, deploy.ErrConflict) {
		t.Fatalf("apply after another node's: err = %v, want a *deploy.ConflictError", err)
	}
	if conflict.Active.ID != 2 || conflict.Active.Author != "alice" || !strings.Contains(err.Error(), "deployment 2 (apply by alice") {
		t.Fatalf("conflict = %v, want it to name deployment 2 by alice", err)
	}
	t.Logf("the loser is told: %v", err)
	if activated != 0 {
		t.Fatalf("the losing apply activated %d deployments", activated)
	}
	if l, err := other.Store.List(ctx, 0, 0); err != nil || len(l) != 2 {
		t.Fatalf("history = %d deployments, %v; want the 2 of the winner", len(l), err)
	}
}

// TestAutoRollbackTogether: every node of a fleet judges a failing route,
// so several raise its automatic rollback at once. One deployment switches
// it off; the other nodes are told that deployment, with no error.
func TestAutoRollbackTogether(t *testing.T) {
	ctx := context.Background()
	first, _ := newService(t)
	before := mustApply(t, first, "v1.yaml")
	const nodes = 6
	got := make([]deploy.Deployment, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := &deploy.Service{Store: first.Store} // another node, the same store
			d, err := node.AutoRollback(ctx, "GET /user/{id}", "error rate 60% > 50%")
			if err != nil {
				t.Errorf("node %d: %v", i, err)
			}
			got[i] = d
		}()
	}
	wg.Wait()
	for i, d := range got {
		if d.ID != before.ID+1 {
			t.Errorf("node %d was told deployment %d, want %d", i, d.ID, before.ID+1)
		}
	}
	if l, err := first.Store.List(ctx, 0, 0); err != nil || len(l) != 2 {
		t.Fatalf("history = %d deployments, %v; want the apply and one auto-rollback", len(l), err)
	}
	log, _ := first.Store.AuditLog(ctx, 20)
	for _, e := range log {
		if e.Result != "ok" {
			t.Errorf("audit: %+v", e)
		}
	}
}
