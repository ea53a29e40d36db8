// Package deploytest starts a deployment service the way the admin API, the
// CLI and the deploy tests need one: over a real bolt store in a temporary
// directory, seeded with a first configuration; and stands in for a node of
// a fleet acking what it serves.
package deploytest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/store/bolt"
)

// Seeded opens a bolt store in t's temporary directory (closed when the
// test ends) and seeds it with config as turnout.yaml.
func Seeded(t testing.TB, config string) (*bolt.Store, *deploy.Service) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "turnout.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := &deploy.Service{Store: st}
	if _, _, err := svc.Seed(context.Background(), []byte(config), "turnout.yaml"); err != nil {
		t.Fatal(err)
	}
	return st, svc
}

// Acker stands in for a node's follower: it acks at once, as node name,
// the deployment active on st, then watches st and acks every later one
// delay after seeing it — or refuses it (a NACK) when refuse is set. It
// stops when the test ends.
func Acker(t testing.TB, st deploy.Store, name string, delay time.Duration, refuse bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	active, err := st.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := deploy.Node{Name: name, AdminURL: "http://" + name + ".test:8081", Version: "test", Deployment: active.ID, AppliedAt: time.Now()}
	if err := st.Ack(ctx, n); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(done)
		for id := range st.Watch(ctx) {
			if id <= n.Deployment || id <= n.Refused {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			if refuse {
				n.Refused, n.Error = id, "route table does not compile"
			} else {
				n.Deployment, n.AppliedAt, n.Refused, n.Error = id, time.Now(), 0, ""
			}
			if err := st.Ack(ctx, n); err != nil && ctx.Err() == nil {
				t.Errorf("node %s: ack %d: %v", name, id, err)
			}
		}
	}()
}
