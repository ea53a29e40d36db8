package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/testkit"
)

// TestRouteLocal: `route off --local` through the real admin API, wired to
// a node's local switches the way serve wires them; `status` shows the
// route off locally; `route on --local` clears it; no deployment is made.
func TestRouteLocal(t *testing.T) {
	st, svc := deploytest.Seeded(t, cliConfigV1)
	local, err := deploy.OpenLocalSwitches(deploy.LocalSwitchFile(filepath.Join(t.TempDir(), "turnout.db")))
	if err != nil {
		t.Fatal(err)
	}
	served := func(ctx context.Context) (deploy.Deployment, *config.Config, error) {
		d, err := st.Active(ctx)
		if err != nil {
			return d, nil, err
		}
		cfg, err := config.Parse("active.yaml", []byte(d.Config))
		return d, cfg, err
	}
	flags := adminServer(t, admin.Options{
		Service: svc,
		LocalSwitch: func(ctx context.Context, req deploy.LocalSwitchRequest) (string, error) {
			d, cfg, err := served(ctx)
			if err != nil {
				return "", err
			}
			return local.Set(cfg, d.ID, req)
		},
		Status: func(ctx context.Context) (admin.Status, error) {
			d, cfg, err := served(ctx)
			if err != nil {
				return admin.Status{}, err
			}
			s := admin.Status{Active: admin.Summarize(d), LocalSwitches: local.List()}
			cfg = local.Apply(cfg)
			for _, r := range cfg.Routes {
				s.Routes = append(s.Routes, r.Status(cfg.LegacyOrigin()))
			}
			local.Mark(s.Routes)
			return s, nil
		},
	}, "ops", "admin")

	r := runCLI(cmdRoute, append(flags, "off", "GET", "/user/{id}", "--local", "-m", "etcd down")...)
	if r.err != nil || !strings.Contains(r.stdout, "off on this node only") {
		t.Fatalf("route off --local: %+v", r)
	}
	r = runCLI(cmdStatus, flags...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	testkit.ContainsAll(t, "status", r.stdout, "OFF (local)", "LOCAL SWITCHES: 1 route(s)", "GET /user/{id}  by ops", ": etcd down")

	r = runCLI(cmdRoute, append(flags, "on", "GET /user/{id}", "--local", "-o", "json")...)
	if r.err != nil || !strings.Contains(r.stdout, `"local": true`) {
		t.Fatalf("route on --local: %+v", r)
	}
	r = runCLI(cmdStatus, flags...)
	if r.err != nil || strings.Contains(r.stdout, "local") {
		t.Fatalf("status after route on --local: %+v", r)
	}
	r = runCLI(cmdRoute, append(flags, "on", "GET /user/{id}", "--local")...)
	if r.err == nil || !strings.Contains(r.err.Error(), "not switched off on this node") {
		t.Fatalf("route on --local of no switch: %+v", r)
	}
	if h, err := deploy.ReadHistory(context.Background(), st); err != nil || len(h.Deployments) != 1 {
		t.Fatalf("history after local switches: %d deployments, %v; want the seed alone", len(h.Deployments), err)
	}
}
