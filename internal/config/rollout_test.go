package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/judge"
	"go.yaml.in/yaml/v3"
)

// rolloutConfig is a file whose one route has a canary and the rollout
// written after "rollout: " on line 9 (its value starts at column 14).
func rolloutConfig(rollout string) string {
	return `origins:
  legacy: {url: http://127.0.0.1:9000}
functions:
  users-v2: {handler: ./bin/users-v2}
routes:
  - match: "GET /users/{id}"
    origin: legacy
    canary: {function: users-v2}
    rollout: ` + rollout + "\n"
}

// parseRollout parses rolloutConfig(rollout) and returns the route's plan.
func parseRollout(t *testing.T, rollout string) *Rollout {
	t.Helper()
	c, err := Parse("r.yaml", []byte(rolloutConfig(rollout)))
	if err != nil {
		t.Fatalf("rollout: %s: %v", rollout, err)
	}
	if c.Routes[0].Rollout == nil {
		t.Fatalf("rollout: %s: no plan", rollout)
	}
	return c.Routes[0].Rollout
}

func TestRolloutPresets(t *testing.T) {
	linear := func(n float64, count int) []float64 {
		s := make([]float64, count)
		for i := range s {
			s[i] = float64(i+1) * n
		}
		return s
	}
	for _, tc := range []struct {
		preset  string
		steps   []float64
		stepFor time.Duration
	}{
		{"canary10-5m", []float64{10}, 5 * time.Minute},
		{"canary0.5-30s", []float64{0.5}, 30 * time.Second},
		{"canary99.99-1h", []float64{99.99}, time.Hour},
		{"canary10-200ms", []float64{10}, 200 * time.Millisecond},
		{"linear10-1m", linear(10, 9), time.Minute},
		{"linear25-90s", []float64{25, 50, 75}, 90 * time.Second},
		{"linear30-1m", []float64{30, 60, 90}, time.Minute},
		{"linear50-1m", []float64{50}, time.Minute},
		{"linear60-1m", []float64{60}, time.Minute},
		{"linear33.33-2m", []float64{33.33, 66.66, 99.99}, 2 * time.Minute},
		{"linear1-1s", linear(1, 99), time.Second},
		// CodeDeploy's predefined configurations for Lambda, as AWS
		// writes them, with and without their prefix.
		{"Canary10Percent5Minutes", []float64{10}, 5 * time.Minute},
		{"Canary10Percent10Minutes", []float64{10}, 10 * time.Minute},
		{"Canary10Percent15Minutes", []float64{10}, 15 * time.Minute},
		{"Canary10Percent30Minutes", []float64{10}, 30 * time.Minute},
		{"CodeDeployDefault.LambdaCanary10Percent5Minutes", []float64{10}, 5 * time.Minute},
		{"Linear10PercentEvery1Minute", linear(10, 9), time.Minute},
		{"Linear10PercentEvery2Minutes", linear(10, 9), 2 * time.Minute},
		{"Linear10PercentEvery3Minutes", linear(10, 9), 3 * time.Minute},
		{"Linear10PercentEvery10Minutes", linear(10, 9), 10 * time.Minute},
		{"CodeDeployDefault.LambdaLinear10PercentEvery1Minute", linear(10, 9), time.Minute},
		{"Linear20PercentEvery1Minute", []float64{20, 40, 60, 80}, time.Minute},
	} {
		steps, stepFor, err := ParsePreset(tc.preset)
		if err != nil || !reflect.DeepEqual(steps, tc.steps) || stepFor != tc.stepFor {
			t.Errorf("ParsePreset(%q) = %v, %v, %v; want %v, %v", tc.preset, steps, stepFor, err, tc.steps, tc.stepFor)
			continue
		}
		// Parse expands it the same way in both forms, keeping the name.
		short := parseRollout(t, tc.preset)
		long := parseRollout(t, "{preset: "+tc.preset+"}")
		if !reflect.DeepEqual(short, long) {
			t.Errorf("rollout: %s parses to %+v, rollout: {preset: %s} to %+v", tc.preset, short, tc.preset, long)
		}
		if short.Preset != tc.preset || !reflect.DeepEqual(short.Steps, tc.steps) || short.StepFor.D() != tc.stepFor {
			t.Errorf("rollout: %s parses to %+v", tc.preset, short)
		}
	}
}

