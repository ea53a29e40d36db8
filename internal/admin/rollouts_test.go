package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/judge"
	"github.com/turnout/turnout/internal/rollout"
)

// twoRollouts are what a controller might report: one judged, one not yet.
func twoRollouts() []rollout.Status {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	v := judge.Analysis{}.Judge(judge.Counts{}, judge.Counts{}) // waiting: no requests
	v.Decision, v.Reason = judge.Fail, "canary p99 412 ms vs baseline 180 ms, U-test p=0.0003"
	v.Baseline = judge.SideStats{Requests: 1200, Failures: 1, ErrorRate: 1.0 / 1200, P50: 20 * time.Millisecond, P99: 180 * time.Millisecond}
	v.Canary = judge.SideStats{Requests: 250, P50: 70 * time.Millisecond, P99: 412 * time.Millisecond}
	return []rollout.Status{
		{Route: "GET /user/{id}", Baseline: "users", Canary: "function:users", State: "running", Step: 2, Steps: []float64{1, 5, 25, 50, 100},
			Weight: 5, Deployment: 3, StepStarted: t0, InStep: 63 * time.Second, StepFor: 5 * time.Minute, Interval: 10 * time.Second,
			Verdict: &v, Judged: t0.Add(60 * time.Second),
			Weights: []rollout.Point{{Deployment: 2, Time: t0.Add(-5 * time.Minute), Weight: 1, Cause: "rollout start"}, {Deployment: 3, Time: t0, Weight: 5, Cause: "rollout step 2/5: 5%"}}},
		{Route: "GET /items/{rest...}", Baseline: "legacy", Canary: "function:items", State: "paused", Step: 1, Steps: []float64{10},
			Weight: 10, Deployment: 4, StepStarted: t0, InStep: time.Second, StepFor: time.Minute, Interval: time.Second,
			Weights: []rollout.Point{{Deployment: 4, Time: t0, Weight: 10, Cause: "rollout start"}}},
	}
}

