package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/deploy"
)

// TestCache: a saved deployment reads back whole; a damaged or missing
// cache is an error, never an empty deployment.
func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "turnout.db.cache")
	if _, err := deploy.LoadCache(path); err == nil {
		t.Fatal("a missing cache loaded")
	}
	d := deploy.Deployment{ID: 7, Config: "routes: []\n", Author: "ops", Cause: "apply", Time: time.Unix(1700000000, 0).UTC()}
	if err := deploy.SaveCache(path, d); err != nil {
		t.Fatal(err)
	}
	got, err := deploy.LoadCache(path)
	if err != nil || got != d {
		t.Fatalf("loaded %+v, %v; want %+v", got, err, d)
	}
	d.ID, d.Config = 8, "# newer\n"
	if err := deploy.SaveCache(path, d); err != nil {
		t.Fatal(err)
	}
	if got, _ := deploy.LoadCache(path); got.ID != 8 {
		t.Fatalf("after a second save: %+v", got)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left beside the cache: %v", ents)
	}
	os.WriteFile(path, []byte(`{"id": 9, "config": "rou`), 0o644)
	if _, err := deploy.LoadCache(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("a truncated cache: %v", err)
	}
}
