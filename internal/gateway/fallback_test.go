package gateway

import (
	"testing"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/config"
)

// TestRecord: what one guarded request says about the route's primary
// reaches its breaker and its auto-rollback window through one call, and
// each kind of failure counts where it should.
func TestRecord(t *testing.T) {
	fail := func(reason string) *failure { return &failure{reason: reason} }
	tests := []struct {
		name  string
		f     *failure
		state breaker.State // after 5 in a row
		total int           // in the auto-rollback window
		fails int
	}{
		{"answered", nil, breaker.Closed, 5, 0},
		{"origin down", fail("origin_connect"), breaker.Open, 5, 5},
		{"function error", fail("function_error"), breaker.Open, 5, 5},
		{"timeout", fail("timeout"), breaker.Open, 5, 5},
		{"fallback_on_status", fail("status"), breaker.Open, 5, 5},
		// The breaker kept them from the primary: it is not told (it
		// would open), auto-rollback counts them as failed.
		{"breaker open", fail(turnout.ReasonBreakerOpen), breaker.Closed, 5, 5},
		// The client's or the throttle's doing: nobody counts them.
		{"throttled", fail("throttled"), breaker.Closed, 0, 0},
		{"bad request", fail("bad_request"), breaker.Closed, 0, 0},
		{"invalid request", fail("invalid_request"), breaker.Closed, 0, 0},
		{"request too large", fail("request_too_large"), breaker.Closed, 0, 0},
		{"response too large", fail("too_large"), breaker.Closed, 0, 0},
		{"client closed", fail(turnout.ReasonClientClosed), breaker.Closed, 0, 0},
	}
	rule := config.AutoRollback{MaxErrorRate: 0.5, Window: config.Duration(time.Minute)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := &plan{breaker: breaker.New(nil), health: newHealthWindow(rule, "GET /x", "origin errors", time.Now())}
			for range 5 {
				tg.record(tt.f, time.Millisecond)
			}
			if s := tg.breaker.State(); s != tt.state {
				t.Errorf("breaker %s, want %s", s, tt.state)
			}
			if total, failed := healthCounts(tg.health); total != tt.total || failed != tt.fails {
				t.Errorf("auto-rollback window: %d requests, %d failed; want %d, %d", total, failed, tt.total, tt.fails)
			}
		})
	}
}

// TestRecordFreesProbe: in half-open, a probe that ends in a failure that
// says nothing about the primary (a throttle, a bad request, a client that
// went away) frees the probe slot, so the next request probes instead of
// the route staying on its fallback for good.
func TestRecordFreesProbe(t *testing.T) {
	t.Parallel() // it waits out the breaker's 5 s cooldown
	tg := &plan{breaker: breaker.New(nil)}
	for range 5 {
		tg.record(&failure{reason: "origin_connect"}, 0)
	}
	if tg.breaker.OK() {
		t.Fatal("the breaker let a request through after 5 failures")
	}
	time.Sleep(5 * time.Second) // the cooldown
	for _, reason := range []string{"throttled", "bad_request", "invalid_request", "request_too_large", "too_large", turnout.ReasonClientClosed} {
		if !tg.breaker.OK() {
			t.Fatalf("no probe slot before a %s probe", reason)
		}
		tg.record(&failure{reason: reason}, 0)
		if s := tg.breaker.State(); s != breaker.HalfOpen {
			t.Fatalf("a %s probe moved the breaker to %s", reason, s)
		}
	}
	if !tg.breaker.OK() {
		t.Fatal("no probe slot after the inconclusive probes")
	}
	tg.record(nil, 0)
	if s := tg.breaker.State(); s != breaker.HalfOpen {
		t.Fatalf("after one good probe: %s, want half-open", s)
	}
}