func TestRolloutDefaults(t *testing.T) {
	for _, tc := range []struct {
		rollout string
		want    Rollout
	}{
		{"{}", Rollout{Steps: []float64{1, 5, 25, 50, 100}, StepFor: Duration(5 * time.Minute), Interval: Duration(10 * time.Second), MinRequests: 200}},
		{"canary10-5m", Rollout{Preset: "canary10-5m", Steps: []float64{10}, StepFor: Duration(5 * time.Minute), Interval: Duration(10 * time.Second), MinRequests: 200}},
		// The interval defaults to a step's time when that is shorter.
		{"canary10-200ms", Rollout{Preset: "canary10-200ms", Steps: []float64{10}, StepFor: Duration(200 * time.Millisecond), Interval: Duration(200 * time.Millisecond), MinRequests: 200}},
		{"{step_for: 5s}", Rollout{Steps: []float64{1, 5, 25, 50, 100}, StepFor: Duration(5 * time.Second), Interval: Duration(5 * time.Second), MinRequests: 200}},
		{"{steps: [0.5, 2.25, 50], step_for: 1m, interval: 1m, min_requests: 1, state: paused}",
			Rollout{Steps: []float64{0.5, 2.25, 50}, StepFor: Duration(time.Minute), Interval: Duration(time.Minute), MinRequests: 1, State: RolloutPaused}},
		{"{preset: linear50-30s, interval: 5s, min_requests: 500, state: aborted}",
			Rollout{Preset: "linear50-30s", Steps: []float64{50}, StepFor: Duration(30 * time.Second), Interval: Duration(5 * time.Second), MinRequests: 500, State: RolloutAborted}},
		{"{state: running}", Rollout{Steps: []float64{1, 5, 25, 50, 100}, StepFor: Duration(5 * time.Minute), Interval: Duration(10 * time.Second), MinRequests: 200}},
		{"{analysis: {error_alpha: 0.05, max_error_rate: 1, latency_alpha: 0.001, max_p99_ratio: 2, latency_tolerance: 0.0001, interim_alpha: 0.0005, min_latency_shift: 250us}}",
			Rollout{Steps: []float64{1, 5, 25, 50, 100}, StepFor: Duration(5 * time.Minute), Interval: Duration(10 * time.Second), MinRequests: 200,
				Analysis: judge.Analysis{ErrorAlpha: 0.05, MaxErrorRate: 1, LatencyAlpha: 0.001, MaxP99Ratio: 2, LatencyTolerance: 0.0001, InterimAlpha: 0.0005, MinLatencyShift: 250 * time.Microsecond}}},
	} {
		if got := parseRollout(t, tc.rollout); !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("rollout: %s\n got %+v\nwant %+v", tc.rollout, *got, tc.want)
		}
	}
}

func TestRolloutJudge(t *testing.T) {
	a := parseRollout(t, "{min_requests: 50, analysis: {max_p99_ratio: 3}}").Judge()
	want := judge.Analysis{MinRequests: 50, MaxP99Ratio: 3}.WithDefaults()
	if a != want {
		t.Errorf("Judge() = %+v, want %+v", a, want)
	}
}

// TestRolloutCanaryWeight: a rollout sets its canary's weight, so the
// weight may be left out; without a rollout it is required.
func TestRolloutCanaryWeight(t *testing.T) {
	c, err := Parse("r.yaml", []byte(rolloutConfig("canary10-5m")))
	if err != nil {
		t.Fatal(err)
	}
	if cn := c.Routes[0].Canary; cn == nil || cn.Function != "users-v2" || cn.Weight != 0 {
		t.Errorf("canary = %+v, want users-v2 at weight 0", cn)
	}
	file := strings.Replace(rolloutConfig("canary10-5m"), "canary: {function: users-v2}", "canary: {function: users-v2, weight: 10}", 1)
	if c, err := Parse("r.yaml", []byte(file)); err != nil || c.Routes[0].Canary.Weight != 10 {
		t.Errorf("a rollout with its canary at a weight: %v", err)
	}
	noRollout := strings.TrimSuffix(rolloutConfig(""), "    rollout: \n")
	checkErrors(t, noRollout, `r.yaml:8:13: routes[0].canary has no weight: add the percent of the route's requests the canary serves, like canary: {function: users-v2, weight: 5, sticky: "header:X-User-Id"} (or add rollout: to move it step by step)`)
}

