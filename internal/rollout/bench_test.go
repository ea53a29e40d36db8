package rollout_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/deploy"
)

// BenchmarkAbortLatency measures the time from a canary's first bad answer
// to the abort deployment being live on the gateway: each iteration starts
// the rollout, lets the step's window fill with good requests, then turns
// the canary to failing every request while 8 clients keep sending. The
// time includes gathering the evidence (the failures the error tests need),
// waiting for the next look (interval: 100ms) and storing and swapping in
// the deployment. Reported as abort-p50-ms and abort-p99-ms.
//
//	go test -run '^$' -bench AbortLatency -benchtime 20x ./internal/rollout
func BenchmarkAbortLatency(b *testing.B) {
	var bad atomic.Bool
	var firstBad atomic.Int64
	canary := func(w http.ResponseWriter, r *http.Request) {
		if bad.Load() {
			firstBad.CompareAndSwap(0, time.Now().UnixNano())
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		ok(w, r)
	}
	r := newRig(b, ok, canary, `  - match: /s/
    origin: legacy
    fallback: legacy
    fallback_on_status: [500]
    canary: {origin: v2, weight: 0, sticky: "header:X-User-Id"}
    rollout: {steps: [50], step_for: 1h, interval: 100ms, min_requests: 50}
`)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { defer close(done); r.load(b, stop.Load) }()
	defer func() { stop.Store(true); <-done }()
	ctx := context.Background()
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			bad.Store(false)
			if _, err := r.svc.Rollout(ctx, deploy.RolloutChange{Action: deploy.RolloutStart, Match: "/s/"}); err != nil {
				b.Fatal(err)
			}
		}
		// The step's window fills with good requests on both sides.
		waitFor(b, func() bool {
			s := r.ctl.Status()
			return len(s) == 1 && s[0].Weight == 50 && s[0].Verdict != nil && s[0].Verdict.Canary.Requests >= 100 && s[0].Judged.After(s[0].StepStarted)
		})
		firstBad.Store(0)
		bad.Store(true)
		var at any
		waitFor(b, func() bool {
			d := r.active(b)
			at, _ = r.live.Load(d.ID)
			return strings.HasPrefix(d.Cause, "rollout abort") && at != nil
		})
		lat = append(lat, at.(time.Time).Sub(time.Unix(0, firstBad.Load())))
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.5), "abort-p50-ms")
	b.ReportMetric(q(0.99), "abort-p99-ms")
}
