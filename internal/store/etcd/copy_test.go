package etcd

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/storetest"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
)

func openBolt(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCopyBoltEtcdBolt: a bolt history copied to etcd and back keeps every
// id, seq, time and the active pointer. It is long enough to take several
// etcd transactions; a copy into a store that holds anything is refused
// and leaves it as it was.
func TestCopyBoltEtcdBolt(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()

	src := openBolt(t, filepath.Join(dir, "src.db"))
	want := storetest.History(150) // 150 + 300 + 2 keys: 5 transactions
	if err := src.Import(ctx, want); err != nil {
		t.Fatal(err)
	}

	mid := open(t, c, "/copy/")
	res, err := deploy.Copy(ctx, src, mid)
	if err != nil {
		t.Fatal(err)
	}
	if res != (deploy.CopyResult{Deployments: 150, AuditEvents: 300, Active: 150}) {
		t.Errorf("Copy = %+v", res)
	}
	got, err := deploy.ReadHistory(ctx, mid)
	if err != nil {
		t.Fatal(err)
	}
	storetest.SameHistory(t, got, want)

	back := openBolt(t, filepath.Join(dir, "back.db"))
	if _, err := deploy.Copy(ctx, mid, back); err != nil {
		t.Fatal(err)
	}
	got, err = deploy.ReadHistory(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	storetest.SameHistory(t, got, want)

	// Into a non-empty destination: refused, nothing changed.
	if _, err := deploy.Copy(ctx, back, mid); !errors.Is(err, deploy.ErrNotEmpty) {
		t.Fatalf("copy into a non-empty etcd prefix: err = %v, want ErrNotEmpty", err)
	}
	if got, err = deploy.ReadHistory(ctx, mid); err != nil {
		t.Fatal(err)
	}
	storetest.SameHistory(t, got, want)
	other := openBolt(t, filepath.Join(dir, "other.db"))
	storetest.Create(t, other, "# other\n")
	if _, err := deploy.Copy(ctx, mid, other); !errors.Is(err, deploy.ErrNotEmpty) {
		t.Fatalf("copy into a non-empty bolt file: err = %v, want ErrNotEmpty", err)
	}
	if h, err := deploy.ReadHistory(ctx, other); err != nil || len(h.Deployments) != 1 || len(h.Audit) != 0 {
		t.Fatalf("the refused destination holds %+v, %v; want its one deployment", h, err)
	}

	// A node applying on the copy continues the history.
	if d := storetest.Create(t, mid, "# next\n"); d.ID != 151 {
		t.Errorf("Create on the copy made deployment %d, want 151", d.ID)
	}
}

// TestImportRemovesWhatItWrote: when a deployment is made under the
// prefix while a long history is being imported, the import fails and
// removes the part it wrote, leaving only what the node made.
func TestImportRemovesWhatItWrote(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 1)
	s := open(t, c, "/race/")
	h := storetest.History(150)
	// Deployment 1 is in the first transaction: a node racing the import
	// from an empty store would get a conflict. An operator writing the
	// active key by hand between two transactions is what is left.
	h.Deployments = h.Deployments[1:]
	cl := client(t, c)
	s.beforeImportTxn = func(n int) {
		if n == 2 {
			if _, err := cl.Put(ctx, s.activeKey(), "1"); err != nil {
				t.Error(err)
			}
		}
	}
	if err := s.Import(ctx, h); err == nil {
		t.Fatal("Import succeeded though the active key was written during it")
	}
	resp, err := cl.Get(ctx, "/race/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != s.activeKey() {
		var keys []string
		for _, kv := range resp.Kvs {
			keys = append(keys, string(kv.Key))
		}
		t.Fatalf("after the failed import the prefix holds %d keys (%.5q…), want the active key alone", len(keys), keys)
	}
}
