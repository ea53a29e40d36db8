// Package deploytest starts a deployment service the way the admin API, the
// CLI and the deploy tests need one: over a real bolt store in a temporary
// directory, seeded with a first configuration.
package deploytest

import (
	"context"
	"path/filepath"
	"testing"

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
