package deploy_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

type activation struct {
	id  uint64
	cfg *config.Config
}

func newService(t *testing.T) (*deploy.Service, *[]activation) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "turnout.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var acts []activation
	s := &deploy.Service{
		Store: st,
		Activate: func(ctx context.Context, d deploy.Deployment, cfg *config.Config) error {
			acts = append(acts, activation{d.ID, cfg})
			return nil
		},
		Now: func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) },
	}
	return s, &acts
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustApply applies testdata/file, with the message "msg file".
func mustApply(t *testing.T, s *deploy.Service, file string) deploy.Deployment {
	t.Helper()
	return mustApplySource(t, s, file, string(readFile(t, file)), "msg "+file)
}

// mustApplySource applies src as the file name, by ops with msg.
func mustApplySource(t *testing.T, s *deploy.Service, name, src, msg string) deploy.Deployment {
	t.Helper()
	d, err := s.Apply(context.Background(), []byte(src), name, "ops", msg)
	if err != nil {
		t.Fatalf("apply %s: %v", name, err)
	}
	return d
}

// wantActive fails t unless the active deployment is id; why says what
// the test expects of it.
func wantActive(t *testing.T, s *deploy.Service, id uint64, why string) {
	t.Helper()
	d, err := s.Store.Active(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != id {
		t.Fatalf("active deployment %d, want %d (%s)", d.ID, id, why)
	}
}

func TestApply(t *testing.T) {
	s, acts := newService(t)
	d := mustApply(t, s, "v1.yaml")
	if d.ID != 1 || d.Cause != "apply" || d.Author != "ops" || d.Message != "msg v1.yaml" || d.Config != string(readFile(t, "v1.yaml")) {
		t.Fatalf("deployment = %+v", d)
	}
	if !d.Time.Equal(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("time = %v", d.Time)
	}
	if len(*acts) != 1 || (*acts)[0].id != 1 || len((*acts)[0].cfg.Routes) != 3 {
		t.Fatalf("activations = %+v", *acts)
	}
}

func TestApplyInvalidChangesNothing(t *testing.T) {
	s, acts := newService(t)
	mustApply(t, s, "v1.yaml")
	_, err := s.Apply(context.Background(), readFile(t, "invalid.yaml"), "invalid.yaml", "ops", "")
	var list config.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v (%T), want config.ErrorList", err, err)
	}
	if len(list) != 3 {
		t.Fatalf("got %d errors, want 3:\n%v", len(list), err)
	}
	for _, e := range list {
		if e.Pos.File != "invalid.yaml" || e.Pos.Line == 0 || e.Pos.Column == 0 {
			t.Errorf("error without full position: %v", e)
		}
	}
	wantActive(t, s, 1, "after an invalid apply")
	if len(*acts) != 1 {
		t.Fatalf("invalid apply activated something")
	}
}

func TestActivateFailureKeepsRecord(t *testing.T) {
	s, _ := newService(t)
	s.Activate = func(context.Context, deploy.Deployment, *config.Config) error { return errors.New("boom") }
	d, err := s.Apply(context.Background(), readFile(t, "v1.yaml"), "v1.yaml", "ops", "")
	var ae *deploy.ActivateError
	if !errors.As(err, &ae) || ae.Deployment.ID != 1 || d.ID != 1 {
		t.Fatalf("err = %v, d = %+v", err, d)
	}
	wantActive(t, s, 1, "the stored deployment stays the record")
}

func TestRollback(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	v1 := mustApply(t, s, "v1.yaml")
	v2 := mustApply(t, s, "v2.yaml")

	steps := []struct {
		to        uint64
		wantID    uint64
		wantCause string
		wantCfg   string
	}{
		{0, 3, "rollback to 1", v1.Config}, // previous
		{0, 4, "rollback to 2", v2.Config}, // twice toggles back
		{1, 5, "rollback to 1", v1.Config}, // --to N
	}
	for _, st := range steps {
		d, err := s.Rollback(ctx, st.to, "ops", "why")
		if err != nil {
			t.Fatalf("rollback %d: %v", st.to, err)
		}
		if d.ID != st.wantID || d.Cause != st.wantCause || d.Config != st.wantCfg || d.Message != "why" {
			t.Fatalf("rollback %d = id %d cause %q", st.to, d.ID, d.Cause)
		}
		wantActive(t, s, st.wantID, fmt.Sprintf("after rollback %d", st.to))
		if last := (*acts)[len(*acts)-1]; last.id != st.wantID {
			t.Fatalf("activated %d, want %d", last.id, st.wantID)
		}
	}

	if _, err := s.Rollback(ctx, 99, "ops", ""); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("rollback to 99: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Rollback(ctx, 5, "ops", ""); !errors.Is(err, deploy.ErrConflict) {
		t.Fatalf("rollback to active: err = %v, want ErrConflict", err)
	}
	wantActive(t, s, 5, "failed rollbacks change nothing")
}

