package config

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/judge"
	"go.yaml.in/yaml/v3"
)

// Rollout is a route's progressive rollout plan: the canary's weight goes
// through Steps, each held at least StepFor and judged against the route's
// baseline (internal/judge) every Interval; a failed judgement aborts the
// rollout, and passing the last step promotes the canary to the route's
// target (docs/rollouts.md). The plan's position is the canary's weight in
// the active deployment, and State, so a restarted node or another node of
// a fleet resumes it from the store: every step is a deployment.
//
// In a file, `rollout:` is a preset (`rollout: canary10-5m`, short for
// `rollout: {preset: canary10-5m}`) or a mapping of exactly the keys
// preset, steps, step_for, interval, min_requests, analysis, shadow and
// state; a preset stands for steps and step_for, so it is refused
// alongside them.
// A route with a rollout needs a canary (whose weight it sets: the
// canary's weight may then be left out, and is 0 until the rollout's first
// step). Parse fills in the defaults, so Steps, StepFor, Interval and
// MinRequests are always set on a parsed plan.
type Rollout struct {
	// Preset names the plan a CodeDeploy user knows: canaryN-D (N % for
	// D, then all: canary10-5m), linearN-D (N % more every D: linear10-1m),
	// with N a percent above 0 and below 100 (to 0.01) and D a Go duration
	// (30s, 5m, 1h), and CodeDeploy's own names as AWS writes them:
	// CanaryNPercentMMinutes (Canary10Percent5Minutes is canary10-5m) and
	// LinearNPercentEveryMMinute(s) (Linear10PercentEvery1Minute is
	// linear10-1m), optionally after "CodeDeployDefault.Lambda". Parse
	// expands it into Steps and StepFor and keeps Preset as written.
	// AllAtOnce is refused: it has nothing to judge.
	Preset string `yaml:"preset" json:"preset,omitempty"`
	// Steps are the canary's weights in percent, strictly ascending, each
	// above 0 and at most 100, to 0.01, at most 100 of them. Passing the
	// last one promotes the canary; a final 100 is the promotion itself
	// (the baseline gets no requests to compare with at 100 %), so [1, 5]
	// and [1, 5, 100] are the same plan. Default [1, 5, 25, 50, 100].
	Steps []float64 `yaml:"steps" json:"steps"`
	// StepFor is the least time each step is held. Default 5m.
	StepFor Duration `yaml:"step_for" json:"step_for"`
	// Interval is how often the step's window is judged, at most StepFor.
	// Default 10s, or StepFor when that is shorter.
	Interval Duration `yaml:"interval" json:"interval,omitempty"`
	// MinRequests is the requests each side needs in a step's window
	// before it is judged, at least 1. Default 200.
	MinRequests int `yaml:"min_requests" json:"min_requests,omitempty"`
	// Analysis holds the judge's thresholds: the keys error_alpha,
	// max_error_rate, latency_alpha, max_p99_ratio, latency_tolerance and
	// interim_alpha (its min_requests is the plan's, above, and not a key
	// of analysis:). Fields left out are 0 and take judge's defaults; a 0
	// written in the file is refused, since it would mean the default.
	Analysis judge.Analysis `yaml:"analysis" json:"analysis"`
	// Shadow, when set, holds the plan before its first step until the
	// route's shadow comparison has met it (docs/shadow.md): `shadow:
	// {min_compared: 1000, min_match_rate: 99.5%}`, both keys required. The
	// route must then have a shadow.
	Shadow *ShadowGate `yaml:"shadow" json:"shadow,omitempty"`
	// State is "" (running), RolloutPaused or RolloutAborted. `turnout
	// rollout pause|resume|abort|start` and the controller set it; the file
	// may also say running, which Parse stores as "".
	State string `yaml:"state" json:"state,omitempty"`
}

// The states of a rollout besides running ("").
const (
	RolloutPaused  = "paused"
	RolloutAborted = "aborted"
)

// The defaults Parse fills into a rollout plan.
const (
	DefaultRolloutStepFor  = Duration(5 * time.Minute)
	DefaultRolloutInterval = Duration(10 * time.Second)
)

// DefaultRolloutSteps returns the steps of a plan that names none.
func DefaultRolloutSteps() []float64 { return []float64{1, 5, 25, 50, 100} }

