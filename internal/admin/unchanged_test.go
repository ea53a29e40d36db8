package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/turnout/turnout/internal/deploy"
)

// TestApplyUnchanged: applying the active config again stores nothing; the
// API answers 200 (not 201) with the active deployment and says so, the
// audit trail records it, and the client reports deploy.ErrUnchanged.
func TestApplyUnchanged(t *testing.T) {
	f := newFixture(t, nil)
	resp, body := f.request(t, "POST", "/api/v1/deployments", deployerToken, ApplyRequest{Config: v1, Message: "again"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
	}
	var u Applied
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatal(err)
	}
	if !u.Unchanged || u.ID != 1 || u.Detail != "no change: deployment 1 is already active" {
		t.Errorf("answer = %s", body)
	}

	c := &Client{BaseURL: f.srv.URL, Token: deployerToken}
	d, err := c.Apply(context.Background(), ApplyRequest{Config: v1})
	if !errors.Is(err, deploy.ErrUnchanged) || d.ID != 1 || err.Error() != "no change: deployment 1 is already active" {
		t.Fatalf("client apply = %+v, %v", d, err)
	}
	if act, err := f.store.Active(context.Background()); err != nil || act.ID != 1 {
		t.Fatalf("active = %+v, %v; want deployment 1, nothing stored", act, err)
	}
	evs, err := f.store.AuditLog(context.Background(), 10)
	if err != nil || len(evs) != 2 {
		t.Fatalf("audit = %+v, %v", evs, err)
	}
	for _, e := range evs {
		if e.Action != "apply" || e.Result != "unchanged" || e.Deployment != 1 || e.Detail != "no change: deployment 1 is already active" {
			t.Errorf("audit event %+v", e)
		}
	}
}