// checkErrors parses file and checks that it fails with exactly want, one
// "file:line:col: msg" a line.
func checkErrors(t *testing.T, file string, want ...string) {
	t.Helper()
	c, err := Parse("r.yaml", []byte(file))
	var list ErrorList
	if !errors.As(err, &list) || c != nil {
		t.Errorf("%s\nParse = %v, %v; want errors", file, c, err)
		return
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("%s\n got %s\nwant %s", file, got, strings.Join(want, "\n"))
	}
}

func TestRolloutErrors(t *testing.T) {
	const forms = "write canaryN-D (N % of the requests for D, then all), linearN-D (N % more every D), or CodeDeploy's CanaryNPercentMMinutes or LinearNPercentEveryMMinutes, like canary10-5m or Linear10PercentEvery1Minute"
	const allAtOnce = "moves every request at once, with nothing to judge: to move the route at once, make the canary its target (function: NAME), or run turnout rollout promote ROUTE on a running rollout"
	for _, tc := range []struct {
		rollout string
		want    []string // "line:col: msg", after "r.yaml:"
	}{
		// The shape.
		{"[canary10-5m]", []string{`9:14: routes[0].rollout must be a preset, like rollout: canary10-5m, or a plan, like rollout: {steps: [1, 5, 25, 50, 100], step_for: 5m}, got a list`}},
		{"{steps: [1, 5], percent: 5}", []string{`9:30: unknown key "percent" in routes[0].rollout (valid keys: preset, steps, step_for, interval, min_requests, analysis, shadow, state)`}},
		{"{stepfor: 1m}", []string{`9:15: unknown key "stepfor" in routes[0].rollout: did you mean "step_for"? (valid keys: preset, steps, step_for, interval, min_requests, analysis, shadow, state)`}},

		// Presets.
		{"canary10", []string{`9:14: routes[0].rollout "canary10" is not a preset: ` + forms}},
		{"blue-green", []string{`9:14: routes[0].rollout "blue-green" is not a preset: ` + forms}},
		{"{preset: 10}", []string{`9:23: routes[0].rollout.preset "10" is not a preset: ` + forms}},
		{"AllAtOnce", []string{`9:14: routes[0].rollout "AllAtOnce" ` + allAtOnce}},
		{"CodeDeployDefault.LambdaAllAtOnce", []string{`9:14: routes[0].rollout "CodeDeployDefault.LambdaAllAtOnce" ` + allAtOnce}},
		{"{preset: AllAtOnce}", []string{`9:23: routes[0].rollout.preset "AllAtOnce" ` + allAtOnce}},
		{"canary10percent5minutes", []string{`9:14: routes[0].rollout "canary10percent5minutes" is not a preset: presets are case-sensitive; did you mean Canary10Percent5Minutes?`}},
		{"LINEAR10PERCENTEVERY1MINUTE", []string{`9:14: routes[0].rollout "LINEAR10PERCENTEVERY1MINUTE" is not a preset: presets are case-sensitive; did you mean Linear10PercentEvery1Minute?`}},
		{"Canary10-5M", []string{`9:14: routes[0].rollout "Canary10-5M" is not a preset: presets are case-sensitive; did you mean canary10-5m?`}},
		{"canary10-5", []string{`9:14: routes[0].rollout "canary10-5" has no unit on its duration: write it like canary10-5m (units: ms, s, m, h)`}},
		{"canary10-soon", []string{`9:14: routes[0].rollout "canary10-soon" ends in "soon", not a duration: write it like canary10-5m (units: ms, s, m, h)`}},
		{"canary10-0s", []string{`9:14: routes[0].rollout "canary10-0s" holds each step for 0s: write a duration above 0, like canary10-5m`}},
		{"canary0-5m", []string{`9:14: routes[0].rollout "canary0-5m" moves 0 %: write a percent above 0 and below 100 (the promotion to 100 % follows the preset's steps)`}},
		{"canary100-5m", []string{`9:14: routes[0].rollout "canary100-5m" moves 100 %: write a percent above 0 and below 100 (the promotion to 100 % follows the preset's steps)`}},
		{"linear0.001-5m", []string{`9:14: routes[0].rollout "linear0.001-5m" moves 0.001 %, finer than the split's resolution of 0.01 %: round it to two decimals`}},
		{"linear0.5-1m", []string{`9:14: routes[0].rollout "linear0.5-1m" makes 199 steps, more than 100: each step is a deployment; take a larger percent`}},
		{"Canary10Percent0Minutes", []string{`9:14: routes[0].rollout "Canary10Percent0Minutes" holds each step for 0 minutes: write a whole number of minutes from 1 to 1000000`}},
		{"Canary0Percent5Minutes", []string{`9:14: routes[0].rollout "Canary0Percent5Minutes" moves 0 %: write a percent above 0 and below 100 (the promotion to 100 % follows the preset's steps)`}},
		// A preset stands for steps and step_for.
		{"{preset: canary10-5m, steps: [10]}", []string{`9:36: routes[0].rollout sets both preset and steps: a preset stands for its steps and step_for, keep one`}},
		{"{step_for: 1m, preset: canary10-5m}", []string{`9:29: routes[0].rollout sets both preset and step_for: a preset stands for its steps and step_for, keep one`}},

		// Steps.
		{"{steps: []}", []string{`9:22: routes[0].rollout.steps is empty: list the canary's weights in percent, like steps: [1, 5, 25, 50, 100], or omit it for those`}},
		{"{steps: 5}", []string{`9:22: routes[0].rollout.steps must be a list, like [1, 5, 25, 50, 100], got "5"`}},
		{"{steps: [1, 5%, 50]}", []string{`9:26: routes[0].rollout.steps[1] "5%": write the percent as a plain number, without %, like 5`}},
		{"{steps: [1, five]}", []string{`9:26: routes[0].rollout.steps[1] must be a percent from 0 to 100, like 5, got "five"`}},
		{"{steps: [0, 50]}", []string{`9:23: routes[0].rollout.steps[0] must be above 0: weight 0 is where a rollout starts from, before its first step`}},
		{"{steps: [50, 101]}", []string{`9:27: routes[0].rollout.steps[1] 101 is outside 0-100: it is the percent of the route's requests the canary serves`}},
		{"{steps: [-1]}", []string{`9:23: routes[0].rollout.steps[0] -1 is outside 0-100: it is the percent of the route's requests the canary serves`}},
		{"{steps: [0.005]}", []string{`9:23: routes[0].rollout.steps[0] 0.005 is finer than the split's resolution of 0.01 %: round it to two decimals`}},
		{"{steps: [5, 25, 25, 10, 50]}", []string{
			`9:30: routes[0].rollout.steps[2] 25 is not above routes[0].rollout.steps[1] 25: list the weights in ascending order, each once`,
			`9:34: routes[0].rollout.steps[3] 10 is not above routes[0].rollout.steps[1] 25: list the weights in ascending order, each once`}},
		{"{steps: [100]}", []string{`9:22: routes[0].rollout.steps [100] moves every request at once with nothing judged: add the steps before it, like [10, 100], or make the canary the route's target`}},
		{"{steps: [" + strings.Repeat("1, ", 100) + "2]}", []string{`9:22: routes[0].rollout.steps has 101 steps, more than 100: each step is a deployment; take fewer, larger steps`}},

		// Times.
		{"{step_for: 0s}", []string{`9:25: routes[0].rollout.step_for must be longer than 0; omit it for the default 5m`}},
		{"{step_for: 5}", []string{`9:25: routes[0].rollout.step_for 5 has no unit: use a Go duration like "5s" or "5ms"`}},
		{"{interval: -1s}", []string{`9:25: routes[0].rollout.interval must not be negative, got -1s`}},
		{"{step_for: 30s, interval: 1m}", []string{`9:40: routes[0].rollout.interval 1m is longer than step_for 30s: a step is judged at least once before it ends, so make interval at most step_for`}},
		{"{interval: 10m}", []string{`9:25: routes[0].rollout.interval 10m is longer than step_for 5m: a step is judged at least once before it ends, so make interval at most step_for`}},
		{"{preset: canary10-30s, interval: 1m30s}", []string{`9:47: routes[0].rollout.interval 1m30s is longer than step_for 30s: a step is judged at least once before it ends, so make interval at most step_for`}},
		{"{min_requests: 0}", []string{`9:29: routes[0].rollout.min_requests must be at least 1, got 0; omit it for the default 200`}},
		{"{state: stopped}", []string{`9:22: routes[0].rollout.state "stopped" must be running, paused or aborted (turnout rollout pause, resume and abort set it)`}},

		// Analysis.
		{"{analysis: {min_requests: 10}}", []string{`9:26: unknown key "min_requests" in routes[0].rollout.analysis (valid keys: error_alpha, max_error_rate, latency_alpha, max_p99_ratio, latency_tolerance, interim_alpha, min_latency_shift)`}},
		{"{analysis: 0.01}", []string{`9:25: routes[0].rollout.analysis must be a mapping of keys to values, got "0.01"`}},
		{"{analysis: {error_alpha: 0.7}}", []string{`9:39: routes[0].rollout.analysis.error_alpha 0.7: must be above 0 and at most 0.5 (default 0.01)`}},
		{"{analysis: {min_latency_shift: 2h}}", []string{`9:45: routes[0].rollout.analysis.min_latency_shift 2h0m0s is over 1h: a latency difference below it never fails the canary`}},
		{"{analysis: {min_latency_shift: 5}}", []string{`9:45: routes[0].rollout.analysis.min_latency_shift 5 has no unit: use a Go duration like "5s" or "5ms"`}},
		{"{analysis: {latency_alpha: -0.01}}", []string{`9:41: routes[0].rollout.analysis.latency_alpha -0.01: must be above 0 and at most 0.5 (default 0.01)`}},
		{"{analysis: {interim_alpha: 1}}", []string{`9:41: routes[0].rollout.analysis.interim_alpha 1: must be above 0 and at most 0.5 (default 0.001)`}},
		{"{analysis: {max_error_rate: 5}}", []string{`9:42: routes[0].rollout.analysis.max_error_rate 5: must be above 0 and at most 1 (0.05 = 5 %; 1 turns the ceiling off)`}},
		{"{analysis: {max_p99_ratio: 0.9}}", []string{`9:41: routes[0].rollout.analysis.max_p99_ratio 0.9: must be at least 1 (default 1.5)`}},
		{"{analysis: {latency_tolerance: 11}}", []string{`9:45: routes[0].rollout.analysis.latency_tolerance 11: must be between 0 and 10 (0.05 = 5 %, the default)`}},
		{"{analysis: {error_alpha: 0}}", []string{`9:39: routes[0].rollout.analysis.error_alpha 0 would take the default 0.01: omit it for the default, or write the value you mean`}},
		{"{analysis: {max_error_rate: 5%}}", []string{`9:42: routes[0].rollout.analysis.max_error_rate must be a number, like max_error_rate: 0.05, got "5%"`}},
		{"{analysis: {max_p99_ratio: .inf}}", []string{`9:41: routes[0].rollout.analysis.max_p99_ratio must be a number, like max_p99_ratio: 1.5, got ".inf"`}},
	} {
		want := make([]string, len(tc.want))
		for i, w := range tc.want {
			want[i] = "r.yaml:" + w
		}
		checkErrors(t, rolloutConfig(tc.rollout), want...)
	}
}