// maxRolloutSteps bounds a plan's steps (and a linear preset's): each is a
// deployment in the history.
const maxRolloutSteps = 100

// Judge returns the thresholds the plan's steps are judged with, MinRequests
// included, defaults filled in.
func (r Rollout) Judge() judge.Analysis {
	a := r.Analysis
	a.MinRequests = r.MinRequests
	return a.WithDefaults()
}

// MarshalYAML writes the plan as a file says it, so that what Parse
// returns encodes back into a file Parse accepts with the same meaning: a
// preset without the steps and step_for it stands for, only the analysis
// keys that are set, and no state when running.
func (r Rollout) MarshalYAML() (any, error) {
	type analysis struct {
		ErrorAlpha       float64  `yaml:"error_alpha,omitempty"`
		MaxErrorRate     float64  `yaml:"max_error_rate,omitempty"`
		LatencyAlpha     float64  `yaml:"latency_alpha,omitempty"`
		MaxP99Ratio      float64  `yaml:"max_p99_ratio,omitempty"`
		LatencyTolerance float64  `yaml:"latency_tolerance,omitempty"`
		InterimAlpha     float64  `yaml:"interim_alpha,omitempty"`
		MinLatencyShift  Duration `yaml:"min_latency_shift,omitempty"`
	}
	type plan struct {
		Preset      string      `yaml:"preset,omitempty"`
		Steps       []float64   `yaml:"steps,omitempty,flow"`
		StepFor     Duration    `yaml:"step_for,omitempty"`
		Interval    Duration    `yaml:"interval,omitempty"`
		MinRequests int         `yaml:"min_requests,omitempty"`
		Analysis    *analysis   `yaml:"analysis,omitempty"`
		Shadow      *ShadowGate `yaml:"shadow,omitempty,flow"`
		State       string      `yaml:"state,omitempty"`
	}
	p := plan{Preset: r.Preset, Steps: r.Steps, StepFor: r.StepFor, Interval: r.Interval, MinRequests: r.MinRequests, Shadow: r.Shadow, State: r.State}
	if r.Preset != "" {
		p.Steps, p.StepFor = nil, 0
	}
	if a := r.Analysis; a != (judge.Analysis{MinRequests: a.MinRequests}) { // an analysis key is set
		p.Analysis = &analysis{a.ErrorAlpha, a.MaxErrorRate, a.LatencyAlpha, a.MaxP99Ratio, a.LatencyTolerance, a.InterimAlpha, Duration(a.MinLatencyShift)}
	}
	return p, nil
}

var rolloutKeys = []string{"preset", "steps", "step_for", "interval", "min_requests", "analysis", "shadow", "state"}

// analysisKeys are the keys of rollout.analysis, each with its field of
// judge.Analysis.
var analysisKeys = []struct {
	key   string
	field func(*judge.Analysis) *float64
}{
	{"error_alpha", func(a *judge.Analysis) *float64 { return &a.ErrorAlpha }},
	{"max_error_rate", func(a *judge.Analysis) *float64 { return &a.MaxErrorRate }},
	{"latency_alpha", func(a *judge.Analysis) *float64 { return &a.LatencyAlpha }},
	{"max_p99_ratio", func(a *judge.Analysis) *float64 { return &a.MaxP99Ratio }},
	{"latency_tolerance", func(a *judge.Analysis) *float64 { return &a.LatencyTolerance }},
	{"interim_alpha", func(a *judge.Analysis) *float64 { return &a.InterimAlpha }},
}

const rolloutExample = `rollout: {steps: [1, 5, 25, 50, 100], step_for: 5m}`

