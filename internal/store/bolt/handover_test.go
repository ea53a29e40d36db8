package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/turnout/turnout/internal/deploy"
)

// TestHandover walks an upgrade that fails: the old process releases the
// file, the new one opens it and writes, gives it up, and the old process
// reclaims it and sees the write.
func TestHandover(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "turnout.db")
	h, err := OpenHandover(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if _, err := h.Create(ctx, 0, deploy.Deployment{Config: "one", Author: "test"}); err != nil {
		t.Fatal(err)
	}
	if h.CertStorage() == nil {
		t.Fatal("CertStorage of an open store is nil")
	}
	if err := h.Ack(ctx, deploy.Node{Name: "edge-1", Deployment: 1}); err != nil {
		t.Fatal(err)
	}
	watch := h.Watch(ctx)
	if id := <-watch; id != 1 {
		t.Fatalf("watch sent %d, want 1", id)
	}

	if err := h.Release(); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	for range watch {
	} // closed by Release
	if _, ok := <-h.Watch(ctx); ok {
		t.Fatal("Watch of a released store sent an id")
	}
	if h.CertStorage() != nil {
		t.Fatal("CertStorage of a released store is not nil")
	}
	calls := map[string]error{}
	_, calls["Create"] = h.Create(ctx, 1, deploy.Deployment{Config: "lost"})
	calls["Ack"] = h.Ack(ctx, deploy.Node{Name: "edge-1"})
	_, calls["Nodes"] = h.Nodes(ctx)
	_, calls["Get"] = h.Get(ctx, 1)
	_, calls["Active"] = h.Active(ctx)
	_, calls["List"] = h.List(ctx, 0, 10)
	calls["Audit"] = h.Audit(ctx, deploy.AuditEvent{Actor: "test"})
	_, calls["AuditLog"] = h.AuditLog(ctx, 10)
	for name, err := range calls {
		if !errors.Is(err, ErrHandedOver) {
			t.Errorf("%s on a released store: %v, want ErrHandedOver", name, err)
		}
	}

	// The new process holds the lock now.
	next, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Release: %v", err)
	}
	if _, err := next.Create(ctx, 1, deploy.Deployment{Config: "two", Author: "new"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Reclaim(); err == nil {
		t.Fatal("Reclaim succeeded while another holder has the file")
	}
	next.Close()

	if err := h.Reclaim(); err != nil {
		t.Fatal(err)
	}
	if err := h.Reclaim(); err != nil {
		t.Fatalf("second Reclaim: %v", err)
	}
	d, err := h.Active(ctx)
	if err != nil || d.ID != 2 || d.Config != "two" {
		t.Fatalf("Active after Reclaim = %+v, %v", d, err)
	}
	if id := <-h.Watch(ctx); id != 2 {
		t.Fatalf("watch after Reclaim sent %d, want 2", id)
	}
	// The node is still listed: its ack outlived the hand-over.
	if nodes, err := h.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].Name != "edge-1" || nodes[0].Deployment != 1 {
		t.Fatalf("Nodes after Reclaim = %+v, %v", nodes, err)
	}
}
