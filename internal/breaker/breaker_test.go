package breaker

import (
	"slices"
	"testing"
	"time"
)

// A step is one thing that happens to a breaker, in a test's script: the
// clock moves, a request asks OK, a result is recorded. After the step the
// breaker must be in state.
type step struct {
	wait   time.Duration // the clock moves first
	ask    bool          // call OK; want is its answer
	want   bool
	record bool // call Record(result)
	result Result
	state  State
}

func wait(d time.Duration, s State) step { return step{wait: d, state: s} }
func allowed(s State) step               { return step{ask: true, want: true, state: s} }
func refused(s State) step               { return step{ask: true, want: false, state: s} }
func rec(r Result, s State) step         { return step{record: true, result: r, state: s} }

// calls is a request let through and recorded, n times.
func calls(n int, r Result, s State) []step {
	var out []step
	for range n {
		out = append(out, allowed(Closed), rec(r, s))
	}
	return out
}

// trip opens a closed breaker with consecutiveMax failures.
func trip() []step {
	return append(calls(consecutiveMax-1, Failure, Closed), allowed(Closed), rec(Failure, Open))
}

// halfOpen trips the breaker and waits out the cooldown: the next OK is
// the first probe.
func halfOpen() []step {
	return append(trip(), wait(cooldown, Open))
}

func script(parts ...[]step) []step { return slices.Concat(parts...) }

func TestBreaker(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"closed lets everything through", script(
			calls(consecutiveMax-1, Failure, Closed),
			calls(minRequests, Success, Closed),
		)},
		{"consecutive failures open it", script(
			trip(),
			[]step{refused(Open), refused(Open)},
		)},
		{"a success resets the run of failures", script(
			calls(consecutiveMax-1, Failure, Closed),
			calls(1, Success, Closed),
			calls(consecutiveMax-1, Failure, Closed),
		)},
		{"the failure rate opens it", script(
			// Success, failure, ... : never two failures in a row, and
			// the 20th request brings the window to 10 of 20 failed.
			alternate(minRequests-1, Closed),
			[]step{allowed(Closed), rec(Failure, Open), refused(Open)},
		)},
		{"a failure rate under the threshold does not", script(
			// One in three failed, 30 requests.
			repeat(10, calls(2, Success, Closed), calls(1, Failure, Closed)),
		)},
		{"the failure rate is over the last 10 s only", script(
			alternate(minRequests-2, Closed), // 9 of 18 failed
			// 11 s later (not 10: that second would reuse, and clear, the
			// old second's bucket) the old second has left the window, so
			// 2 more make 1 of 2 failed, not 10 of 20.
			[]step{wait(11*time.Second, Closed)},
			alternate(2, Closed),
		)},
		{"too few requests for the rate to count", script(
			alternate(minRequests-2, Closed),
			calls(1, Success, Closed),
		)},
		{"open refuses until the cooldown ends", script(
			trip(),
			[]step{wait(cooldown-time.Millisecond, Open), refused(Open),
				wait(time.Millisecond, Open), allowed(HalfOpen)},
		)},
		{"half-open lets one probe through at a time", script(
			halfOpen(),
			[]step{allowed(HalfOpen), refused(HalfOpen), refused(HalfOpen),
				rec(Success, HalfOpen), allowed(HalfOpen), refused(HalfOpen)},
		)},
		{"probes that succeed close it", script(
			halfOpen(),
			[]step{allowed(HalfOpen), rec(Success, HalfOpen), allowed(HalfOpen), rec(Success, HalfOpen),
				allowed(HalfOpen), rec(Success, Closed), allowed(Closed), allowed(Closed)},
		)},
		{"closing forgets the failures that opened it", script(
			halfOpen(),
			closeByProbes(),
			// With the trip's 5 failures still counted, 8 failures in
			// these 15 would make 13 of 20 and open it.
			alternateFrom(Failure, 15, Closed),
		)},
		{"a probe that fails opens it again", script(
			halfOpen(),
			[]step{allowed(HalfOpen), rec(Success, HalfOpen), allowed(HalfOpen), rec(Failure, Open), refused(Open)},
		)},
		{"a probe that fails restarts the cooldown", script(
			halfOpen(),
			[]step{allowed(HalfOpen), rec(Failure, Open),
				wait(cooldown-time.Millisecond, Open), refused(Open),
				wait(time.Millisecond, Open), allowed(HalfOpen)},
		)},
		{"an inconclusive probe frees the slot without moving it", script(
			halfOpen(),
			[]step{allowed(HalfOpen), refused(HalfOpen), rec(Inconclusive, HalfOpen),
				allowed(HalfOpen), rec(Inconclusive, HalfOpen),
				allowed(HalfOpen), rec(Success, HalfOpen)},
			// Inconclusive probes are not successes: three real ones close it.
			[]step{allowed(HalfOpen), rec(Inconclusive, HalfOpen), allowed(HalfOpen), rec(Success, HalfOpen),
				allowed(HalfOpen), rec(Success, Closed)},
		)},
		{"an inconclusive probe does not reopen it", script(
			halfOpen(),
			[]step{allowed(HalfOpen), rec(Inconclusive, HalfOpen), allowed(HalfOpen), rec(Failure, Open)},
		)},
		{"inconclusive requests count for nothing when closed", script(
			calls(consecutiveMax-1, Failure, Closed),
			calls(minRequests, Inconclusive, Closed),
			// The run of failures goes on: they neither broke it nor
			// diluted the rate.
			calls(1, Failure, Open),
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			b := New(nil)
			b.now = func() time.Time { return now }
			for i, s := range tt.steps {
				now = now.Add(s.wait)
				if s.ask {
					if got := b.OK(); got != s.want {
						t.Fatalf("step %d: OK() = %v, want %v (state %s)", i, got, s.want, b.State())
					}
				}
				if s.record {
					b.Record(s.result)
				}
				if got := b.State(); got != s.state {
					t.Fatalf("step %d (%+v): state %s, want %s", i, s, got, s.state)
				}
			}
		})
	}
}

