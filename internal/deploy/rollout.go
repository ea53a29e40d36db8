package deploy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/route"
	"go.yaml.in/yaml/v3"
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
	// canary, rollout and shadow keys go, and an origin the route served
	// from stays as its fallback when it had none.
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
// action already in effect (pausing a paused rollout), or a From the active
// deployment has moved away from, returns an error wrapping ErrConflict; a
// route without a rollout plan one wrapping ErrNoRollout; an unknown route
// one wrapping ErrUnknownRoute.
//
// The causes: "rollout start GET /x: step 1/5, 1%", "rollout step GET /x:
// 2/5, 5%: REASON", "rollout pause GET /x", "rollout resume GET /x",
// "rollout abort GET /x: REASON", "rollout promote GET /x: REASON" (REASON
// is ch.Reason, or "by AUTHOR" without one).
//
// A step, start, abort, pause or resume changes a line of the file (the
// canary's weight, the rollout's state; a line is added when the key is
// missing), as route off does; promotion rewrites the route's target, and
// the file is encoded again from its YAML tree (comments kept, blank lines
// not). Either way the result must parse to the active config with only
// that change.
func (s *Service) Rollout(ctx context.Context, ch RolloutChange) (Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rolloutLocked(ctx, ch)
}

// rolloutEdit is what a rollout change does to one route: the canary's new
// weight, the rollout's new state, or the promotion.
type rolloutEdit struct {
	weight  *float64
	state   *string
	promote bool
}

func (s *Service) rolloutLocked(ctx context.Context, ch RolloutChange) (Deployment, error) {
	want := route.Canonical(ch.Match)
	if want == "" {
		return Deployment{}, errorf(ErrInvalid, "rollout %s: empty route; give the route's match as written in the config, e.g. \"GET /user/{id}\"", ch.Action)
	}
	active, err := s.Store.Active(ctx)
	if err != nil {
		return Deployment{}, fmt.Errorf("rollout %s: %w", ch.Action, err)
	}
	name := configName(active.ID)
	cfg, err := config.Parse(name, []byte(active.Config))
	if err != nil {
		return Deployment{}, fmt.Errorf("rollout %s: the active deployment %d does not validate any more; apply a fixed config: %w", ch.Action, active.ID, err)
	}
	idx, err := routeIndex(cfg, active.ID, ch.Match)
	if err != nil {
		return Deployment{}, err
	}
	r := &cfg.Routes[idx]
	if r.Rollout == nil || r.Canary == nil {
		return Deployment{}, errorf(ErrNoRollout, "route %q has no rollout plan in deployment %d: give it a canary: and a rollout:, like canary: {function: users-v2} and rollout: canary10-5m (docs/rollouts.md)", r.Match, active.ID)
	}
	e, cause, err := rolloutChange(r, ch, active.ID)
	if err != nil {
		return Deployment{}, err
	}

	src := []byte(active.Config)
	newSrc, newCfg, err := editRollout(name, src, want, cfg, idx, e)
	if err != nil {
		return Deployment{}, fmt.Errorf("rollout %s %s: %w", ch.Action, r.Match, err)
	}
	return s.create(ctx, active.ID, string(newSrc), cmp.Or(ch.Author, "turnout"), ch.Message, cause, newCfg)
}

