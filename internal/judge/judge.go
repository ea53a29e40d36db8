// Package judge decides whether a canary is worse than its baseline: it
// counts each side's requests of a route and compares the two over one
// window, error rate and latency, into a verdict — pass, fail or wait — that
// records the numbers it used and says why in one line.
//
// # Latencies: fixed log-scale histograms, not a reservoir
//
// Each side keeps NumBuckets counters, bounds 10 µs · 1.1^i up to ~2.9 min
// (the bucket arithmetic of internal/histogram). A histogram, not a
// reservoir sample, because:
//   - recording is one atomic add on a fixed array: no lock, no allocation,
//     no random number on the request path, and any number of goroutines;
//   - it keeps every request, so the U test sees the whole window, not the
//     few thousand a reservoir would keep, and the p99 of a 1 % canary is
//     not read off a dozen samples;
//   - windows compose: a window is the difference of two snapshots, so the
//     counters are never reset under the writers.
//
// The price is resolution: values in one bucket (10 % wide) tie. For the
// U test ties only cost power — the tie correction keeps the p-value valid
// — and a shift smaller than a bucket still moves a share of the values
// across bucket bounds. A p99 is estimated within the bucket's 10 %.
//
// # The tests
//
// Error rate: the pooled two-proportion z-test, one-sided (the canary fails
// more), or Fisher's exact test when either side expects fewer than 5
// failures or successes, where the normal approximation breaks down (a
// canary at a 1 % step against a clean baseline: one canary error would
// give z ≈ 10). Plus an absolute ceiling on the canary's error rate.
//
// Latency: the Mann–Whitney U test, one-sided, with tie correction,
// continuity correction and the normal approximation, on the two sides'
// successful requests ranked by bucket, failing the canary only when its
// p50 is also beyond a tolerance (5 %: a significant 1 % slowdown passes);
// plus a ceiling on the ratio of the p99s. Kayenta's judge uses the same
// test, with an effect-size threshold the same way.
//
// Only the standard library's math: the tests need the normal survival
// function (math.Erfc) and log-gamma (math.Lgamma). gonum was considered:
// its distuv.Normal is the one formula it would replace — it has no
// Mann–Whitney or Fisher test, and its statistics take raw samples, not
// bucket counts — so the tests would be written here anyway.
//
// # Repeated looks
//
// alpha is the false-failure rate of one look. A controller that judged a
// step's growing window at every interval against the same alpha would
// fail good canaries more often with every look. So the looks during a
// step are Interim: they fail the canary only on strong evidence
// (p < interim_alpha, default 0.001) or a ceiling; the look at the step's
// end is Judge, at error_alpha and latency_alpha — the Haybittle–Peto rule
// of clinical trials' interim analyses. Measured over 2,000 seeded
// identical canaries (N(100 ms, 10 ms), 0.5 % errors) at 1, 5 and 50 %
// steps: one look fails 0.15–0.7 %; a step of ten looks all at 0.01 fails
// 0.55–1.9 % (~5 % before the latency tolerance), with the nine interim
// looks at 0.001 0.2–0.6 %. A plainly bad canary (50 ms slower:
// p < 0.0001 at 200 requests) is still caught at its first look.
package judge

import (
	"cmp"
	"fmt"
	"math"
	"time"
)

