package judge

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// route simulates one route's traffic split between a baseline and a
// canary, with a seeded RNG: latencies ~ N(mean, 10 ms), failures at a
// given rate.
type route struct {
	rng             *rand.Rand
	weight          float64 // the canary's share of requests
	base, canary    Side
	baseMean, cMean time.Duration
	baseErr, cErr   float64
	nBase, nCanary  int
}

func newRoute(seed uint64, weight float64) *route {
	return &route{
		rng: rand.New(rand.NewPCG(seed, 16)), weight: weight,
		baseMean: 100 * time.Millisecond, cMean: 100 * time.Millisecond,
	}
}

// request sends one request and reports whether the canary took it.
func (r *route) request() bool {
	side, mean, errRate := &r.base, r.baseMean, r.baseErr
	canary := r.rng.Float64() < r.weight
	if canary {
		side, mean, errRate = &r.canary, r.cMean, r.cErr
		r.nCanary++
	} else {
		r.nBase++
	}
	d := mean + time.Duration(r.rng.NormFloat64()*float64(10*time.Millisecond))
	side.Record(d, r.rng.Float64() < errRate)
	return canary
}

func (r *route) judge(a Analysis) Verdict { return a.Judge(r.base.Snapshot(), r.canary.Snapshot()) }

// lookEvery is how many canary requests the simulated controller lets pass
// between judgements: an analysis interval.
const lookEvery = 50

// runUntilVerdict plays one step: it sends requests until the canary has
// had limit of them, looking once both sides have min_requests and then
// every lookEvery canary requests, as a controller judging at an interval
// would — Interim looks, and Judge at the step's end (limit). It returns
// the first Fail (or the last verdict), the canary requests it took and
// the looks made.
func (r *route) runUntilVerdict(a Analysis, limit int) (v Verdict, canary, looks int) {
	a = a.WithDefaults()
	next := 0
	for r.nCanary < limit {
		if !r.request() || r.nCanary < max(a.MinRequests, next) || r.nBase < a.MinRequests {
			continue
		}
		looks++
		next = r.nCanary + lookEvery
		if r.nCanary >= limit {
			v = r.judge(a)
		} else {
			v = a.Interim(r.base.Snapshot(), r.canary.Snapshot())
		}
		if v.Decision == Fail {
			break
		}
	}
	return v, r.nCanary, looks
}

func TestSlowerCanaryFails(t *testing.T) {
	// A canary 50 ms slower than a baseline ~N(100 ms, 10 ms), at a 5 %
	// and a 50 % step: it fails on the U test at the first judgement,
	// as soon as both sides have min_requests (200) requests.
	for _, weight := range []float64{0.05, 0.5} {
		for seed := range uint64(10) {
			r := newRoute(seed, weight)
			r.cMean = 150 * time.Millisecond
			v, n, looks := r.runUntilVerdict(Analysis{}, 1000)
			if v.Decision != Fail || looks != 1 || n > DefaultMinRequests+50 {
				t.Fatalf("weight %v seed %d: %v after %d canary requests, %d judgements (%s); want fail at the first, within %d", weight, seed, v.Decision, n, looks, v.Reason, DefaultMinRequests+50)
			}
			if !strings.Contains(v.Reason, "U-test p<0.0001") || !strings.HasPrefix(v.Reason, "canary p99 1") || !strings.Contains(v.Reason, "vs baseline 1") {
				t.Errorf("reason %q", v.Reason)
			}
		}
	}
}

func TestErroringCanaryFails(t *testing.T) {
	// 2 % errors against a baseline's 0 %: fails within min_requests and a
	// bounded number more (the test needs a few canary errors, more when
	// the canary takes half the traffic and the baseline proves less).
	for _, tt := range []struct {
		weight float64
		within int
	}{{0.05, DefaultMinRequests + 400}, {0.5, DefaultMinRequests + 1000}} {
		worst := 0
		for seed := range uint64(20) {
			r := newRoute(seed, tt.weight)
			r.cErr = 0.02
			// The latency test is all but off: with the looks this takes,
			// it could fail the canary first, by chance, on identical latencies.
			v, n, _ := r.runUntilVerdict(Analysis{LatencyAlpha: 1e-9}, 5000)
			if v.Decision != Fail || n > tt.within {
				t.Fatalf("weight %v seed %d: %v after %d canary requests (%s), want fail within %d", tt.weight, seed, v.Decision, n, v.Reason, tt.within)
			}
			if !strings.HasPrefix(v.Reason, "canary error rate ") || !strings.Contains(v.Reason, "vs baseline 0.0%") {
				t.Errorf("reason %q", v.Reason)
			}
			worst = max(worst, n)
		}
		t.Logf("weight %v: failed within %d canary requests", tt.weight, worst)
	}
}