func TestRollbackNothingBefore(t *testing.T) {
	s, _ := newService(t)
	mustApply(t, s, "v1.yaml")
	if _, err := s.Rollback(context.Background(), 0, "ops", ""); !errors.Is(err, deploy.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestRouteOffOnRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	orig := mustApply(t, s, "v1.yaml")

	// Spacing and {x+} are normalised before comparing.
	off, err := s.RouteSwitch(ctx, "GET   /user/{id}", true, "ops", "users broken")
	if err != nil {
		t.Fatal(err)
	}
	if off.Cause != "route off GET /user/{id}" || off.Author != "ops" {
		t.Fatalf("cause = %q", off.Cause)
	}
	// Exactly one line added, right after the match; comments and the other
	// routes untouched.
	wantOff := strings.Replace(orig.Config, "  - match: \"GET /user/{id}\"\n", "  - match: \"GET /user/{id}\"\n    off: true\n", 1)
	if off.Config != wantOff {
		t.Fatalf("route off config:\n%s\nwant:\n%s", off.Config, wantOff)
	}
	cfg := (*acts)[len(*acts)-1].cfg
	if !cfg.Routes[0].Off || !cfg.Routes[1].Off || cfg.Routes[2].Off {
		t.Fatalf("activated routes off = %v %v %v", cfg.Routes[0].Off, cfg.Routes[1].Off, cfg.Routes[2].Off)
	}

	if _, err := s.RouteSwitch(ctx, "GET /user/{id}", true, "ops", ""); !errors.Is(err, deploy.ErrConflict) {
		t.Fatalf("second off: err = %v, want ErrConflict", err)
	}

	on, err := s.RouteSwitch(ctx, "GET /user/{id}", false, "ops", "fixed")
	if err != nil {
		t.Fatal(err)
	}
	if on.Cause != "route on GET /user/{id}" || on.Config != orig.Config {
		t.Fatalf("route on: cause %q, config:\n%s", on.Cause, on.Config)
	}

	// A route written off in the file is switched on by deleting the line
	// (its comment goes with it).
	on2, err := s.RouteSwitch(ctx, "POST /orders", false, "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	wantOn2 := strings.Replace(orig.Config, "    off: true\n", "", 1)
	if on2.Config != wantOn2 {
		t.Fatalf("route on POST /orders:\n%s", on2.Config)
	}
}

// TestRouteOffNowhereElse: a route whose target is where switching it off
// would send it (the legacy origin, or its own fallback) cannot be switched
// off: that would record a deployment that changes nothing.
func TestRouteOffNowhereElse(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	mustApply(t, s, "v1.yaml")
	_, err := s.RouteSwitch(ctx, "/", true, "ops", "")
	if !errors.Is(err, deploy.ErrConflict) || !strings.Contains(err.Error(), "nowhere else") || !strings.Contains(err.Error(), `"legacy"`) {
		t.Fatalf("route off /: err = %v, want ErrConflict saying it has nowhere else to go", err)
	}
	wantActive(t, s, 1, "nothing recorded")
}

func TestRouteSwitchUnknown(t *testing.T) {
	s, _ := newService(t)
	mustApply(t, s, "v1.yaml")
	_, err := s.RouteSwitch(context.Background(), "GET /nope", true, "ops", "")
	if !errors.Is(err, deploy.ErrUnknownRoute) {
		t.Fatalf("err = %v, want ErrUnknownRoute", err)
	}
	testkit.ContainsAll(t, "the error listing the routes", err.Error(), `"GET /user/{id}"`, `"POST /orders"`, `"/"`)
	wantActive(t, s, 1, "nothing recorded")
}

func TestRouteSwitchFlowStyle(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	src := "# flow routes\norigins:\n  legacy: {url: \"http://127.0.0.1:9000\"}\n  users: {url: \"http://127.0.0.1:9100\"}\nroutes:\n  - {match: \"GET /user/{id+}\", origin: users, fallback: legacy} # moved\n  - {match: /, origin: legacy}\n"
	mustApplySource(t, s, "flow.yaml", src, "")
	d, err := s.RouteSwitch(ctx, "GET /user/{id...}", true, "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	if !(*acts)[len(*acts)-1].cfg.Routes[0].Off {
		t.Fatal("route not off")
	}
	testkit.ContainsAll(t, "config (comments kept)", d.Config, "# flow routes", "# moved")
	d, err = s.RouteSwitch(ctx, "GET /user/{id+}", false, "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	if (*acts)[len(*acts)-1].cfg.Routes[0].Off || strings.Contains(d.Config, "off") {
		t.Fatalf("route still off:\n%s", d.Config)
	}
}

func TestRouteSwitchAnchorRefused(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	src := "origins:\n  legacy: {url: \"http://127.0.0.1:9000\"}\n  users: {url: \"http://127.0.0.1:9100\"}\nroutes:\n  - &u {match: \"GET /users/{id}\", origin: users, fallback: legacy}\n  - <<: *u\n    match: \"PUT /users/{id}\"\n  - {match: /, origin: legacy}\n"
	mustApplySource(t, s, "anchors.yaml", src, "")
	if _, err := s.RouteSwitch(ctx, "GET /users/{id}", true, "ops", ""); err == nil || !strings.Contains(err.Error(), "anchor") {
		t.Fatalf("err = %v, want refusal for an anchored route", err)
	}
	// The route that merges it can be switched on its own.
	d, err := s.RouteSwitch(ctx, "PUT /users/{id}", true, "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Config, "    match: \"PUT /users/{id}\"\n    off: true\n") {
		t.Fatalf("config:\n%s", d.Config)
	}
}

func TestSeed(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	d, created, err := s.Seed(ctx, readFile(t, "v1.yaml"), "turnout.yaml")
	if err != nil || !created || d.ID != 1 || d.Cause != "seed from turnout.yaml" {
		t.Fatalf("seed = %+v, %v, %v", d, created, err)
	}
	mustApply(t, s, "v2.yaml")
	d, created, err = s.Seed(ctx, readFile(t, "v1.yaml"), "turnout.yaml")
	if err != nil || created || d.ID != 2 {
		t.Fatalf("second seed = %+v, %v, %v", d, created, err)
	}
	if len(*acts) != 1 {
		t.Fatalf("Seed activated: %+v", *acts)
	}

	s2, _ := newService(t)
	if _, _, err := s2.Seed(ctx, readFile(t, "invalid.yaml"), "invalid.yaml"); err == nil {
		t.Fatal("seeding an invalid file succeeded")
	}
}

func TestDiffGolden(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	mustApply(t, s, "v1.yaml")
	mustApply(t, s, "v2.yaml")
	r, err := s.Diff(ctx, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Text()
	golden := filepath.Join("testdata", "diff.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("diff text differs from %s (run with -update):\n%s", golden, got)
	}

	// Defaults: b = active, a = b-1.
	r2, err := s.Diff(ctx, 0, 0)
	if err != nil || r2.A != 1 || r2.B != 2 {
		t.Fatalf("Diff(0,0) = %d→%d, %v", r2.A, r2.B, err)
	}
	same, err := s.Diff(ctx, 2, 2)
	if err != nil || !same.Empty() || same.Unified != "" {
		t.Fatalf("Diff(2,2) = %+v, %v", same, err)
	}
	if _, err := s.Diff(ctx, 1, 7); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("Diff(1,7) err = %v", err)
	}
}

// TestDiffSeesEverySetting: a diff names every route setting that changed
// (auto_rollback, rate_limit, payload, …), not only target, fallback and
// timeout, and prints a setting held by pointer (queue_size) by value.
func TestDiffSeesEverySetting(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	cfg := func(queue, rate int, maxErr string) []byte {
		return []byte(fmt.Sprintf(`origins:
  legacy: {url: http://127.0.0.1:9000}
functions:
  f: {handler: ./f, concurrency: 4, queue_size: %d}
routes:
  - match: "GET /x"
    function: f
    fallback: legacy
    payload: "1.0"
    rate_limit: {rps: %d, burst: 20}
    auto_rollback: {max_error_rate: %s, window: 30s}
  - {match: /, origin: legacy}
`, queue, rate, maxErr))
	}
	if _, err := s.Apply(ctx, cfg(3, 10, "0.5"), "a.yaml", "ops", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, cfg(5, 20, "0.2"), "b.yaml", "ops", "b"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Diff(ctx, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	text := r.Text()
	testkit.ContainsAll(t, "diff", text,
		"~ GET /x (changed)",
		"rate_limit.rps: 10 → 20",
		"auto_rollback.max_error_rate: 0.5 → 0.2",
		"functions[f].queue_size: 3 → 5")
	if strings.Contains(text, "0x") {
		t.Errorf("diff prints a pointer:\n%s", text)
	}
}
