package judge

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout/internal/histogram"
)

const (
	// firstBound is the upper bound of the first latency bucket.
	firstBound = 10 * time.Microsecond
	// bucketRatio is how much wider each bucket's upper bound is than the
	// one before: a latency estimate is within 10 % of a value recorded.
	bucketRatio = 1.1
	// NumBuckets is the number of latency buckets a side keeps: 176
	// bounds from 10 µs to ~2.9 min, then one for everything above.
	NumBuckets = 177
)

// bounds are the buckets' upper bounds in nanoseconds: 10 µs · 1.1^i.
var bounds = func() histogram.Bounds {
	b := make(histogram.Bounds, NumBuckets-1)
	v := float64(firstBound)
	for i := range b {
		b[i] = math.Round(v)
		v *= bucketRatio
	}
	return b
}()

// Side counts one side (baseline or canary) of one route: its failed
// requests, and its successful requests by latency bucket. Record is safe
// for concurrent use, takes no lock and allocates nothing; a Side's memory
// is fixed (NumBuckets+1 counters, 1.4 KiB) however much traffic it sees.
// Its counters only grow: a window is the difference of two snapshots
// (Counts.Sub), so the request path never races a reset. The zero Side is
// ready to use.
type Side struct {
	failures atomic.Uint64
	cold     atomic.Uint64
	latency  [NumBuckets]atomic.Uint64
}

// Record counts one request. A failed request counts as a failure only:
// its latency (a fast 429, a timeout) would make the latency comparison
// judge how the side fails rather than how fast it serves, and the
// error-rate test judges failures already. What a failure is belongs to the
// caller — for the canary, a fallback or a throttle counts as one.
func (s *Side) Record(d time.Duration, failed bool) {
	if failed {
		s.failures.Add(1)
		return
	}
	s.latency[bounds.Index(float64(d))].Add(1)
}

// RecordCold counts a successful request whose latency is not to be judged:
// a function's answer that waited for its instance to start. It counts
// toward the side's requests and error rate, not its latencies.
func (s *Side) RecordCold() { s.cold.Add(1) }

// Snapshot reads the side's counters. Requests recorded while it reads may
// be counted or not, each one whole.
func (s *Side) Snapshot() Counts {
	var c Counts
	c.Failures = s.failures.Load()
	c.Cold = s.cold.Load()
	for i := range s.latency {
		c.Latency[i] = s.latency[i].Load()
	}
	return c
}

// Counts are one side's requests over a window: failures, and the
// successes by latency bucket (bucket i holds latencies up to
// 10 µs · 1.1^i, the last one everything above ~2.9 min).
type Counts struct {
	Failures uint64
	// Cold counts successes whose latency is not judged (RecordCold).
	Cold    uint64
	Latency [NumBuckets]uint64
}

// Sub returns the requests c counts beyond an earlier snapshot of the same
// side: the window between them. A counter below the earlier one (the
// snapshots swapped, or of another side) gives 0 there, not a wrapped
// count of billions.
func (c Counts) Sub(earlier Counts) Counts {
	d := Counts{Failures: sub(c.Failures, earlier.Failures), Cold: sub(c.Cold, earlier.Cold)}
	for i := range c.Latency {
		d.Latency[i] = sub(c.Latency[i], earlier.Latency[i])
	}
	return d
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// Successes returns the number of successful requests whose latencies are
// judged (cold ones not included).
func (c *Counts) Successes() uint64 { return histogram.Total(c.Latency[:]) }

// Requests returns the number of requests, failed or not, cold or not.
func (c *Counts) Requests() uint64 { return c.Failures + c.Cold + c.Successes() }

// Quantile estimates the q-quantile (0 < q ≤ 1) of the successful
// requests' latencies, 0 when there are none. Inside the bucket that holds
// it the estimate is interpolated geometrically, as the buckets grow; a
// quantile in the last, unbounded bucket is reported as its lower bound.
func (c *Counts) Quantile(q float64) time.Duration {
	n := c.Successes()
	if n == 0 {
		return 0
	}
	rank := max(math.Ceil(q*float64(n)), 1)
	i, below := histogram.Rank(c.Latency[:], rank)
	if i >= len(bounds) {
		return time.Duration(bounds[len(bounds)-1])
	}
	frac := (rank - float64(below)) / float64(c.Latency[i])
	if i == 0 {
		return time.Duration(frac * bounds[0])
	}
	lo := bounds[i-1]
	return time.Duration(lo * math.Pow(bounds[i]/lo, frac))
}
