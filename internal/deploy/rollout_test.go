package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
)

// rolloutOf returns route i's canary weight and rollout state in the
// config last activated.
func rolloutOf(t *testing.T, acts *[]activation, i int) (float64, string) {
	t.Helper()
	r := (*acts)[len(*acts)-1].cfg.Routes[i]
	if r.Canary == nil || r.Rollout == nil {
		t.Fatalf("route %q has no canary or rollout any more", r.Match)
	}
	return r.Canary.Weight, r.Rollout.State
}

// TestRolloutLifecycle walks a rollout through every action and checks each
// deployment's cause and that each edit is the one line it should be.
func TestRolloutLifecycle(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	orig := mustApply(t, s, "rollout.yaml")
	const route = "GET /user/{id}"

	start, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStart, Match: route, Author: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if start.Cause != "rollout start GET /user/{id}: step 1/3, 1%" || start.Author != "ops" {
		t.Fatalf("start: cause %q author %q", start.Cause, start.Author)
	}
	if want := strings.Replace(orig.Config, "      weight: 0\n", "      weight: 1\n", 1); start.Config != want {
		t.Fatalf("start changed more than the weight:\n%s", start.Config)
	}
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStart, Match: route}); !errors.Is(err, deploy.ErrConflict) {
		t.Fatalf("second start: %v, want ErrConflict", err)
	}

	from := 1.0
	step, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStep, Match: route, From: &from, To: 5, Reason: "canary error rate 0.0% vs baseline 0.0%"})
	if err != nil {
		t.Fatal(err)
	}
	if step.Cause != "rollout step GET /user/{id}: 2/3, 5%: canary error rate 0.0% vs baseline 0.0%" || step.Author != "turnout" {
		t.Fatalf("step: cause %q author %q", step.Cause, step.Author)
	}
	if w, st := rolloutOf(t, acts, 0); w != 5 || st != "" {
		t.Fatalf("after step: weight %v state %q", w, st)
	}
	// A decision made at a weight the route has left is refused: another
	// node (or an operator) moved it first.
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStep, Match: route, From: &from, To: 5}); !errors.Is(err, deploy.ErrConflict) {
		t.Fatalf("stale step: %v, want ErrConflict", err)
	}
	five := 5.0
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStep, Match: route, From: &five, To: 7}); !errors.Is(err, deploy.ErrInvalid) {
		t.Fatalf("step to a weight not in the plan: %v, want ErrInvalid", err)
	}

	pause, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutPause, Match: route, Author: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if pause.Cause != "rollout pause GET /user/{id}" || !strings.Contains(pause.Config, "      step_for: 5m\n") {
		t.Fatalf("pause: cause %q:\n%s", pause.Cause, pause.Config)
	}
	// The state line is added inside the rollout mapping, the rest kept.
	if want := strings.Replace(step.Config, "    rollout:\n", "    rollout:\n      state: paused\n", 1); pause.Config != want {
		t.Fatalf("pause edit:\n%s", pause.Config)
	}
	if _, st := rolloutOf(t, acts, 0); st != config.RolloutPaused {
		t.Fatalf("after pause: state %q", st)
	}
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStep, Match: route, From: &five, To: 25}); !errors.Is(err, deploy.ErrConflict) {
		t.Fatalf("step while paused: %v, want ErrConflict", err)
	}
	resume, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutResume, Match: route, Author: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if resume.Config != step.Config {
		t.Fatalf("resume did not restore the running config:\n%s", resume.Config)
	}

	abort, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutAbort, Match: route, Reason: "canary p99 412 ms vs baseline 180 ms, U-test p=0.0003"})
	if err != nil {
		t.Fatal(err)
	}
	if abort.Cause != "rollout abort GET /user/{id}: canary p99 412 ms vs baseline 180 ms, U-test p=0.0003" {
		t.Fatalf("abort cause %q", abort.Cause)
	}
	if w, st := rolloutOf(t, acts, 0); w != 0 || st != config.RolloutAborted {
		t.Fatalf("after abort: weight %v state %q", w, st)
	}
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutAbort, Match: route}); !errors.Is(err, deploy.ErrConflict) {
		t.Fatalf("second abort: %v, want ErrConflict", err)
	}
	// Start again after an abort: step 1, state cleared.
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStart, Match: route}); err != nil {
		t.Fatal(err)
	}
	if w, st := rolloutOf(t, acts, 0); w != 1 || st != "" {
		t.Fatalf("after restart: weight %v state %q", w, st)
	}

	// history, diff and rollback work on rollouts: rolling back the
	// restart brings the aborted state back.
	if _, err := s.Rollback(ctx, 0, "ops", ""); err != nil {
		t.Fatal(err)
	}
	if w, st := rolloutOf(t, acts, 0); w != 0 || st != config.RolloutAborted {
		t.Fatalf("after rollback: weight %v state %q", w, st)
	}
}