// Analysis holds a rollout's thresholds: the `analysis:` keys of a route's
// rollout plan, and the plan's min_requests. A zero field takes its default
// (WithDefaults).
type Analysis struct {
	// MinRequests is the number of requests each side needs in the window
	// before a judgement (rollout.min_requests); fewer → wait.
	// Default 200.
	MinRequests int `yaml:"min_requests" json:"min_requests,omitempty"`
	// ErrorAlpha is the significance level of the error-rate test: the
	// canary fails when the test's p-value is below it. Default 0.01.
	ErrorAlpha float64 `yaml:"error_alpha" json:"error_alpha,omitempty"`
	// MaxErrorRate is the highest canary error rate tolerated whatever
	// the baseline's, 0–1. Default 0.05 (5 %); 1 turns it off.
	MaxErrorRate float64 `yaml:"max_error_rate" json:"max_error_rate,omitempty"`
	// LatencyAlpha is the significance level of the latency U test.
	// Default 0.01.
	LatencyAlpha float64 `yaml:"latency_alpha" json:"latency_alpha,omitempty"`
	// MaxP99Ratio is the highest tolerated ratio of the canary's p99 to
	// the baseline's. Default 1.5.
	MaxP99Ratio float64 `yaml:"max_p99_ratio" json:"max_p99_ratio,omitempty"`
	// LatencyTolerance is the slowdown the latency test lets pass however
	// significant: the U test fails the canary only when its p50 is also
	// more than this much above the baseline's (0.05: 5 %). With
	// thousands of requests a side the test alone would abort a rollout
	// for a 1 % difference; the p99 ceiling still guards the tail.
	// Default 0.05; judging on significance alone takes a tiny value
	// such as 0.0001.
	LatencyTolerance float64 `yaml:"latency_tolerance" json:"latency_tolerance,omitempty"`
	// InterimAlpha is the significance level of both tests at the looks
	// during a step (Interim), stricter than the step's end so that
	// looking often does not fail good canaries (an alpha above is used
	// if it is stricter still). Default 0.001.
	InterimAlpha float64 `yaml:"interim_alpha" json:"interim_alpha,omitempty"`
	// MinLatencyShift is the latency difference too small to fail the
	// canary however significant: the U test fails it only when its p50
	// is also this much above the baseline's, and the p99 ceiling only
	// when its p99 is. A sub-millisecond service moved to a function pays
	// a few hundred microseconds per request — a large ratio, and a
	// certain U test, over a difference no client notices. Default 1 ms.
	MinLatencyShift time.Duration `yaml:"min_latency_shift" json:"min_latency_shift,omitempty"`
}

// The defaults of Analysis's fields.
const (
	DefaultMinRequests      = 200
	DefaultErrorAlpha       = 0.01
	DefaultMaxErrorRate     = 0.05
	DefaultLatencyAlpha     = 0.01
	DefaultMaxP99Ratio      = 1.5
	DefaultInterimAlpha     = 0.001
	DefaultLatencyTolerance = 0.05
	DefaultMinLatencyShift  = time.Millisecond
)

// minLatencySamples is the fewest successful requests a side needs for
// the latency tests: the U test's normal approximation is poor below ~20.
// A side with fewer (most of its requests failed) is judged on its error
// rate alone.
const minLatencySamples = 20

// minP99Samples is the fewest successful requests a side needs for its p99
// to be held against the ceiling: below 100 the "p99" is the side's
// slowest request or close to it — one garbage collection or scheduling
// hiccup — and a ceiling judged on it aborts good canaries (seen: a
// function canary's 51 requests, p99 11 ms against 5.4 ms, on a loaded
// machine). The U test, which uses every request, still judges them.
const minP99Samples = 100

// WithDefaults returns a with its zero fields set to their defaults.
func (a Analysis) WithDefaults() Analysis {
	a.MinRequests = cmp.Or(a.MinRequests, DefaultMinRequests)
	a.ErrorAlpha = cmp.Or(a.ErrorAlpha, DefaultErrorAlpha)
	a.MaxErrorRate = cmp.Or(a.MaxErrorRate, DefaultMaxErrorRate)
	a.LatencyAlpha = cmp.Or(a.LatencyAlpha, DefaultLatencyAlpha)
	a.MaxP99Ratio = cmp.Or(a.MaxP99Ratio, DefaultMaxP99Ratio)
	a.InterimAlpha = cmp.Or(a.InterimAlpha, DefaultInterimAlpha)
	a.LatencyTolerance = cmp.Or(a.LatencyTolerance, DefaultLatencyTolerance)
	a.MinLatencyShift = cmp.Or(a.MinLatencyShift, DefaultMinLatencyShift)
	return a
}