// rolloutChange checks ch against route r (of deployment id) and returns the
// edit it makes and the deployment's cause.
func rolloutChange(r *config.Route, ch RolloutChange, id uint64) (rolloutEdit, string, error) {
	plan, w := r.Rollout, r.Canary.Weight
	n := len(plan.Steps)
	match := route.Canonical(r.Match)
	if ch.From != nil && *ch.From != w {
		return rolloutEdit{}, "", &opError{kind: ErrConflict, msg: fmt.Sprintf("rollout %s %s: the canary's weight is %s%% in deployment %d, not %s%%: it changed since", ch.Action, match, percent(w), id, percent(*ch.From))}
	}
	reason := ch.Reason
	if reason == "" && ch.Author != "" {
		reason = "by " + ch.Author
	}
	str := func(s string) *string { return &s }
	conflict := func(format string, args ...any) (rolloutEdit, string, error) {
		return rolloutEdit{}, "", errorf(ErrConflict, "rollout %s %s: "+format, append([]any{ch.Action, match}, args...)...)
	}
	switch ch.Action {
	case RolloutStart:
		if plan.State == config.RolloutPaused {
			return conflict("the rollout is paused at %s%%; resume it instead", percent(w))
		}
		if plan.State == "" && w > 0 {
			return conflict("the rollout is already running, at %s%%", percent(w))
		}
		first := plan.Steps[0]
		return rolloutEdit{weight: &first, state: str("")}, fmt.Sprintf("rollout start %s: step 1/%d, %s%%", match, n, percent(first)), nil
	case RolloutPause:
		if plan.State != "" {
			return conflict("the rollout is %s, not running", plan.State)
		}
		return rolloutEdit{state: str(config.RolloutPaused)}, "rollout pause " + match, nil
	case RolloutResume:
		if plan.State != config.RolloutPaused {
			return conflict("the rollout is %s, not paused", cmp.Or(plan.State, "running"))
		}
		return rolloutEdit{state: str("")}, "rollout resume " + match, nil
	case RolloutAbort:
		if plan.State == config.RolloutAborted {
			return conflict("the rollout is aborted already")
		}
		zero := 0.0
		return rolloutEdit{weight: &zero, state: str(config.RolloutAborted)}, "rollout abort " + match + ": " + cmp.Or(reason, "aborted"), nil
	case RolloutStep:
		if plan.State != "" {
			return conflict("the rollout is %s, not running", plan.State)
		}
		i := slices.Index(plan.Steps, ch.To)
		if i < 0 || ch.To <= w {
			return rolloutEdit{}, "", errorf(ErrInvalid, "rollout step %s: %s%% is not a step after %s%% of the plan %v", match, percent(ch.To), percent(w), plan.Steps)
		}
		to := ch.To
		cause := fmt.Sprintf("rollout step %s: %d/%d, %s%%", match, i+1, n, percent(to))
		if reason != "" {
			cause += ": " + reason
		}
		return rolloutEdit{weight: &to}, cause, nil
	case RolloutPromote:
		return rolloutEdit{promote: true}, "rollout promote " + match + ": " + cmp.Or(reason, "promoted"), nil
	}
	return rolloutEdit{}, "", errorf(ErrInvalid, "rollout: unknown action %q: the actions are %s, %s, %s, %s and %s", ch.Action, RolloutStart, RolloutPause, RolloutResume, RolloutPromote, RolloutAbort)
}

// percent formats a weight as written in a config: 5, 0.5, 12.25.
func percent(w float64) string { return strconv.FormatFloat(w, 'f', -1, 64) }

// apply makes edit e to route r of a parsed config: what the edited file
// must parse to.
func (e rolloutEdit) apply(r *config.Route) {
	if e.weight != nil {
		r.Canary.Weight = *e.weight
	}
	if e.state != nil {
		r.Rollout.State = *e.state
	}
	if e.promote {
		c := r.Canary
		if r.Origin != "" && r.Fallback == "" {
			r.Fallback = r.Origin
		}
		r.Function, r.Origin = c.Function, c.Origin
		if c.Origin != "" {
			r.Payload = ""
		}
		// The shadow compared the route's old target with what it moves
		// to; once moved, there is nothing left for it to prove.
		r.Canary, r.Rollout, r.Shadow = nil, nil, nil
	}
}

// editRollout makes edit e to the route at idx of cfg (parsed from src,
// named name), whose match is want: by line edits when it can, by the YAML
// tree otherwise. The result is parsed and compared with cfg edited.
func editRollout(name string, src []byte, want string, cfg *config.Config, idx int, e rolloutEdit) ([]byte, *config.Config, error) {
	before := cfg.Routes[idx]
	if c := before.Canary; c != nil {
		before.Canary = &config.Canary{Function: c.Function, Origin: c.Origin, Weight: c.Weight, Sticky: c.Sticky}
	}
	e.apply(&cfg.Routes[idx])
	expect, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, err
	}
	check := func(src []byte) (*config.Config, error) {
		c, err := config.Parse(name, src)
		if err != nil {
			return nil, err
		}
		got, err := json.Marshal(c)
		if err != nil || !bytes.Equal(got, expect) {
			return nil, errors.New("editing the config changed more than the rollout; edit the file and apply it instead")
		}
		return c, nil
	}
	if !e.promote {
		if out, ok := rolloutLines(src, want, e); ok {
			if c, err := check(out); err == nil {
				return out, c, nil
			}
		}
	}
	out, err := rolloutTree(src, want, e, before)
	if err != nil {
		return nil, nil, err
	}
	c, err := check(out)
	if err != nil {
		return nil, nil, err
	}
	return out, c, nil
}

