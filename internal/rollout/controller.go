package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/judge"
	"github.com/turnout/turnout/internal/route"
)

// Counter reads a route's two sides' counts since its canary started: the
// gateway (gateway.Gateway.Comparison).
type Counter interface {
	Comparison(pattern string) (baseline, canary judge.Counts, ok bool)
}

// ShadowGate reads a route's shadow comparisons: how many requests were
// compared and the percent that matched.
type ShadowGate interface {
	Gate(route string) (compared int64, matchRate float64)
}

// Controller drives the rollouts of the deployment a node serves. Every
// node of a fleet runs one, on the requests it serves itself: the first
// node whose judgement moves a rollout makes the deployment, and the others
// find the weight moved (deploy.RolloutChange.From) and make none. So an
// abort comes from whichever node sees the canary fail first, and a step
// from the first that has seen the step's time and requests pass.
//
// At each look (the plan's interval) a running rollout's step window —
// both sides' requests since the step began, on this node — is judged:
// before step_for has passed by judge.Analysis.Interim (a failure aborts),
// after it by Judge (a failure aborts, a pass advances to the next step or,
// after the last, promotes; too few requests wait). A rollout whose weight
// is 0 (just applied, or started) is put on its first step at once; a
// weight of 100 is promoted when its step_for has passed (there is no
// baseline left to compare with). A paused or aborted rollout is left
// alone.
//
// Between looks, a canary failing outright is not left to the next one:
// the gateway tells the controller of every canary failure
// (CanaryFailed), and at most every 10 ms the controller checks the
// windows of the routes for the error-rate ceiling alone
// (analysis.max_error_rate, with min_requests a side) and aborts a route
// past it at once. The ceiling is a fixed threshold, not a test, so
// checking it often adds no false aborts the way repeating the
// statistical tests would; those wait for the looks.
type Controller struct {
	// Service makes the deployments. Required.
	Service *deploy.Service
	// Counts reads the sides' counts. Required.
	Counts Counter
	// Shadows reads routes' shadow comparisons, for plans with a shadow
	// gate (internal/shadow's Report). Nil holds such plans at weight 0.
	Shadows ShadowGate
	// Log receives decisions and failures. Default slog.Default().
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time

	once   sync.Once
	failed chan struct{} // CanaryFailed's signal to Run

	mu     sync.Mutex
	next   *deploy.Deployment // the latest deployment served, not yet read
	wake   chan struct{}
	routes map[string]*tracked // by route.Canonical(match)
	order  []string            // routes in config order
}

// tracked is one route's rollout as the controller follows it.
type tracked struct {
	status Status
	plan   config.Rollout
	// step identifies the step: the canary's target, weight and state; a
	// deployment that changes none of them continues the step.
	step string
	// base are the sides' counts when the step began here; the step's
	// window is the counts since.
	base     [2]judge.Counts
	nextLook time.Time
	off      bool // the route is switched off: nothing to judge or move
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Controller) log() *slog.Logger { return cmp.Or(c.Log, slog.Default()) }

func (c *Controller) init() {
	c.once.Do(func() {
		c.wake = make(chan struct{}, 1)
		c.failed = make(chan struct{}, 1)
		c.routes = map[string]*tracked{}
	})
}

// quickGap is the least time between two checks of the error-rate ceiling
// that canary failures ask for.
const quickGap = 10 * time.Millisecond

// CanaryFailed tells the controller a canary failed a request: the
// gateway's OnCanaryFailure. It does not block and takes no lock.
func (c *Controller) CanaryFailed() {
	c.init()
	select {
	case c.failed <- struct{}{}:
	default:
	}
}