func TestIdenticalCanaryPasses(t *testing.T) {
	// 200 seeded trials of a canary identical to its baseline (N(100 ms,
	// 10 ms), 0.5 % errors each), judged once over a window of 500 canary
	// requests at a 5 % step: at alpha 0.01 for each test the false
	// failures stay at ~2 % or below.
	const trials = 200
	var fails, waits int
	for seed := range uint64(trials) {
		r := newRoute(1000+seed, 0.05)
		r.baseErr, r.cErr = 0.005, 0.005
		for r.nCanary < 500 {
			r.request()
		}
		switch v := r.judge(Analysis{}); v.Decision {
		case Fail:
			fails++
			t.Logf("seed %d: %s", seed, v.Reason)
		case Wait:
			waits++
		}
	}
	if waits > 0 {
		t.Fatalf("%d trials still waiting after 500 canary requests", waits)
	}
	if fails > trials*25/1000 {
		t.Errorf("%d of %d identical canaries failed, want ≤ 2.5 %%", fails, trials)
	}
	t.Logf("%d of %d identical canaries failed", fails, trials)
}

// TestIdenticalCanaryRepeatedLooks plays a step judged at an interval:
// nine Interim looks (200 to 600 canary requests) and Judge at the end
// (650). With the interim looks at 0.001 the false failures stay near the
// one look's: ≤ 2.5 % of 200 identical canaries (see the package doc for
// ten looks all at 0.01).
func TestIdenticalCanaryRepeatedLooks(t *testing.T) {
	const trials = 200
	fails, maxLooks := 0, 0
	for seed := range uint64(trials) {
		r := newRoute(5000+seed, 0.05)
		r.baseErr, r.cErr = 0.005, 0.005
		v, _, looks := r.runUntilVerdict(Analysis{}, DefaultMinRequests+9*lookEvery)
		maxLooks = max(maxLooks, looks)
		if v.Decision == Fail {
			fails++
		}
	}
	if maxLooks != 10 {
		t.Fatalf("%d looks, want 10", maxLooks)
	}
	if fails > trials*25/1000 {
		t.Errorf("%d of %d identical canaries failed over 10 looks, want ≤ 2.5 %%", fails, trials)
	}
	t.Logf("%d of %d identical canaries failed over 10 looks", fails, trials)
}

func TestJudgeWaits(t *testing.T) {
	r := newRoute(1, 0.5)
	for r.nCanary < 150 {
		r.request()
	}
	v := r.judge(Analysis{MinRequests: 200})
	if v.Decision != Wait || !strings.HasPrefix(v.Reason, "waiting for 200 requests a side: canary 150, baseline ") {
		t.Errorf("%v: %q", v.Decision, v.Reason)
	}
	if v.Canary.Requests != 150 {
		t.Errorf("canary requests %d, want 150 recorded in the verdict", v.Canary.Requests)
	}
	j, err := json.Marshal(v)
	if err != nil || !strings.HasPrefix(string(j), `{"decision":"wait","reason":"waiting for 200`) {
		t.Errorf("JSON %s, %v", j, err)
	}
}

// counts builds a window: n requests at latency d, failures of them failed.
func counts(n, failures int, d time.Duration) Counts {
	var s Side
	for i := range n {
		s.Record(d, i < failures)
	}
	return s.Snapshot()
}

func add(a, b Counts) Counts {
	a.Failures += b.Failures
	for i := range a.Latency {
		a.Latency[i] += b.Latency[i]
	}
	return a
}

