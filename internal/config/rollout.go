package config

import (
	"github.com/turnout/turnout/internal/judge"
)

// Rollout is a route's progressive rollout plan: the canary's weight goes
// through Steps, each held at least StepFor and judged against the route's
// baseline (internal/judge) every Interval; a failed judgement aborts the
// rollout, and passing the last step promotes the canary to the route's
// target (docs/rollouts.md). The plan's position is the canary's weight in
// the active deployment, and State, so a restarted node or another node of
// a fleet resumes it from the store: every step is a deployment.
type Rollout struct {
	// Preset names the plan a CodeDeploy user knows: canary10-5m (10 % for
	// 5 minutes, then all), linear10-1m (10 % more every minute), or any
	// canaryN-Dm / linearN-Dm, and CodeDeploy's own names
	// (Canary10Percent5Minutes, Linear10PercentEvery1Minute). Parse expands
	// it into Steps and StepFor; `rollout: canary10-5m` is the short form of
	// `rollout: {preset: canary10-5m}`.
	Preset string `yaml:"preset" json:"preset,omitempty"`
	// Steps are the canary's weights in percent, ascending, each above 0
	// and at most 100. Passing the last one promotes the canary; a final
	// 100 is the promotion itself (the baseline gets no requests to compare
	// with at 100 %). Default [1, 5, 25, 50, 100].
	Steps []float64 `yaml:"steps" json:"steps"`
	// StepFor is the least time each step is held. Default 5m.
	StepFor Duration `yaml:"step_for" json:"step_for"`
	// Interval is how often the step's window is judged. Default 10s.
	Interval Duration `yaml:"interval" json:"interval,omitempty"`
	// MinRequests is the requests each side needs in a step's window
	// before it is judged. Default 200.
	MinRequests int `yaml:"min_requests" json:"min_requests,omitempty"`
	// Analysis holds the judge's thresholds (its min_requests is the
	// plan's, above). Zero fields take judge's defaults.
	Analysis judge.Analysis `yaml:"analysis" json:"analysis"`
	// State is "" (running), RolloutPaused or RolloutAborted. `turnout
	// rollout pause|resume|abort|start` and the controller set it.
	State string `yaml:"state" json:"state,omitempty"`
}

// The states of a rollout besides running ("").
const (
	RolloutPaused  = "paused"
	RolloutAborted = "aborted"
)

// Judge returns the thresholds the plan's steps are judged with, MinRequests
// included, defaults filled in.
func (r Rollout) Judge() judge.Analysis {
	a := r.Analysis
	a.MinRequests = r.MinRequests
	return a.WithDefaults()
}