// Validate reports the first field out of range, by its config key. Zero
// fields are valid (they take their defaults).
func (a Analysis) Validate() error {
	switch {
	case a.MinRequests < 0:
		return fmt.Errorf("min_requests %d: must be at least 1 (default %d)", a.MinRequests, DefaultMinRequests)
	case !(a.ErrorAlpha >= 0 && a.ErrorAlpha <= 0.5):
		return fmt.Errorf("analysis.error_alpha %v: must be above 0 and at most 0.5 (default %v)", a.ErrorAlpha, DefaultErrorAlpha)
	case !(a.LatencyAlpha >= 0 && a.LatencyAlpha <= 0.5):
		return fmt.Errorf("analysis.latency_alpha %v: must be above 0 and at most 0.5 (default %v)", a.LatencyAlpha, DefaultLatencyAlpha)
	case !(a.MaxErrorRate >= 0 && a.MaxErrorRate <= 1):
		return fmt.Errorf("analysis.max_error_rate %v: must be above 0 and at most 1 (0.05 = 5 %%; 1 turns the ceiling off)", a.MaxErrorRate)
	case !(a.InterimAlpha >= 0 && a.InterimAlpha <= 0.5):
		return fmt.Errorf("analysis.interim_alpha %v: must be above 0 and at most 0.5 (default %v)", a.InterimAlpha, DefaultInterimAlpha)
	case !(a.LatencyTolerance >= 0 && a.LatencyTolerance <= 10):
		return fmt.Errorf("analysis.latency_tolerance %v: must be between 0 and 10 (0.05 = 5 %%, the default)", a.LatencyTolerance)
	case a.MinLatencyShift < 0 || a.MinLatencyShift > time.Hour:
		return fmt.Errorf("analysis.min_latency_shift %v: must be between 0 and 1h (default %v)", a.MinLatencyShift, DefaultMinLatencyShift)
	case a.MaxP99Ratio != 0 && !(a.MaxP99Ratio >= 1 && a.MaxP99Ratio <= math.MaxFloat64):
		return fmt.Errorf("analysis.max_p99_ratio %v: must be at least 1 (default %v)", a.MaxP99Ratio, DefaultMaxP99Ratio)
	}
	return nil
}

// Decision is a verdict's outcome.
type Decision uint8

const (
	// Wait: a side has fewer than MinRequests requests in the window, or
	// an interim look found nothing against the canary yet.
	Wait Decision = iota
	// Pass: no test found the canary worse.
	Pass
	// Fail: a test or a ceiling found the canary worse; the rollout
	// aborts.
	Fail
)

var decisionNames = [...]string{"wait", "pass", "fail"}

// String returns "wait", "pass" or "fail".
func (d Decision) String() string {
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return "fail"
}

// MarshalText makes a Decision its name in JSON and YAML.
func (d Decision) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Decision's name back.
func (d *Decision) UnmarshalText(b []byte) error {
	for i, n := range decisionNames {
		if n == string(b) {
			*d = Decision(i)
			return nil
		}
	}
	return fmt.Errorf("decision %q: want wait, pass or fail", b)
}

// SideStats are the figures of one side a verdict used.
type SideStats struct {
	Requests  uint64        `json:"requests"`
	Failures  uint64        `json:"failures"`
	Cold      uint64        `json:"cold,omitempty"` // successes after a cold start, not in the latencies
	ErrorRate float64       `json:"error_rate"`     // Failures/Requests, 0 with no requests
	P50       time.Duration `json:"p50"`            // of successful requests, in ns
	P99       time.Duration `json:"p99"`            // in ns
}

func sideStats(c *Counts) SideStats {
	s := SideStats{Requests: c.Requests(), Failures: c.Failures, Cold: c.Cold, P50: c.Quantile(0.50), P99: c.Quantile(0.99)}
	if s.Requests > 0 {
		s.ErrorRate = float64(s.Failures) / float64(s.Requests)
	}
	return s
}