func TestJudgeReasons(t *testing.T) {
	base := add(counts(900, 0, 100*time.Millisecond), counts(100, 0, 180*time.Millisecond))
	tests := []struct {
		name   string
		a      Analysis
		canary Counts
		want   Decision
		reason string
	}{
		{
			name:   "error ceiling",
			canary: counts(1000, 60, 100*time.Millisecond),
			want:   Fail, reason: "canary error rate 6.0% vs baseline 0.0%, above the 5.0% ceiling",
		},
		{
			name:   "error test",
			canary: counts(1000, 21, 100*time.Millisecond),
			want:   Fail, reason: "canary error rate 2.1% vs baseline 0.0%, z-test p<0.0001",
		},
		{
			name:   "p99 ratio",
			canary: add(counts(900, 0, 100*time.Millisecond), counts(100, 0, 412*time.Millisecond)),
			want:   Fail, reason: "canary p99 428 ms vs baseline 182 ms, 2.36× above the 1.5× ceiling",
		},
		{
			name:   "U test",
			a:      Analysis{MaxP99Ratio: 10},
			canary: add(counts(900, 0, 120*time.Millisecond), counts(100, 0, 200*time.Millisecond)),
			want:   Fail, reason: "canary p99 200 ms vs baseline 182 ms, U-test p<0.0001",
		},
		{
			name:   "pass",
			canary: base,
			want:   Pass, reason: "canary error rate 0.0% vs baseline 0.0% (Fisher test p=1.0000), canary p99 182 ms vs baseline 182 ms (U-test p=0.5000)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.a.Judge(base, tt.canary)
			if v.Decision != tt.want || !strings.HasPrefix(v.Reason, tt.reason) {
				t.Errorf("%v: %q; want %v: %q…", v.Decision, v.Reason, tt.want, tt.reason)
			}
			if v.Analysis.MaxErrorRate == 0 || v.Baseline.Requests != 1000 || v.Canary.Requests != 1000 {
				t.Errorf("the verdict must record what it used: %+v", v)
			}
			t.Log(v.Reason)
		})
	}
}

// TestLatencyTolerance: a canary 2 % slower (102 ms vs 100 ms, 10,000
// requests a side) is significantly slower, but within the 5 % tolerance;
// with the tolerance all but off, the U test fails it.
func TestLatencyTolerance(t *testing.T) {
	r := newRoute(7, 0.5)
	r.cMean = 102 * time.Millisecond
	for r.nCanary < 10000 {
		r.request()
	}
	v := r.judge(Analysis{})
	if v.Decision != Pass || v.Latency.P > 0.001 || v.P50Ratio < 1.005 || v.P50Ratio > 1.05 {
		t.Errorf("default tolerance: %v, U-test p = %v, p50 ratio %.3f (%s); want pass with p < 0.001", v.Decision, v.Latency.P, v.P50Ratio, v.Reason)
	}
	v = r.judge(Analysis{LatencyTolerance: 0.0001})
	if v.Decision != Fail || !strings.Contains(v.Reason, "U-test p<0.0001") {
		t.Errorf("no tolerance: %v (%s); want a U-test failure", v.Decision, v.Reason)
	}
}

func TestInterim(t *testing.T) {
	base := counts(10000, 50, 100*time.Millisecond)
	// p ≈ 0.0026 (z-test, 80 of 10000 failed vs 50 of 10000): enough to
	// fail at a step's end (0.01), not at an interim look (0.001).
	canary := counts(10000, 80, 100*time.Millisecond)
	var a Analysis
	if v := a.Judge(base, canary); v.Decision != Fail || v.Errors.P < 0.001 || v.Errors.P > 0.01 {
		t.Fatalf("Judge: %v, p = %v (%s); want fail with 0.001 < p < 0.01", v.Decision, v.Errors.P, v.Reason)
	}
	if v := a.Interim(base, canary); v.Decision != Wait || !strings.HasPrefix(v.Reason, "nothing against the canary yet: canary error rate 0.8% vs baseline 0.5% (z-test p=0.00") {
		t.Errorf("Interim: %v: %q; want wait", v.Decision, v.Reason)
	}
	// Ceilings apply at interim looks as at the step's end.
	if v := a.Interim(base, counts(10000, 600, 100*time.Millisecond)); v.Decision != Fail || !strings.Contains(v.Reason, "above the 5.0% ceiling") {
		t.Errorf("Interim over the ceiling: %v: %q; want fail", v.Decision, v.Reason)
	}
	// A stricter alpha than interim_alpha is kept at interim looks.
	strict := Analysis{ErrorAlpha: 1e-6, InterimAlpha: 0.01}
	if v := strict.Interim(base, canary); v.Decision != Wait {
		t.Errorf("Interim with error_alpha 1e-6: %v: %q; want wait", v.Decision, v.Reason)
	}
	if v := a.Interim(base, counts(100, 0, time.Millisecond)); v.Decision != Wait || !strings.HasPrefix(v.Reason, "waiting for 200") {
		t.Errorf("Interim before min_requests: %v: %q", v.Decision, v.Reason)
	}
}