// TestRolloutNeedsCanary: a rollout moves its route to the canary, so a
// route without one is refused at the rollout key.
func TestRolloutNeedsCanary(t *testing.T) {
	file := strings.Replace(rolloutConfig("canary10-5m"), "    canary: {function: users-v2}\n", "", 1)
	checkErrors(t, file, `r.yaml:8:5: routes[0].rollout moves the route to its canary, and it has none: add canary: with the new target, like canary: {function: users-v2} (the rollout sets its weight)`)
	// A canary that is written but wrong is reported on its own.
	file = strings.Replace(rolloutConfig("canary10-5m"), "canary: {function: users-v2}", "canary: users-v2", 1)
	checkErrors(t, file, `r.yaml:8:13: routes[0].canary must be a mapping of keys to values, got "users-v2"`)
}

// TestRolloutRoundTrip: a parsed plan, encoded as YAML, is a plan Parse
// reads back the same.
func TestRolloutRoundTrip(t *testing.T) {
	for _, rollout := range []string{
		"{}",
		"canary10-5m",
		"Linear10PercentEvery1Minute",
		"{preset: canary10-200ms, interval: 50ms, min_requests: 20, state: paused}",
		"{steps: [0.5, 2.25, 50, 100], step_for: 1h30m, interval: 1m, state: aborted}",
		"{analysis: {error_alpha: 0.05, max_error_rate: 1, latency_alpha: 0.001, max_p99_ratio: 2, latency_tolerance: 0.0001, interim_alpha: 0.0005}}",
		"{state: running, analysis: {max_p99_ratio: 3}}",
	} {
		first := parseRollout(t, rollout)
		out, err := yaml.Marshal(first)
		if err != nil {
			t.Fatal(err)
		}
		flow := strings.TrimSpace(string(out))
		if strings.Contains(flow, "\n") { // a block mapping: indent it under the key
			flow = "\n      " + strings.ReplaceAll(flow, "\n", "\n      ")
		}
		if second := parseRollout(t, flow); !reflect.DeepEqual(first, second) {
			t.Errorf("rollout: %s\nencodes as\n%s\nwhich parses to %+v, not %+v", rollout, out, *second, *first)
		}
	}
	// A preset encodes as the preset alone: its steps are its own.
	if out, _ := yaml.Marshal(parseRollout(t, "canary10-5m")); !strings.Contains(string(out), "preset: canary10-5m") || strings.Contains(string(out), "steps") {
		t.Errorf("canary10-5m encodes as\n%s", out)
	}
}