// Verdict is a judgement of one window: the decision, a one-line reason,
// and every number it rests on.
type Verdict struct {
	Decision Decision `json:"decision"`
	// Reason says why in one line, e.g. "canary p99 412 ms vs baseline
	// 180 ms, U-test p=0.0003" — fit for a deployment's cause.
	Reason   string    `json:"reason"`
	Baseline SideStats `json:"baseline"`
	Canary   SideStats `json:"canary"`
	// Errors is the error-rate test (zero when waiting).
	Errors ErrorTest `json:"errors"`
	// Latency is the U test; zero when waiting or when a side had fewer
	// than 20 successful requests (LatencyJudged false).
	Latency       UTest `json:"latency"`
	LatencyJudged bool  `json:"latency_judged"`
	// P50Ratio and P99Ratio are the canary's p50 and p99 over the
	// baseline's (0 when latency is not judged).
	P50Ratio float64 `json:"p50_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
	// Analysis is the thresholds applied, defaults filled in.
	Analysis Analysis `json:"analysis"`
}

// Judge is the look at a step's end: it compares the canary's window with
// the baseline's (the same route, the same span of time) and passes or
// fails the canary, or waits for min_requests. The first check that fails
// gives the reason, in this order: the error-rate ceiling, the error-rate
// test, the p99 ratio, the U test (with the p50 beyond latency_tolerance).
func (a Analysis) Judge(baseline, canary Counts) Verdict {
	return a.judge(baseline, canary, false)
}

// Interim is a look during a step: the same checks as Judge, the tests at
// interim_alpha; it fails the canary or waits (nothing against it yet),
// never passes it.
func (a Analysis) Interim(baseline, canary Counts) Verdict {
	return a.judge(baseline, canary, true)
}

func (a Analysis) judge(baseline, canary Counts, interim bool) Verdict {
	a = a.WithDefaults()
	errAlpha, latAlpha := a.ErrorAlpha, a.LatencyAlpha
	if interim {
		errAlpha, latAlpha = min(errAlpha, a.InterimAlpha), min(latAlpha, a.InterimAlpha)
	}
	v := Verdict{Analysis: a, Baseline: sideStats(&baseline), Canary: sideStats(&canary)}
	b, c := &v.Baseline, &v.Canary
	need := uint64(a.MinRequests)
	if b.Requests < need || c.Requests < need {
		v.Decision = Wait
		v.Reason = fmt.Sprintf("waiting for %d requests a side: canary %d, baseline %d", need, c.Requests, b.Requests)
		return v
	}
	v.Errors = errorTest(b.Failures, b.Requests, c.Failures, c.Requests)
	bs, cs := baseline.Successes(), canary.Successes()
	if v.LatencyJudged = bs >= minLatencySamples && cs >= minLatencySamples; v.LatencyJudged {
		v.Latency = mannWhitneyU(baseline.Latency[:], canary.Latency[:])
		v.P50Ratio = float64(c.P50) / float64(max(b.P50, 1))
		v.P99Ratio = float64(c.P99) / float64(max(b.P99, 1))
	}
	errs := fmt.Sprintf("canary error rate %s vs baseline %s", pct(c.ErrorRate), pct(b.ErrorRate))
	p99s := fmt.Sprintf("canary p99 %s vs baseline %s", ms(c.P99), ms(b.P99))
	v.Decision = Fail
	switch {
	case c.ErrorRate > a.MaxErrorRate:
		v.Reason = fmt.Sprintf("%s, above the %s ceiling", errs, pct(a.MaxErrorRate))
	case v.Errors.P < errAlpha:
		v.Reason = fmt.Sprintf("%s, %s p%s", errs, v.Errors.Method, pval(v.Errors.P))
	case v.LatencyJudged && bs >= minP99Samples && cs >= minP99Samples && v.P99Ratio > a.MaxP99Ratio && c.P99-b.P99 > a.MinLatencyShift:
		v.Reason = fmt.Sprintf("%s, %.2f× above the %v× ceiling", p99s, v.P99Ratio, a.MaxP99Ratio)
	case v.LatencyJudged && v.Latency.P < latAlpha && v.P50Ratio > 1+a.LatencyTolerance && c.P50-b.P50 > a.MinLatencyShift:
		v.Reason = fmt.Sprintf("%s, U-test p%s", p99s, pval(v.Latency.P))
	default:
		v.Decision = Pass
		v.Reason = fmt.Sprintf("%s (%s p%s)", errs, v.Errors.Method, pval(v.Errors.P))
		if v.LatencyJudged {
			v.Reason += fmt.Sprintf(", %s (U-test p%s)", p99s, pval(v.Latency.P))
		}
		if interim {
			v.Decision = Wait
			v.Reason = "nothing against the canary yet: " + v.Reason
		}
	}
	return v
}

// pct formats a rate as a percentage with one decimal: "2.1%".
func pct(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) }

// ms formats a latency in milliseconds: "412 ms", "3.2 ms", "0.045 ms".
func ms(d time.Duration) string {
	m := float64(d) / float64(time.Millisecond)
	switch {
	case m >= 10:
		return fmt.Sprintf("%.0f ms", m)
	case m >= 1:
		return fmt.Sprintf("%.1f ms", m)
	default:
		return fmt.Sprintf("%.2g ms", m)
	}
}

// pval formats a p-value for a reason: "=0.0003" with four decimals,
// "<0.0001" below them.
func pval(p float64) string {
	if p < 0.0001 {
		return "<0.0001"
	}
	return fmt.Sprintf("=%.4f", p)
}
