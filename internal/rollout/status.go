// Package rollout drives routes' progressive rollouts: every interval it
// judges each route's canary against its baseline over the step's window
// (internal/judge) and, through deploy.Service, advances the canary's
// weight a step, promotes it, or aborts it — each change a deployment.
package rollout

import (
	"time"

	"github.com/turnout/turnout/internal/judge"
)

// Status is one route's rollout as `turnout rollout status`, the admin API
// (GET /api/v1/rollouts) and the dashboard show it, from this node's view:
// the plan's position comes from the active deployment (the same on every
// node), the judgement from the requests this node served.
type Status struct {
	// Route is the route's match as written.
	Route string `json:"route"`
	// Baseline and Canary name the two targets (turnout's target names:
	// an origin's name, "function:NAME").
	Baseline string `json:"baseline"`
	Canary   string `json:"canary"`
	// State is "running", "paused", "aborted" or "promoted" (a route whose
	// last rollout deployment promoted its canary is not listed).
	State string `json:"state"`
	// Step is the 1-based index in Steps of the current weight, 0 before
	// the first step (weight 0).
	Step  int       `json:"step"`
	Steps []float64 `json:"steps"`
	// Weight is the canary's percent of the route's requests now.
	Weight float64 `json:"weight"`
	// Deployment is the deployment that set the current step, at
	// StepStarted; InStep is how long ago that was.
	Deployment  uint64        `json:"deployment"`
	StepStarted time.Time     `json:"step_started"`
	InStep      time.Duration `json:"in_step"`
	StepFor     time.Duration `json:"step_for"`
	Interval    time.Duration `json:"interval"`
	// Verdict is the last judgement this node made — of the step's
	// window, or, until the step's first look, the one that moved the
	// rollout here (an abort's stays on show) — with both sides'
	// requests, error rates, p50 and p99; nil before the first.
	Verdict *judge.Verdict `json:"verdict,omitempty"`
	// Waiting says why a running rollout at weight 0 has not started: its
	// plan's shadow gate is not met yet. "" otherwise.
	Waiting string `json:"waiting,omitempty"`
	// Judged is when Verdict was made.
	Judged time.Time `json:"judged,omitzero"`
	// Weights is the weight over time, one point per rollout deployment of
	// this route (oldest first), for the dashboard's chart.
	Weights []Point `json:"weights"`
}

// Point is the canary's weight from a deployment on.
type Point struct {
	Deployment uint64    `json:"deployment"`
	Time       time.Time `json:"time"`
	Weight     float64   `json:"weight"`
	Cause      string    `json:"cause"`
}