// rollout decodes routes[i].rollout (what): a preset or a plan, noting
// its shadow gate's position in rp.
func (d *decoder) rollout(v *yaml.Node, what string, rp *routePos) *Rollout {
	r := &Rollout{}
	// The nodes of the keys written, for the checks between them.
	var preset, steps, stepFor, interval *yaml.Node
	switch v.Kind {
	case yaml.ScalarNode:
		preset = v
		d.preset(v, what, r)
	case yaml.MappingNode:
		d.fields(v, what, rolloutKeys, func(key string, k, v *yaml.Node) {
			w := what + "." + key
			switch key {
			case "preset":
				preset = k
				d.preset(v, w, r)
			case "steps":
				steps = k
				r.Steps = d.steps(v, w)
			case "step_for":
				stepFor = k
				d.duration(v, w, &r.StepFor, "the default 5m")
			case "interval":
				interval = v
				d.duration(v, w, &r.Interval, "the default 10s")
			case "min_requests":
				d.intField(v, w, &r.MinRequests, 1, fmt.Sprintf("omit it for the default %d", judge.DefaultMinRequests))
			case "analysis":
				d.analysis(v, w, &r.Analysis)
			case "shadow":
				rp.rolloutShadow = d.pos(k)
				r.Shadow = d.shadowGate(v, w)
			case "state":
				s, ok := d.str(v, w)
				switch {
				case !ok:
				case s == "running":
					r.State = ""
				case s == RolloutPaused || s == RolloutAborted:
					r.State = s
				default:
					d.errorf(v, "%s %q must be running, paused or aborted (turnout rollout pause, resume and abort set it)", w, s)
				}
			}
		})
	default:
		d.errorf(v, "%s must be a preset, like rollout: canary10-5m, or a plan, like %s, got %s", what, rolloutExample, describe(v))
		return r
	}
	if preset != nil { // steps and step_for are keys of a mapping, and so is preset then
		for _, other := range []*yaml.Node{steps, stepFor} {
			if other != nil {
				later := other
				if before(d.pos(other), d.pos(preset)) {
					later = preset
				}
				d.errorf(later, "%s sets both preset and %s: a preset stands for its steps and step_for, keep one", what, other.Value)
			}
		}
	}

	if r.Steps == nil && steps == nil && preset == nil {
		r.Steps = DefaultRolloutSteps()
	}
	if r.StepFor == 0 && stepFor == nil && preset == nil {
		r.StepFor = DefaultRolloutStepFor
	}
	r.MinRequests = cmp.Or(r.MinRequests, judge.DefaultMinRequests)
	switch {
	case r.StepFor == 0: // not valid: reported
	case interval == nil:
		r.Interval = min(DefaultRolloutInterval, r.StepFor)
	case r.Interval > r.StepFor:
		d.errorf(interval, "%s.interval %s is longer than step_for %s: a step is judged at least once before it ends, so make interval at most step_for", what, shortDuration(r.Interval.D()), shortDuration(r.StepFor.D()))
	}
	return r
}

// steps decodes rollout.steps (what).
func (d *decoder) steps(v *yaml.Node, what string) []float64 {
	items, ok := d.list(v, what, "[1, 5, 25, 50, 100]")
	if !ok {
		return nil
	}
	if err := checkStepCount(len(items)); err != nil {
		d.errorf(v, "%s %v", what, err)
		return nil
	}
	out := make([]float64, 0, len(items))
	last := -1 // the index of the last step taken, which the next must be above
	for j, it := range items {
		w := fmt.Sprintf("%s[%d]", what, j)
		f, ok := d.percent(it, w, "%s")
		switch {
		case !ok:
		case f == 0:
			d.errorf(it, "%s must be above 0: weight 0 is where a rollout starts from, before its first step", w)
		case last >= 0 && f <= out[len(out)-1]:
			d.errorf(it, "%s %s is not above %s[%d] %s: list the weights in ascending order, each once", w, it.Value, what, last, items[last].Value)
		default:
			out, last = append(out, f), j
		}
	}
	if len(out) != len(items) {
		return nil
	}
	if len(out) == 1 && out[0] == 100 {
		d.errorf(v, "%s [100] moves every request at once with nothing judged: add the steps before it, like [10, 100], or make the canary the route's target", what)
		return nil
	}
	return out
}

// checkStepCount reports a plan with no steps or too many.
func checkStepCount(n int) error {
	switch {
	case n == 0:
		return fmt.Errorf("is empty: list the canary's weights in percent, like steps: [1, 5, 25, 50, 100], or omit it for those")
	case n > maxRolloutSteps:
		return fmt.Errorf("has %d steps, more than %d: each step is a deployment; take fewer, larger steps", n, maxRolloutSteps)
	}
	return nil
}

