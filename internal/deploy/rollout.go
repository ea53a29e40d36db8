package deploy

import (
	"context"
	"errors"
)

// The rollout actions (RolloutChange.Action). Operators take the first
// five through `turnout rollout` and the admin API; the controller
// (internal/rollout) takes RolloutStep, RolloutAbort and RolloutPromote.
const (
	// RolloutStart puts a route whose rollout is aborted, or has not begun
	// (canary weight 0), on its plan's first step.
	RolloutStart = "start"
	// RolloutPause holds a running rollout at its step: the weight stays,
	// nothing is judged or advanced until resumed.
	RolloutPause = "pause"
	// RolloutResume continues a paused rollout; its step's time starts again.
	RolloutResume = "resume"
	// RolloutPromote makes the canary the route's target at once: the
	// canary and rollout keys go, and an origin the route served from stays
	// as its fallback when it had none.
	RolloutPromote = "promote"
	// RolloutAbort sets the canary's weight to 0 and the rollout's state to
	// aborted: every client is back on the baseline, and the controller
	// leaves the route until `turnout rollout start`.
	RolloutAbort = "abort"
	// RolloutStep moves a running rollout from one step's weight to the
	// next (the controller, after a passing judgement).
	RolloutStep = "step"
)

// RolloutChange is one change to a route's rollout, made as a deployment
// that edits the route's canary weight, rollout state or target.
type RolloutChange struct {
	// Action is one of the Rollout* constants.
	Action string `json:"action"`
	// Match is the route's match, compared after route.Canonical.
	Match string `json:"route"`
	// From, when set, is the weight the change was decided at: when the
	// active deployment's canary weight differs (another node, or an
	// operator, changed it first), the change is refused with ErrConflict
	// and nothing is stored. The controller sets it; operators do not.
	From *float64 `json:"from,omitempty"`
	// To is the weight of a RolloutStep.
	To float64 `json:"to,omitempty"`
	// Reason ends the deployment's cause: "rollout abort: canary p99 412 ms
	// vs baseline 180 ms, U-test p=0.0003".
	Reason string `json:"reason,omitempty"`
	// Author and Message are recorded on the deployment.
	Author  string `json:"author,omitempty"`
	Message string `json:"message,omitempty"`
}

// ErrNoRollout: the route has no rollout plan (or no canary) to act on.
var ErrNoRollout = errors.New("no rollout")

// Rollout stores and activates the deployment that makes change ch. An
// action already in effect (pausing a paused rollout) returns an error
// wrapping ErrConflict; a route without a rollout plan one wrapping
// ErrNoRollout; an unknown route one wrapping ErrUnknownRoute.
func (s *Service) Rollout(ctx context.Context, ch RolloutChange) (Deployment, error) {
	return Deployment{}, errorf(ErrInvalid, "rollout: not implemented yet")
}