// Served tells the controller the node now serves deployment d. It does not
// block; the controller reads d's config in its own goroutine.
func (c *Controller) Served(d deploy.Deployment) {
	c.init()
	c.mu.Lock()
	if c.next == nil || d.ID >= c.next.ID {
		c.next = &d
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Status returns the rollouts of the deployment served, in config order.
func (c *Controller) Status() []Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	out := make([]Status, 0, len(c.order))
	for _, k := range c.order {
		t := c.routes[k]
		s := t.status
		s.Steps = slices.Clone(s.Steps)
		s.Weights = slices.Clone(s.Weights)
		if s.State == stateRunning {
			s.InStep = now.Sub(s.StepStarted).Round(time.Millisecond)
		}
		out = append(out, s)
	}
	return out
}

const stateRunning = "running"

// Run drives the rollouts until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	c.init()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var lastQuick time.Time
	quick := false // a canary failed since the last ceiling check
	for {
		c.read(ctx)
		if now := c.now(); quick && now.Sub(lastQuick) >= quickGap {
			c.ceilings(ctx, now)
			quick, lastQuick = false, now
		}
		due := c.look(ctx)
		if quick && (due.IsZero() || lastQuick.Add(quickGap).Before(due)) {
			due = lastQuick.Add(quickGap)
		}
		wait := time.Hour
		if !due.IsZero() {
			wait = max(due.Sub(c.now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-c.failed:
			quick = true
		case <-timer.C:
		}
	}
}

// ceilings aborts, at once, every running rollout whose step window puts
// the canary past its error-rate ceiling.
func (c *Controller) ceilings(ctx context.Context, now time.Time) {
	c.mu.Lock()
	var over []*tracked
	for _, k := range c.order {
		t := c.routes[k]
		if t.status.State != stateRunning || t.off || t.status.Weight <= 0 || t.status.Weight >= 100 {
			continue
		}
		b, cn, ok := c.Counts.Comparison(k)
		if !ok {
			continue
		}
		b, cn = b.Sub(t.base[0]), cn.Sub(t.base[1])
		a := t.plan.Judge()
		need := uint64(a.MinRequests)
		if n := cn.Requests(); n >= need && b.Requests() >= need && float64(cn.Failures) > a.MaxErrorRate*float64(n) {
			over = append(over, t)
		}
	}
	c.mu.Unlock()
	for _, t := range over {
		c.judge(ctx, t, now)
	}
}

// read takes in the latest deployment served, if there is a new one: the
// rollouts it holds, each step's start (from the history) and window.
func (c *Controller) read(ctx context.Context) {
	c.mu.Lock()
	d := c.next
	c.next = nil
	c.mu.Unlock()
	if d == nil {
		return
	}
	cfg, err := config.Parse("deployment-"+strconv.FormatUint(d.ID, 10)+".yaml", []byte(d.Config))
	if err != nil {
		c.log().Error("rollouts: the deployment served does not parse; its rollouts are not driven", "deployment", d.ID, "error", err)
		return
	}
	routes := map[string]*tracked{}
	var order []string
	for _, r := range cfg.Routes {
		if r.Rollout == nil || r.Canary == nil {
			continue
		}
		k := route.Canonical(r.Match)
		step := r.Canary.Target() + "|" + strconv.FormatFloat(r.Canary.Weight, 'f', -1, 64) + "|" + r.Rollout.State
		// read and look run in Run's goroutine alone; c.mu guards what
		// Status reads.
		t := c.routes[k]
		if t == nil || t.step != step || t.status.Baseline != r.OnTarget() {
			prev := t
			t = &tracked{step: step}
			if prev != nil { // the verdict that moved the rollout stays on show
				t.status.Verdict, t.status.Judged = prev.status.Verdict, prev.status.Judged
			}
			// The weights so far are known once the route has been seen:
			// only the new step's start is read back then. (A 10,000-route
			// config takes ~100 ms to parse; a rollout's whole history is
			// read once per node start.)
			var known []Point
			if prev != nil && prev.status.Canary == r.Canary.Target() && prev.status.Baseline == r.OnTarget() {
				known = prev.status.Weights
			}
			t.status.Deployment, t.status.StepStarted, t.status.Weights = c.history(ctx, *d, k, step, known)
			t.base[0], t.base[1], _ = c.Counts.Comparison(k)
			t.nextLook = c.now()
		}
		c.mu.Lock()
		t.plan, t.off = *r.Rollout, r.Off
		t.status.Waiting = ""
		if r.Off {
			t.status.Waiting = "the route is switched off: `turnout route on` to go on"
		}
		s := &t.status
		s.Route, s.Baseline, s.Canary = r.Match, r.OnTarget(), r.Canary.Target()
		s.State = cmp.Or(r.Rollout.State, stateRunning)
		s.Steps, s.Weight = r.Rollout.Steps, r.Canary.Weight
		s.Step = stepOf(r.Rollout.Steps, r.Canary.Weight)
		s.StepFor, s.Interval = r.Rollout.StepFor.D(), r.Rollout.Interval.D()
		c.mu.Unlock()
		routes[k] = t
		order = append(order, k)
	}
	c.mu.Lock()
	c.routes, c.order = routes, order
	c.mu.Unlock()
}

// stepOf returns the 1-based number of steps at or below weight w.
func stepOf(steps []float64, w float64) int {
	n := 0
	for _, s := range steps {
		if s <= w {
			n++
		}
	}
	return n
}

// maxHistory bounds how far back history reads for a rollout's start.
const maxHistory = 64

// history finds, from deployment d back, the deployment that began route
// k's current step (the oldest of the run of deployments whose step is
// step) and the weight's points over the rollout, oldest first. With known
// points (the rollout's as this node last saw them), it reads back only to
// the step's start and appends to them.
func (c *Controller) history(ctx context.Context, d deploy.Deployment, k, step string, known []Point) (uint64, time.Time, []Point) {
	start, at := d.ID, d.Time
	var points []Point
	inStep := true
	cur := d
	var here Point // the current step's own point
	for range maxHistory {
		cfg, err := config.Parse("deployment.yaml", []byte(cur.Config))
		if err != nil {
			break
		}
		i := slices.IndexFunc(cfg.Routes, func(r config.Route) bool { return route.Canonical(r.Match) == k })
		if i < 0 || cfg.Routes[i].Rollout == nil || cfg.Routes[i].Canary == nil {
			break
		}
		r := cfg.Routes[i]
		s := r.Canary.Target() + "|" + strconv.FormatFloat(r.Canary.Weight, 'f', -1, 64) + "|" + r.Rollout.State
		if inStep && s == step {
			start, at = cur.ID, cur.Time
			here = Point{Deployment: cur.ID, Time: cur.Time, Weight: r.Canary.Weight, Cause: cur.Cause}
		} else {
			inStep = false
			if known != nil {
				break // the step's start is found; the points before it are known
			}
		}
		if len(points) == 0 || points[0].Weight != r.Canary.Weight {
			points = slices.Insert(points, 0, Point{Deployment: cur.ID, Time: cur.Time, Weight: r.Canary.Weight, Cause: cur.Cause})
		} else {
			points[0] = Point{Deployment: cur.ID, Time: cur.Time, Weight: r.Canary.Weight, Cause: cur.Cause}
		}
		if cur.ID <= 1 {
			break
		}
		prev, err := c.Service.Store.Get(ctx, cur.ID-1)
		if err != nil {
			break
		}
		cur = prev
	}
	if known != nil {
		points = slices.Clone(known)
		if n := len(points); n == 0 || points[n-1].Weight != here.Weight {
			points = append(points, here)
		}
	}
	return start, at, points
}

// look judges every rollout whose look is due and acts on the verdicts. It
// returns when the next look is due (zero: none).
func (c *Controller) look(ctx context.Context) time.Time {
	now := c.now()
	var next time.Time
	c.mu.Lock()
	var due []*tracked
	for _, k := range c.order {
		t := c.routes[k]
		if t.status.State != stateRunning || t.off {
			continue
		}
		if !t.nextLook.After(now) {
			t.nextLook = now.Add(cmp.Or(t.plan.Interval.D(), 10*time.Second))
			due = append(due, t)
		}
		if next.IsZero() || t.nextLook.Before(next) {
			next = t.nextLook
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		c.judge(ctx, t, now)
	}
	return next
}

// judge makes one look at rollout t.
func (c *Controller) judge(ctx context.Context, t *tracked, now time.Time) {
	c.mu.Lock()
	s, plan, base := t.status, t.plan, t.base
	c.mu.Unlock()
	from := s.Weight
	change := deploy.RolloutChange{Match: s.Route, From: &from, Author: "turnout"}
	inStep := now.Sub(s.StepStarted)
	switch {
	case s.Weight == 0:
		if g := plan.Shadow; g != nil {
			var n int64
			var rate float64
			if c.Shadows != nil {
				n, rate = c.Shadows.Gate(route.Canonical(s.Route))
			}
			if n < int64(g.MinCompared) || rate < g.MinMatchRate {
				c.mu.Lock()
				t.status.Waiting = fmt.Sprintf("waiting for the shadow: %d of %d requests compared, match rate %.2f%% (at least %v%%)", n, g.MinCompared, rate, g.MinMatchRate)
				c.mu.Unlock()
				return
			}
		}
		change.Action = deploy.RolloutStart
	case s.Weight >= 100:
		if inStep < plan.StepFor.D() {
			return
		}
		change.Action, change.Reason = deploy.RolloutPromote, "the canary served every request for "+plan.StepFor.D().String()
	default:
		b, cn, ok := c.Counts.Comparison(route.Canonical(s.Route))
		if !ok {
			return // the gateway does not serve this deployment's canary yet
		}
		b, cn = b.Sub(base[0]), cn.Sub(base[1])
		a := plan.Judge()
		var v judge.Verdict
		final := inStep >= plan.StepFor.D()
		if final {
			v = a.Judge(b, cn)
		} else {
			v = a.Interim(b, cn)
		}
		c.mu.Lock()
		t.status.Verdict, t.status.Judged = &v, now
		c.mu.Unlock()
		switch {
		case v.Decision == judge.Fail:
			change.Action, change.Reason = deploy.RolloutAbort, v.Reason
		case v.Decision == judge.Pass && final:
			i := slices.IndexFunc(plan.Steps, func(w float64) bool { return w > s.Weight })
			if i < 0 || plan.Steps[i] >= 100 {
				change.Action = deploy.RolloutPromote
			} else {
				change.Action, change.To = deploy.RolloutStep, plan.Steps[i]
			}
			change.Reason = v.Reason
		default:
			return
		}
	}
	d, err := c.Service.Rollout(ctx, change)
	var act *deploy.ActivateError
	switch {
	case errors.Is(err, deploy.ErrConflict):
		c.log().Debug("rollout: the route changed before this node's decision; judging it again", "route", s.Route, "action", change.Action, "error", err)
		return
	case errors.As(err, &act):
		err = nil // stored and active in the store; this node serves it once it can
	case err != nil && ctx.Err() != nil:
		return // the node is stopping
	}
	ev := deploy.AuditEvent{Actor: "turnout", Action: "rollout." + change.Action, Result: "ok", Detail: d.Cause, Deployment: d.ID}
	if err != nil {
		ev.Result, ev.Detail = "error", "rollout "+change.Action+" "+s.Route+": "+change.Reason+": "+err.Error()
		c.log().Error("rollout: the change failed; the next look tries again", "route", s.Route, "action", change.Action, "error", err)
	} else {
		c.log().Info("rollout "+change.Action, "route", s.Route, "deployment", d.ID, "cause", d.Cause)
	}
	c.Service.Store.Audit(ctx, ev)
}