// TestRolloutsList: GET /api/v1/rollouts answers what Options.Rollouts
// reports, all or one route's by its canonical match, and the client reads
// it back whole, the verdict's decision included.
func TestRolloutsList(t *testing.T) {
	want := twoRollouts()
	f := newFixture(t, func(o *Options) {
		o.Rollouts = func(context.Context) ([]rollout.Status, error) { return twoRollouts(), nil }
	})
	c := &Client{BaseURL: f.srv.URL, Token: viewerToken}
	ctx := context.Background()

	got, err := c.Rollouts(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rollouts:\n got %+v\nwant %+v", got, want)
	}
	if got[0].Verdict.Decision != judge.Fail {
		t.Errorf("decision %v, want fail", got[0].Verdict.Decision)
	}

	// The filter compares canonical matches: spacing and {x+} do not matter.
	for _, q := range []string{"GET /items/{rest+}", "GET  /items/{rest...}"} {
		got, err = c.Rollouts(ctx, q)
		if err != nil || len(got) != 1 || got[0].Route != "GET /items/{rest...}" || got[0].Verdict != nil {
			t.Errorf("rollouts of %q = %+v, %v", q, got, err)
		}
	}
	got, err = c.Rollouts(ctx, "GET /nope")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("rollouts of a route without one = %#v, %v; want an empty list", got, err)
	}

	// The JSON answer: a list, never null; the decision by name.
	resp, body := f.request(t, "GET", "/api/v1/rollouts?route=GET%20/nope", viewerToken, nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "{\n  \"rollouts\": []\n}" {
		t.Errorf("filtered to nothing: %d %s", resp.StatusCode, body)
	}
	resp, body = f.request(t, "GET", "/api/v1/rollouts", viewerToken, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"decision": "fail"`) || !strings.Contains(string(body), `"in_step": 63000000000`) {
		t.Errorf("answer: %d %s", resp.StatusCode, body)
	}
	resp, body = f.request(t, "GET", "/api/v1/rollouts?route=", viewerToken, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "route is empty") {
		t.Errorf("empty route filter: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.request(t, "GET", "/api/v1/rollouts", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
}

// TestRolloutsListWithoutController: a server with no Options.Rollouts
// (tools, tests) lists none; a controller's error is the answer's.
func TestRolloutsListWithoutController(t *testing.T) {
	f := newFixture(t, nil)
	c := &Client{BaseURL: f.srv.URL, Token: viewerToken}
	got, err := c.Rollouts(context.Background(), "")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("rollouts = %#v, %v; want an empty list", got, err)
	}

	f = newFixture(t, func(o *Options) {
		o.Rollouts = func(context.Context) ([]rollout.Status, error) {
			return nil, fmt.Errorf("read the active deployment: %w", deploy.ErrUnavailable)
		}
	})
	c = &Client{BaseURL: f.srv.URL, Token: viewerToken}
	_, err = c.Rollouts(context.Background(), "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want 503", err)
	}
}

// TestRolloutActionRefusals: what is refused before the deployment service
// is asked changes nothing: a viewer's token, an unknown action (404
// naming the actions), an empty route, a malformed body.
func TestRolloutActionRefusals(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for _, a := range RolloutActions {
		resp, body := f.request(t, "POST", "/api/v1/rollouts/"+a, viewerToken, RolloutRequest{Route: "GET /user/{id}"})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s as viewer: %d %s", a, resp.StatusCode, body)
		}
	}
	for _, a := range []string{"step", "rollback", "Pause"} {
		resp, body := f.request(t, "POST", "/api/v1/rollouts/"+a, deployerToken, RolloutRequest{Route: "GET /user/{id}"})
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "unknown rollout action "+a+": want start, pause, resume, promote, abort") {
			t.Errorf("action %s: %d %s", a, resp.StatusCode, body)
		}
	}
	if resp, _ := f.request(t, "POST", "/api/v1/rollouts/pause", "", RolloutRequest{Route: "GET /user/{id}"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
	c := &Client{BaseURL: f.srv.URL, Token: deployerToken}
	_, err := c.Rollout(ctx, deploy.RolloutPause, " ", "", 0)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "route is empty") {
		t.Errorf("empty route: %v", err)
	}
	resp, body := f.request(t, "POST", "/api/v1/rollouts/abort", deployerToken, []byte(`{"route": `))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed body: %d %s", resp.StatusCode, body)
	}
	if f.activeID(t) != 1 {
		t.Fatal("a refused rollout action changed the active deployment")
	}
	evs, _ := f.store.AuditLog(ctx, 0)
	var denied, invalid int
	for _, e := range evs {
		switch {
		case e.Result == "denied" && strings.HasPrefix(e.Action, "rollout."):
			denied++
		case e.Result == "invalid" && (e.Action == "rollout.pause" || e.Action == "rollout.abort"):
			invalid++
		}
	}
	if denied != len(RolloutActions)+1 || invalid != 2 {
		raw, _ := json.MarshalIndent(evs, "", "  ")
		t.Errorf("audit: %d denied, %d invalid; want %d and 2:\n%s", denied, invalid, len(RolloutActions)+1, raw)
	}
}

// rolloutConfig is v1 with GET /user/{id} rolling out from legacy to users.
const rolloutConfig = `origins:
  legacy:
    url: http://127.0.0.1:9000
  users:
    url: http://127.0.0.1:9100
routes:
  - match: "GET /user/{id}"
    origin: legacy
    canary: {origin: users}
    rollout: {steps: [10, 50], step_for: 1h, min_requests: 50}
  - match: /
    origin: legacy
`

// routeOf returns route match of the active deployment's config.
func (f *fixture) routeOf(t *testing.T, match string) config.Route {
	t.Helper()
	d, err := f.store.Active(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("active.yaml", []byte(d.Config))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.Routes {
		if r.Match == match {
			return r
		}
	}
	t.Fatalf("no route %q in deployment %d", match, d.ID)
	return config.Route{}
}

// TestRolloutActions drives a route's rollout through the API over the real
// deployment service and store: each action a deployment by the token's
// name, audited; an action already in effect 409; a route without a
// rollout 409; an unknown route 404; with wait=1, the node's ack.
func TestRolloutActions(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	c := &Client{BaseURL: f.srv.URL, Token: deployerToken}
	if _, err := c.Apply(ctx, ApplyRequest{Config: rolloutConfig}); err != nil {
		t.Fatal(err)
	}
	const rt = "GET /user/{id}"
	weight := func() float64 { return f.routeOf(t, rt).Canary.Weight }
	state := func() string { return f.routeOf(t, rt).Rollout.State }

	act := func(action, message string) deploy.Deployment {
		t.Helper()
		res, err := c.Rollout(ctx, action, "GET  /user/{id}", message, 0)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		if res.Author != "ci" || res.Message != message || res.ID != f.activeID(t) {
			t.Fatalf("%s: deployment %+v", action, res.Deployment)
		}
		return res.Deployment
	}
	refused := func(action, match string, status int, says string) {
		t.Helper()
		before := f.activeID(t)
		_, err := c.Rollout(ctx, action, match, "", 0)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != status || !strings.Contains(ae.Message, says) {
			t.Fatalf("%s %s: %v, want %d saying %q", action, match, err, status, says)
		}
		if f.activeID(t) != before {
			t.Fatalf("%s %s, refused, stored a deployment", action, match)
		}
	}

	act(deploy.RolloutStart, "go")
	if weight() != 10 || state() != "" {
		t.Fatalf("after start: weight %v, state %q; want 10, running", weight(), state())
	}
	refused(deploy.RolloutStart, rt, http.StatusConflict, "")
	act(deploy.RolloutPause, "hold")
	if weight() != 10 || state() != config.RolloutPaused {
		t.Fatalf("after pause: weight %v, state %q", weight(), state())
	}
	refused(deploy.RolloutPause, rt, http.StatusConflict, "")
	act(deploy.RolloutResume, "")
	if state() != "" {
		t.Fatalf("after resume: state %q", state())
	}
	act(deploy.RolloutAbort, "bad canary")
	if weight() != 0 || state() != config.RolloutAborted {
		t.Fatalf("after abort: weight %v, state %q", weight(), state())
	}
	refused(deploy.RolloutPause, "/", http.StatusConflict, "no rollout")
	refused(deploy.RolloutAbort, "GET /nope", http.StatusNotFound, rt)

	// With wait=1, the answer carries the node's ack.
	deploytest.Acker(t, f.store, "solo", 0, false)
	res, err := c.Rollout(ctx, deploy.RolloutStart, rt, "again", 5*time.Second)
	if err != nil || res.Propagation == nil || states(res.Propagation) != "solo=acked" {
		t.Fatalf("start, waiting: %+v, %v", res, err)
	}
	act(deploy.RolloutPromote, "ship it")
	if r := f.routeOf(t, rt); r.Origin != "users" || r.Canary != nil || r.Rollout != nil {
		t.Fatalf("after promote: %+v", r)
	}

	evs, _ := f.store.AuditLog(ctx, 0)
	var got []string
	for _, e := range evs {
		if strings.HasPrefix(e.Action, "rollout.") {
			got = append(got, e.Action+"="+e.Result)
		}
	}
	want := "rollout.promote=ok rollout.start=ok rollout.abort=invalid rollout.pause=invalid rollout.abort=ok rollout.resume=ok " +
		"rollout.pause=invalid rollout.pause=ok rollout.start=invalid rollout.start=ok"
	if strings.Join(got, " ") != want {
		t.Errorf("audit:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}