// ExampleParsePreset shows what CodeDeploy's names stand for.
func ExampleParsePreset() {
	for _, p := range []string{"Canary10Percent5Minutes", "Linear10PercentEvery1Minute", "linear25-30s"} {
		steps, stepFor, _ := ParsePreset(p)
		fmt.Println(p, steps, stepFor)
	}
	// Output:
	// Canary10Percent5Minutes [10] 5m0s
	// Linear10PercentEvery1Minute [10 20 30 40 50 60 70 80 90] 1m0s
	// linear25-30s [25 50 75] 30s
}

// TestRolloutDocExample parses the plan docs/rollouts.md shows.
func TestRolloutDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/rollouts.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin = "## Rollout plan\n\n```yaml\n"
	_, example, ok := strings.Cut(string(doc), begin)
	example, _, ok2 := strings.Cut(example, "```")
	if !ok || !ok2 {
		t.Fatalf("docs/rollouts.md has no yaml block after %q", begin)
	}
	src := "origins:\n  legacy: {url: http://127.0.0.1:9000}\nfunctions:\n  users: {handler: ./bin/users}\n" + example
	c, err := Parse("rollouts.md", []byte(src))
	if err != nil {
		t.Fatalf("docs/rollouts.md's example: %v", err)
	}
	if r := c.Routes[0].Rollout; r == nil || r.Analysis.MaxP99Ratio != 1.3 || c.Routes[0].Canary.Weight != 0 {
		t.Errorf("docs/rollouts.md's example parses to %+v", r)
	}
}
