package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/deploy"
)

// TestApplyUnchanged: applying the active deployment's config again, as
// re-running `make quickstart` on a kept store does, stores nothing and says
// which deployment is already active. Comments, layout and values spelled as
// their defaults do not count; any setting does.
func TestApplyUnchanged(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	v1 := readFile(t, "v1.yaml")
	mustApply(t, s, "v1.yaml")
	mustApply(t, s, "v2.yaml")
	mustApply(t, s, "v1.yaml") // back to v1's meaning: a change

	same := map[string]string{
		"the same bytes":        string(v1),
		"other comments":        strings.ReplaceAll(string(v1), "# the new users service", "# comment edited"),
		"a default spelled out": strings.Replace(string(v1), "timeouts: {dial: 1s}", "timeouts: {dial: 1s, overall: 60s}", 1),
	}
	for name, src := range same {
		d, err := s.Apply(ctx, []byte(src), "v1.yaml", "ops", "again")
		if !errors.Is(err, deploy.ErrUnchanged) {
			t.Fatalf("%s: apply = %+v, %v; want ErrUnchanged", name, d, err)
		}
		if want := "no change: deployment 3 is already active"; err.Error() != want {
			t.Errorf("%s: error %q, want %q", name, err, want)
		}
		if d.ID != 3 {
			t.Errorf("%s: returned deployment %d, want the active one, 3", name, d.ID)
		}
		wantActive(t, s, 3, name+": nothing stored")
	}
	list, err := s.Store.List(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Errorf("%d deployments stored, want 3", len(list))
	}
	// The local data plane is asked to serve the active deployment (a no-op
	// when it does: a node whose activation failed gets another chance).
	for _, a := range (*acts)[3:] {
		if a.id != 3 {
			t.Errorf("activated %d on an unchanged apply, want 3", a.id)
		}
	}

	// Any real change is a new deployment, route settings included.
	for i, change := range [][2]string{
		{"dial: 1s", "dial: 2s"},
		{"    fallback: legacy\n\n", "    fallback: legacy\n    auto_rollback: {max_error_rate: 0.05}\n\n"},
		{"    fallback: legacy\n\n", "    fallback: legacy\n    circuit_breaker: false\n\n"},
		{"    fallback: legacy\n\n", "    fallback: legacy\n    rate_limit: {rps: 100}\n\n"},
	} {
		src := strings.Replace(string(v1), change[0], change[1], 1)
		if src == string(v1) {
			t.Fatalf("change %d: %q not in v1.yaml", i, change[0])
		}
		want := uint64(4 + 2*i) // each change, then back to v1
		if d, err := s.Apply(ctx, []byte(src), "v1.yaml", "ops", ""); err != nil || d.ID != want {
			t.Fatalf("apply with %q = %+v, %v; want deployment %d", change[1], d, err, want)
		}
		if _, err := s.Apply(ctx, v1, "v1.yaml", "ops", ""); err != nil {
			t.Fatalf("back to v1: %v", err)
		}
	}
}