func TestAnalysisDefaultsAndValidate(t *testing.T) {
	got := Analysis{}.WithDefaults()
	want := Analysis{MinRequests: 200, ErrorAlpha: 0.01, MaxErrorRate: 0.05, LatencyAlpha: 0.01, MaxP99Ratio: 1.5, InterimAlpha: 0.001, LatencyTolerance: 0.05, MinLatencyShift: time.Millisecond}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	if err := (Analysis{}).Validate(); err != nil {
		t.Errorf("zero analysis: %v", err)
	}
	for _, tt := range []struct {
		a   Analysis
		key string
	}{
		{Analysis{MinRequests: -1}, "min_requests"},
		{Analysis{ErrorAlpha: 0.7}, "analysis.error_alpha"},
		{Analysis{ErrorAlpha: -0.1}, "analysis.error_alpha"},
		{Analysis{LatencyAlpha: 1}, "analysis.latency_alpha"},
		{Analysis{MaxErrorRate: 5}, "analysis.max_error_rate"},
		{Analysis{MaxP99Ratio: 0.5}, "analysis.max_p99_ratio"},
		{Analysis{InterimAlpha: 2}, "analysis.interim_alpha"},
		{Analysis{LatencyTolerance: -0.1}, "analysis.latency_tolerance"},
		{Analysis{MinLatencyShift: -time.Second}, "analysis.min_latency_shift"},
	} {
		if err := tt.a.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.key+" ") {
			t.Errorf("%+v: error %v, want one naming %s", tt.a, err, tt.key)
		}
	}
}

// TestDecisionText: a verdict's decision reads back as it was written, and
// an unknown name is an error.
func TestDecisionText(t *testing.T) {
	for _, d := range []Decision{Wait, Pass, Fail} {
		b, _ := d.MarshalText()
		var got Decision
		if err := got.UnmarshalText(b); err != nil || got != d {
			t.Errorf("%s: read back %v, %v", b, got, err)
		}
	}
	var d Decision
	if err := d.UnmarshalText([]byte("maybe")); err == nil {
		t.Error("decision \"maybe\" read without an error")
	}
}

// TestMinLatencyShift: a sub-millisecond baseline against a canary 400 µs
// slower — 1.8× at p50 and p99, certain to the U test — passes under the
// 1 ms floor, and fails with the floor lowered to 100 µs.
func TestMinLatencyShift(t *testing.T) {
	base := counts(1000, 0, 500*time.Microsecond)
	canary := counts(1000, 0, 900*time.Microsecond)
	if v := (Analysis{}).Judge(base, canary); v.Decision != Pass {
		t.Errorf("400 µs slower under the 1 ms floor: %v: %q; want pass", v.Decision, v.Reason)
	}
	if v := (Analysis{MinLatencyShift: 100 * time.Microsecond}).Judge(base, canary); v.Decision != Fail || !strings.Contains(v.Reason, "ceiling") {
		t.Errorf("400 µs slower with a 100 µs floor: %v: %q; want a failure on the p99 ceiling", v.Decision, v.Reason)
	}
	if v := (Analysis{MinLatencyShift: 100 * time.Microsecond, MaxP99Ratio: 10}).Judge(base, canary); v.Decision != Fail || !strings.Contains(v.Reason, "U-test") {
		t.Errorf("400 µs slower with a 100 µs floor and no p99 ceiling: %v: %q; want a failure on the U test", v.Decision, v.Reason)
	}
}

// TestP99NeedsSamples: with fewer than 100 successful requests a side, a
// p99 is the slowest request or near it, and the ceiling does not judge
// it: a canary of 60 requests, one of them a 20 ms hiccup, passes; the same
// shape at 600 requests (six hiccups) fails on the ceiling.
func TestP99NeedsSamples(t *testing.T) {
	base := counts(2000, 0, 5*time.Millisecond)
	few := add(counts(59, 0, 5*time.Millisecond), counts(1, 0, 20*time.Millisecond))
	a := Analysis{MinRequests: 50}
	if v := a.Judge(base, few); v.Decision != Pass {
		t.Errorf("60 canary requests, one slow: %v: %q; want pass", v.Decision, v.Reason)
	}
	many := add(counts(590, 0, 5*time.Millisecond), counts(10, 0, 20*time.Millisecond))
	if v := a.Judge(base, many); v.Decision != Fail || !strings.Contains(v.Reason, "ceiling") {
		t.Errorf("600 canary requests, 10 slow: %v: %q; want a failure on the p99 ceiling", v.Decision, v.Reason)
	}
}