// TestRolloutPresetState: a rollout written as a preset string gets its
// state as a flow mapping, and loses it again on resume.
func TestRolloutPresetState(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	orig := mustApply(t, s, "rollout.yaml")
	pause, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutPause, Match: "GET /orders"})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(orig.Config, "rollout: canary10-5m", "rollout: {preset: canary10-5m, state: paused}", 1); pause.Config != want {
		t.Fatalf("pause:\n%s", pause.Config)
	}
	if _, st := rolloutOf(t, acts, 1); st != config.RolloutPaused {
		t.Fatalf("state %q", st)
	}
	resume, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutResume, Match: "GET /orders"})
	if err != nil {
		t.Fatal(err)
	}
	if _, st := rolloutOf(t, acts, 1); st != "" || !strings.Contains(resume.Config, "preset: canary10-5m") {
		t.Fatalf("resume: state %q:\n%s", st, resume.Config)
	}
	// The flow-style canary's weight is edited in place.
	from := 5.0
	step, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStep, Match: "GET /orders", From: &from, To: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(step.Config, "canary: {origin: orders, weight: 10}") {
		t.Fatalf("step:\n%s", step.Config)
	}
}

// TestRolloutPromote: promotion makes the canary the route's target; the
// origin it leaves becomes the fallback; canary and rollout go.
func TestRolloutPromote(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	mustApply(t, s, "rollout.yaml")
	d, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutPromote, Match: "GET /user/{id}", Author: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Cause != "rollout promote GET /user/{id}: by ops" {
		t.Fatalf("cause %q", d.Cause)
	}
	r := (*acts)[len(*acts)-1].cfg.Routes[0]
	if r.Origin != "users" || r.Fallback != "legacy" || r.Canary != nil || r.Rollout != nil || r.Shadow != nil {
		t.Fatalf("promoted route: %+v", r)
	}
	if !strings.Contains(d.Config, "# Users move to the new service") {
		t.Fatalf("promotion lost the file's comments:\n%s", d.Config)
	}
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutPause, Match: "GET /user/{id}"}); !errors.Is(err, deploy.ErrNoRollout) {
		t.Fatalf("pause after promotion: %v, want ErrNoRollout", err)
	}
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: "jump", Match: "GET /orders"}); !errors.Is(err, deploy.ErrInvalid) {
		t.Fatalf("unknown action: %v, want ErrInvalid", err)
	}
	if _, err := s.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutPause, Match: "GET /nope"}); !errors.Is(err, deploy.ErrUnknownRoute) {
		t.Fatalf("unknown route: %v, want ErrUnknownRoute", err)
	}
}

// TestRouteOffAbortsRollout: switching a route under rollout off aborts the
// rollout first, in a deployment of its own, so that route on does not
// resume it; an auto-rollback does the same.
func TestRouteOffAbortsRollout(t *testing.T) {
	ctx := context.Background()
	s, acts := newService(t)
	first := mustApply(t, s, "rollout.yaml")
	off, err := s.RouteSwitch(ctx, "GET /orders", true, "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	abort, err := s.Store.Get(ctx, off.ID-1)
	if err != nil {
		t.Fatal(err)
	}
	if abort.ID != first.ID+1 || abort.Cause != "rollout abort GET /orders: route off by ops" || off.Cause != "route off GET /orders" {
		t.Fatalf("deployments: %d %q, %d %q", abort.ID, abort.Cause, off.ID, off.Cause)
	}
	if w, st := rolloutOf(t, acts, 1); w != 0 || st != config.RolloutAborted {
		t.Fatalf("after route off: weight %v state %q", w, st)
	}

	// A route on the legacy origin has nowhere else to go once its
	// rollout is aborted: the abort is what switching it off does.
	ar, err := s.AutoRollback(ctx, "GET /user/{id}", "origin errors 50.0% > 5% over 1m0s")
	if err != nil {
		t.Fatal(err)
	}
	if ar.ID != off.ID+1 || ar.Cause != "rollout abort GET /user/{id}: auto-rollback: origin errors 50.0% > 5% over 1m0s" {
		t.Fatalf("auto-rollback: deployment %d %q", ar.ID, ar.Cause)
	}
	if w, st := rolloutOf(t, acts, 0); w != 0 || st != config.RolloutAborted {
		t.Fatalf("after auto-rollback: weight %v state %q", w, st)
	}
}