// alternate is n requests, success first, then failure, and so on, in
// state s.
func alternate(n int, s State) []step { return alternateFrom(Success, n, s) }

func alternateFrom(first Result, n int, s State) []step {
	var out []step
	r := first
	for range n {
		out = append(out, calls(1, r, s)...)
		r = Success + Failure - r
	}
	return out
}

func repeat(n int, parts ...[]step) []step {
	var out []step
	for range n {
		out = append(out, slices.Concat(parts...)...)
	}
	return out
}

// closeByProbes closes a half-open breaker with probe successes.
func closeByProbes() []step {
	var out []step
	for i := range probes {
		s := HalfOpen
		if i == probes-1 {
			s = Closed
		}
		out = append(out, allowed(HalfOpen), rec(Success, s))
	}
	return out
}

// TestBreakerOnChange: every transition is told, once, in order.
func TestBreakerOnChange(t *testing.T) {
	now := time.Unix(1000, 0)
	var seen []string
	b := New(func(from, to State) { seen = append(seen, from.String()+"→"+to.String()) })
	b.now = func() time.Time { return now }
	for range consecutiveMax {
		b.OK()
		b.Record(Failure)
	}
	b.OK() // still open: no change
	now = now.Add(cooldown)
	b.OK()
	b.Record(Failure)
	now = now.Add(cooldown)
	for range probes {
		b.OK()
		b.Record(Success)
	}
	want := []string{"closed→open", "open→half-open", "half-open→open", "open→half-open", "half-open→closed"}
	if !slices.Equal(seen, want) {
		t.Errorf("transitions %q, want %q", seen, want)
	}
}

// TestBreakerZeroValue: a Breaker nobody made with New works, on the real
// clock.
func TestBreakerZeroValue(t *testing.T) {
	var b Breaker
	for range consecutiveMax {
		if !b.OK() {
			t.Fatal("a closed breaker refused a request")
		}
		b.Record(Failure)
	}
	if b.OK() || b.State() != Open {
		t.Fatalf("after %d failures: state %s, want open and refusing", consecutiveMax, b.State())
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Closed: "closed", Open: "open", HalfOpen: "half-open"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}
