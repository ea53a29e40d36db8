package gateway

import (
	"testing"
	"time"
)

// TestBreakerSkippedProbe: in half-open, a probe that says nothing about
// the primary (the client went away, the function was busy) frees the
// probe slot without moving the breaker, so the next request probes.
func TestBreakerSkippedProbe(t *testing.T) {
	b := &breaker{}
	now := time.Unix(1000, 0)
	for range breakerConsecutive {
		if !b.allow(now) {
			t.Fatal("a closed breaker refused a request")
		}
		b.record(false, now)
	}
	if b.current() != breakerOpen {
		t.Fatalf("state %s after %d failures, want open", b.State(), breakerConsecutive)
	}
	now = now.Add(breakerCooldown)
	if !b.allow(now) || b.current() != breakerHalfOpen {
		t.Fatalf("after the cooldown: no probe, state %s", b.State())
	}
	if b.allow(now) {
		t.Fatal("a second probe while the first is in flight")
	}
	b.skip()
	if b.current() != breakerHalfOpen {
		t.Fatalf("a skipped probe moved the breaker to %s", b.State())
	}
	for i := range breakerProbes {
		if !b.allow(now) {
			t.Fatalf("probe %d refused after a skipped probe", i)
		}
		b.record(true, now)
	}
	if b.current() != breakerClosed {
		t.Fatalf("state %s after %d good probes, want closed", b.State(), breakerProbes)
	}
}
