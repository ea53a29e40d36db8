package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
)

// TestLocalSwitch: ?local=1 on a route switch reaches Options.LocalSwitch
// for an admin only, stores no deployment and writes nothing to the
// store's audit; local=0 is a deployment as before; without the hook, 501.
func TestLocalSwitch(t *testing.T) {
	local, err := deploy.OpenLocalSwitches(filepath.Join(t.TempDir(), "turnout.db.local.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f *fixture
	f = newFixture(t, func(o *Options) {
		o.LocalSwitch = func(ctx context.Context, req deploy.LocalSwitchRequest) (string, error) {
			d, err := f.store.Active(ctx) // the test's node serves the active deployment
			if err != nil {
				return "", err
			}
			cfg, err := config.Parse("active.yaml", []byte(d.Config))
			if err != nil {
				return "", err
			}
			return local.Set(cfg, d.ID, req)
		}
	})
	active := f.activeID(t)
	auditLen := func() int {
		evs, err := f.store.AuditLog(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	audited := auditLen()

	body := RouteRequest{Match: "GET /user/{id}", Message: "etcd down"}
	if resp, _ := f.request(t, "POST", "/api/v1/routes/off?local=1", deployerToken, body); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("deployer: status %d, want 403", resp.StatusCode)
	}
	audited++ // the refusal
	resp, data := f.request(t, "POST", "/api/v1/routes/off?local=1", adminToken, body)
	var a LocalSwitchAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &a) != nil || !a.Local || !a.Off || !strings.Contains(a.Detail, "off on this node only") {
		t.Fatalf("admin: %d %s", resp.StatusCode, data)
	}
	if l := local.List(); len(l) != 1 || l[0].Actor != "ops" || l[0].Message != "etcd down" {
		t.Errorf("local switches = %+v", l)
	}
	if resp, data := f.request(t, "POST", "/api/v1/routes/off?local=1", adminToken, RouteRequest{Match: "GET /nope"}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route: %d %s, want 404", resp.StatusCode, data)
	}
	if resp, _ := f.request(t, "POST", "/api/v1/routes/off?local=maybe", adminToken, body); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("local=maybe: status %d, want 400", resp.StatusCode)
	}
	if got := f.activeID(t); got != active {
		t.Errorf("a local switch made deployment %d", got)
	}
	if n := auditLen(); n != audited {
		t.Errorf("the store's audit has %d events, want %d: local switches go to the local audit", n, audited)
	}

	// The client, clearing it.
	c := &Client{BaseURL: f.srv.URL, Token: adminToken}
	if a, err := c.RouteLocal(context.Background(), "GET /user/{id}", false, ""); err != nil || a.Off || !a.Local {
		t.Fatalf("RouteLocal on = %+v, %v", a, err)
	}
	if len(local.List()) != 0 {
		t.Error("route on --local left the switch")
	}
	var ae *APIError
	if _, err := c.RouteLocal(context.Background(), "GET /user/{id}", false, ""); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("clearing no switch: %v, want 409", err)
	}

	// local=0 is a deployment.
	if resp, data := f.request(t, "POST", "/api/v1/routes/off?local=0", adminToken, body); resp.StatusCode != http.StatusCreated {
		t.Fatalf("local=0: %d %s, want 201", resp.StatusCode, data)
	}
	if f.activeID(t) != active+1 {
		t.Error("local=0 made no deployment")
	}

	plain := newFixture(t, nil)
	if resp, data := plain.request(t, "POST", "/api/v1/routes/off?local=1", adminToken, body); resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("no hook: %d %s, want 501", resp.StatusCode, data)
	}
}
