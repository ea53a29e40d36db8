package deploy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/testkit"
)

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	c, err := config.Parse("turnout.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openLocal(t *testing.T, path string) *deploy.LocalSwitches {
	t.Helper()
	l, err := deploy.OpenLocalSwitches(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// offRoutes returns the matches of cfg's routes that are off.
func offRoutes(cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Routes {
		if r.Off {
			out = append(out, r.Match)
		}
	}
	return out
}

// TestLocalSwitches: a route switched off locally is off in what Apply
// gives the node to compile (and not in the deployment's config), after a
// restart too, until it is cleared; refusals are those of route off, change
// nothing and are audited like the rest.
func TestLocalSwitches(t *testing.T) {
	path := deploy.LocalSwitchFile(filepath.Join(t.TempDir(), "turnout.db"))
	served := parse(t, testkit.RoutingConfig)
	l := openLocal(t, path)
	if got := l.Apply(served); got != served || len(l.List()) != 0 {
		t.Fatalf("a node without local switches: Apply changed the config or List = %v", l.List())
	}

	who := deploy.LocalSwitchRequest{Off: true, Actor: "ops", Remote: "127.0.0.1:5", Message: "etcd has no quorum"}
	req := who
	req.Match = "GET  /user/{id}" // spaced differently: compared canonical
	detail, err := l.Set(served, 7, req)
	if err != nil || !strings.Contains(detail, "off on this node only") {
		t.Fatalf("Set off = %q, %v", detail, err)
	}
	for _, bad := range []struct {
		match string
		off   bool
		want  error
	}{
		{"GET /user/{id}", true, deploy.ErrConflict}, // already off here
		{"GET /nope", true, deploy.ErrUnknownRoute},  // not a route
		{"/", true, deploy.ErrConflict},              // nowhere else to go
		{"", true, deploy.ErrInvalid},                // no match
		{"/", false, deploy.ErrConflict},             // nothing to clear
	} {
		req := who
		req.Match, req.Off = bad.match, bad.off
		if _, err := l.Set(served, 7, req); !errors.Is(err, bad.want) {
			t.Errorf("Set(%q, off %v): err = %v, want %v", bad.match, bad.off, err, bad.want)
		}
	}

	check := func(l *deploy.LocalSwitches) {
		t.Helper()
		got := l.Apply(served)
		if off := offRoutes(got); len(off) != 1 || off[0] != "GET /user/{id}" {
			t.Errorf("Apply: routes off = %v, want GET /user/{id}", off)
		}
		if off := offRoutes(served); len(off) != 0 {
			t.Errorf("Apply changed the served config: routes off = %v", off)
		}
		if list := l.List(); len(list) != 1 || list[0].Match != "GET /user/{id}" || list[0].Actor != "ops" || list[0].Message != "etcd has no quorum" || list[0].Time.IsZero() {
			t.Errorf("List = %+v", list)
		}
		st := []turnout.RouteStatus{{Match: "GET /user/{id}", Off: true}, {Match: "/"}}
		l.Mark(st)
		if !st[0].Local || st[1].Local {
			t.Errorf("Mark: %+v", st)
		}
	}
	check(l)
	restarted := openLocal(t, path) // a restart of the node
	check(restarted)

	// The route gone from a later deployment: left out, listed as stale, kept.
	other := parse(t, "origins:\n  legacy:\n    url: http://127.0.0.1:9000\nroutes:\n  - match: /\n    origin: legacy\n")
	if got := restarted.Apply(other); got != other {
		t.Error("Apply changed a config without the switched route")
	}
	if stale := restarted.Stale(other); len(stale) != 1 || stale[0] != "GET /user/{id}" {
		t.Errorf("Stale = %v", stale)
	}

	req.Off = false
	if _, err := restarted.Set(served, 8, req); err != nil {
		t.Fatal(err)
	}
	if got := restarted.Apply(served); got != served || len(openLocal(t, path).List()) != 0 {
		t.Error("route on --local did not clear the switch")
	}

	// Every attempt is in the local audit, seqs continuing across the restart.
	log, err := restarted.AuditLog(0)
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for i, e := range log {
		if e.Seq != uint64(len(log)-i) || e.Actor != "ops" || e.Remote != "127.0.0.1:5" || e.Time.IsZero() {
			t.Errorf("audit event %d = %+v", i, e)
		}
		results = append(results, e.Action+" "+e.Result)
	}
	want := []string{"route.on.local ok", "route.on.local invalid", "route.off.local invalid", "route.off.local invalid",
		"route.off.local invalid", "route.off.local invalid", "route.off.local ok"}
	if strings.Join(results, ", ") != strings.Join(want, ", ") {
		t.Errorf("local audit, newest first:\n got %v\nwant %v", results, want)
	}
	if !strings.Contains(log[len(log)-1].Detail, "etcd has no quorum") {
		t.Errorf("the audit of the switch does not hold its message: %q", log[len(log)-1].Detail)
	}
}

// TestLocalSwitchesBadFile: a switches file that does not parse stops the
// node from starting rather than serving the route again.
func TestLocalSwitchesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "turnout.db.local.json")
	if err := os.WriteFile(path, []byte(`{"routes": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := deploy.OpenLocalSwitches(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenLocalSwitches of a broken file: err = %v", err)
	}
}