// analysis decodes rollout.analysis (what) into a.
func (d *decoder) analysis(v *yaml.Node, what string, a *judge.Analysis) {
	keys := make([]string, len(analysisKeys), len(analysisKeys)+1)
	for i, k := range analysisKeys {
		keys[i] = k.key
	}
	keys = append(keys, "min_latency_shift") // a duration, not a number
	defaults := judge.Analysis{}.WithDefaults()
	d.fields(v, what, keys, func(key string, _, v *yaml.Node) {
		w := what + "." + key
		if key == "min_latency_shift" {
			var shift Duration
			d.duration(v, w, &shift, "the default "+defaults.MinLatencyShift.String())
			if shift > Duration(time.Hour) {
				d.errorf(v, "%s %v is over 1h: a latency difference below it never fails the canary", w, shift)
				return
			}
			a.MinLatencyShift = shift.D()
			return
		}
		for _, k := range analysisKeys {
			if k.key != key {
				continue
			}
			s, ok := d.str(v, w)
			if !ok {
				return
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || v.Tag != "!!int" && v.Tag != "!!float" || math.IsNaN(f) || math.IsInf(f, 0) {
				d.errorf(v, "%s must be a number, like %s: %v, got %s", w, key, *k.field(&defaults), describe(v))
				return
			}
			if f == 0 {
				d.errorf(v, "%s 0 would take the default %v: omit it for the default, or write the value you mean", w, *k.field(&defaults))
				return
			}
			// judge.Analysis.Validate holds the ranges: give it this field alone.
			var one judge.Analysis
			*k.field(&one) = f
			if err := one.Validate(); err != nil {
				d.errorf(v, "%s.%v", strings.TrimSuffix(what, ".analysis"), err)
				return
			}
			*k.field(a) = f
		}
	})
}

// The forms of a preset: turnout's, and CodeDeploy's (for Lambda, with or
// without the "CodeDeployDefault.Lambda" of its predefined configurations).
var (
	presetOurs      = regexp.MustCompile(`^(canary|linear)([0-9]+(?:\.[0-9]+)?)-(.*)$`)
	presetAWSCanary = regexp.MustCompile(`^(?:CodeDeployDefault\.Lambda)?Canary([0-9]+)Percent([0-9]+)Minutes?$`)
	presetAWSLinear = regexp.MustCompile(`^(?:CodeDeployDefault\.Lambda)?Linear([0-9]+)PercentEvery([0-9]+)Minutes?$`)
	presetAllAtOnce = regexp.MustCompile(`(?i)^(?:CodeDeployDefault\.Lambda)?(AllAtOnce|all-at-once)$`)
)

const presetForms = "write canaryN-D (N % of the requests for D, then all), linearN-D (N % more every D), or CodeDeploy's CanaryNPercentMMinutes or LinearNPercentEveryMMinutes, like canary10-5m or Linear10PercentEvery1Minute"

// preset decodes a preset (what) into r.Preset, r.Steps and r.StepFor.
func (d *decoder) preset(v *yaml.Node, what string, r *Rollout) {
	s, ok := d.str(v, what)
	if !ok {
		return
	}
	steps, stepFor, err := ParsePreset(s)
	if err != nil {
		d.errorf(v, "%s %q %v", what, s, err)
		return
	}
	r.Preset, r.Steps, r.StepFor = s, steps, Duration(stepFor)
}

// ParsePreset returns the steps and step time preset stands for (see
// Rollout.Preset), or says why it is not a preset.
func ParsePreset(preset string) (steps []float64, stepFor time.Duration, err error) {
	var kind, n, dur string
	if m := presetOurs.FindStringSubmatch(preset); m != nil {
		kind, n, dur = m[1], m[2], m[3]
		t, err := time.ParseDuration(dur)
		switch {
		case err != nil && strings.Trim(dur, "0123456789.") == "" && dur != "":
			return nil, 0, fmt.Errorf("has no unit on its duration: write it like %s%s-%sm (units: ms, s, m, h)", kind, n, dur)
		case err != nil:
			return nil, 0, fmt.Errorf("ends in %q, not a duration: write it like %s%s-5m (units: ms, s, m, h)", dur, kind, n)
		case t <= 0:
			return nil, 0, fmt.Errorf("holds each step for %s: write a duration above 0, like %s%s-5m", dur, kind, n)
		}
		stepFor = t
	} else if m := presetAWSCanary.FindStringSubmatch(preset); m != nil {
		kind, n, dur = "canary", m[1], m[2]
	} else if m := presetAWSLinear.FindStringSubmatch(preset); m != nil {
		kind, n, dur = "linear", m[1], m[2]
	} else if presetAllAtOnce.MatchString(preset) {
		return nil, 0, fmt.Errorf("moves every request at once, with nothing to judge: to move the route at once, make the canary its target (function: NAME), or run turnout rollout promote ROUTE on a running rollout")
	} else if fix := presetSpelling(preset); fix != "" {
		return nil, 0, fmt.Errorf("is not a preset: presets are case-sensitive; did you mean %s?", fix)
	} else {
		return nil, 0, fmt.Errorf("is not a preset: %s", presetForms)
	}
	if stepFor == 0 { // CodeDeploy's whole minutes
		m, err := strconv.Atoi(dur)
		if err != nil || m < 1 || m > 1_000_000 {
			return nil, 0, fmt.Errorf("holds each step for %s minutes: write a whole number of minutes from 1 to 1000000", dur)
		}
		stepFor = time.Duration(m) * time.Minute
	}
	pct, err := strconv.ParseFloat(n, 64)
	hundredths := math.Round(pct * 100)
	switch {
	case err != nil || pct <= 0 || pct >= 100:
		return nil, 0, fmt.Errorf("moves %s %%: write a percent above 0 and below 100 (the promotion to 100 %% follows the preset's steps)", n)
	case math.Abs(pct*100-hundredths) > 1e-6:
		return nil, 0, fmt.Errorf("moves %s %%, finer than the split's resolution of 0.01 %%: round it to two decimals", n)
	}
	if kind == "canary" {
		return []float64{hundredths / 100}, stepFor, nil
	}
	// linear: N, 2N, … below 100 %, counted in hundredths so that no sum
	// drifts; the promotion follows the last.
	count := int(math.Ceil(10000/hundredths)) - 1
	if err := checkStepCount(count); err != nil {
		return nil, 0, fmt.Errorf("makes %d steps, more than %d: each step is a deployment; take a larger percent", count, maxRolloutSteps)
	}
	steps = make([]float64, count)
	for i := range steps {
		steps[i] = float64(i+1) * hundredths / 100
	}
	return steps, stepFor, nil
}

// presetSpellings find a preset written in another case, and spell it
// right from the parts the user wrote (numbers, a duration).
var presetSpellings = []struct {
	re    *regexp.Regexp
	spell func(m []string) string
}{
	{regexp.MustCompile("(?i)" + presetOurs.String()), func(m []string) string { return strings.ToLower(m[0]) }},
	{regexp.MustCompile("(?i)" + presetAWSCanary.String()), func(m []string) string {
		return "Canary" + m[1] + "Percent" + m[2] + minutes(m[2])
	}},
	{regexp.MustCompile("(?i)" + presetAWSLinear.String()), func(m []string) string {
		return "Linear" + m[1] + "PercentEvery" + m[2] + minutes(m[2])
	}},
}

// presetSpelling returns the preset s spells in another case ("Canary10-5m"
// → canary10-5m, "canary10percent5minutes" → Canary10Percent5Minutes), or "".
func presetSpelling(s string) string {
	for _, p := range presetSpellings {
		if m := p.re.FindStringSubmatch(s); m != nil {
			return p.spell(m)
		}
	}
	return ""
}

// minutes is "Minute" after 1 and "Minutes" after any other number, as AWS
// writes its names.
func minutes(n string) string {
	if n == "1" {
		return "Minute"
	}
	return "Minutes"
}

// shortDuration formats t without the zero units time.Duration.String
// adds: 1m, not 1m0s.
func shortDuration(t time.Duration) string {
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// validateRollouts checks that a route with a rollout has the canary it
// moves the route to.
func (d *decoder) validateRollouts(c *Config) {
	for i, r := range c.Routes {
		if r.Rollout != nil && r.Canary == nil && d.routes[i].canary == (Pos{}) {
			d.errorAt(d.routes[i].rollout, fmt.Sprintf("routes[%d].rollout moves the route to its canary, and it has none: add canary: with the new target, like canary: {function: users-v2} (the rollout sets its weight)", i))
		}
	}
}