// rolloutLines makes edit e (a weight, a state) by line edits, one after
// the other, or reports false.
func rolloutLines(src []byte, want string, e rolloutEdit) ([]byte, bool) {
	route := func(src []byte) (*yaml.Node, bool) {
		_, m, err := parseRoute(src, want)
		return m, err == nil
	}
	if e.weight != nil {
		m, ok := route(src)
		if !ok {
			return nil, false
		}
		c := mapValue(m, "canary")
		t := newTextDoc(src)
		if v := mapValue(c, "weight"); v != nil {
			src, ok = t.replaceScalar(v, percent(*e.weight))
		} else {
			src, ok = t.setKey(c, "weight", percent(*e.weight))
		}
		if !ok {
			return nil, false
		}
	}
	if e.state != nil {
		m, ok := route(src)
		if !ok {
			return nil, false
		}
		rn := mapValue(m, "rollout")
		t := newTextDoc(src)
		switch {
		case rn == nil:
			return nil, false
		case rn.Kind == yaml.ScalarNode && *e.state == "":
			// A preset written as a string has no state to clear.
		case rn.Kind == yaml.ScalarNode:
			src, ok = t.replaceScalar(rn, "{preset: "+rn.Value+", state: "+*e.state+"}")
		case *e.state == "" && mapIndex(rn, "state") >= 0:
			src, ok = t.deleteKey(rn, "state")
		case *e.state == "":
		default:
			src, ok = t.setKey(rn, "state", *e.state)
		}
		if !ok {
			return nil, false
		}
	}
	return src, true
}

// rolloutTree makes edit e on the YAML tree of src and encodes it again.
// r is the route as parsed before the edit.
func rolloutTree(src []byte, want string, e rolloutEdit, r config.Route) ([]byte, error) {
	doc, m, err := parseRoute(src, want)
	if err != nil {
		return nil, err
	}
	scalar := func(tag, v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v} }
	set := func(m *yaml.Node, key string, v *yaml.Node) {
		if i := mapIndex(m, key); i >= 0 {
			v.LineComment = m.Content[i+1].LineComment
			m.Content[i+1] = v
			return
		}
		m.Content = append(m.Content, scalar("!!str", key), v)
	}
	del := func(m *yaml.Node, key string) {
		if i := mapIndex(m, key); i >= 0 {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
		}
	}
	canary, rollout := mapValue(m, "canary"), mapValue(m, "rollout")
	if canary == nil || canary.Kind != yaml.MappingNode || rollout == nil {
		return nil, errors.New("the route's canary or rollout is not written in the route itself (a merge key or alias); edit the file and apply it instead")
	}
	if e.weight != nil {
		set(canary, "weight", scalar("!!float", percent(*e.weight)))
	}
	if e.state != nil {
		if rollout.Kind == yaml.ScalarNode {
			preset := rollout.Value
			*rollout = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle, LineComment: rollout.LineComment}
			set(rollout, "preset", scalar("!!str", preset))
		}
		if *e.state == "" {
			del(rollout, "state")
		} else {
			set(rollout, "state", scalar("!!str", *e.state))
		}
	}
	if e.promote {
		key, name := "function", r.Canary.Function
		if r.Canary.Origin != "" {
			key, name = "origin", r.Canary.Origin
		}
		old := "origin"
		if r.Function != "" {
			old = "function"
		}
		i := mapIndex(m, old)
		if i < 0 {
			return nil, errors.New("the route's target is not written in the route itself (a merge key or alias); edit the file and apply it instead")
		}
		m.Content[i].Value = key
		m.Content[i+1] = scalar("!!str", name)
		if r.Origin != "" && r.Fallback == "" {
			m.Content = slices.Insert(m.Content, i+2, scalar("!!str", "fallback"), scalar("!!str", r.Origin))
		}
		if key == "origin" {
			del(m, "payload")
		}
		del(m, "canary")
		del(m, "rollout")
		del(m, "shadow")
	}
	return encodeTree(doc)
}
