package judge

import (
	"sync"
	"testing"
	"time"
)

func TestBounds(t *testing.T) {
	if len(bounds) != NumBuckets-1 {
		t.Fatalf("%d bounds for %d buckets", len(bounds), NumBuckets)
	}
	if bounds[0] != float64(10*time.Microsecond) {
		t.Errorf("first bound %v ns, want 10 µs", bounds[0])
	}
	for i := 1; i < len(bounds); i++ {
		if r := bounds[i] / bounds[i-1]; r < 1.09 || r > 1.11 {
			t.Fatalf("bound %d is %.3f× the one before, want 1.1×", i, r)
		}
	}
	if last := time.Duration(bounds[len(bounds)-1]); last < 2*time.Minute || last > 4*time.Minute {
		t.Errorf("last bound %v, want a few minutes", last)
	}
}

func TestSideRecord(t *testing.T) {
	var s Side
	s.Record(100*time.Millisecond, false)
	s.Record(100*time.Millisecond, false)
	s.Record(5*time.Second, true) // a failure's latency is not kept
	s.Record(-time.Second, false) // clock step: first bucket
	s.Record(time.Hour, false)    // past the last bound: last bucket
	c := s.Snapshot()
	if c.Failures != 1 || c.Successes() != 4 || c.Requests() != 5 {
		t.Fatalf("failures %d, successes %d, requests %d; want 1, 4, 5", c.Failures, c.Successes(), c.Requests())
	}
	if c.Latency[0] != 1 || c.Latency[NumBuckets-1] != 1 || c.Latency[bounds.Index(1e8)] != 2 {
		t.Errorf("latencies in the wrong buckets: first %d, last %d, 100 ms %d", c.Latency[0], c.Latency[NumBuckets-1], c.Latency[bounds.Index(1e8)])
	}
	s.Record(time.Millisecond, true)
	s.Record(time.Millisecond, false)
	w := s.Snapshot().Sub(c)
	if w.Failures != 1 || w.Successes() != 1 || w.Latency[bounds.Index(1e6)] != 1 {
		t.Errorf("window: failures %d, successes %d; want the last two requests only", w.Failures, w.Successes())
	}
	if back := c.Sub(s.Snapshot()); back.Requests() != 0 {
		t.Errorf("snapshots swapped: %d requests, want 0", back.Requests())
	}
}

func TestQuantile(t *testing.T) {
	var s Side
	c := s.Snapshot()
	if q := c.Quantile(0.99); q != 0 {
		t.Errorf("empty: p99 = %v, want 0", q)
	}
	// 1..1000 ms, one each: every estimate within the 10 % of a bucket.
	for i := 1; i <= 1000; i++ {
		s.Record(time.Duration(i)*time.Millisecond, false)
	}
	c = s.Snapshot()
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.001, time.Millisecond}} {
		got := c.Quantile(tt.q)
		if r := float64(got) / float64(tt.want); r < 0.9 || r > 1.1 {
			t.Errorf("q%v = %v, want %v ± 10 %%", tt.q, got, tt.want)
		}
	}
	var over Side
	over.Record(time.Hour, false)
	c = over.Snapshot()
	if got, want := c.Quantile(0.5), time.Duration(bounds[len(bounds)-1]); got != want {
		t.Errorf("beyond the last bound: %v, want the bound %v", got, want)
	}
}

// TestSideConcurrent records from many goroutines (run with -race): every
// request is counted once.
func TestSideConcurrent(t *testing.T) {
	var s Side
	var wg sync.WaitGroup
	const writers, each = 8, 2000
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				s.Record(time.Duration(w*each+i)*time.Microsecond, i%10 == 0)
			}
		})
	}
	// Snapshots taken meanwhile never count a failure twice or more
	// requests than were made.
	for range 50 {
		c := s.Snapshot()
		if c.Requests() > writers*each {
			t.Fatalf("snapshot counts %d requests of %d", c.Requests(), writers*each)
		}
	}
	wg.Wait()
	c := s.Snapshot()
	if c.Requests() != writers*each || c.Failures != writers*each/10 {
		t.Errorf("requests %d, failures %d; want %d, %d", c.Requests(), c.Failures, writers*each, writers*each/10)
	}
}

func BenchmarkRecord(b *testing.B) {
	var s Side
	ds := []time.Duration{800 * time.Microsecond, 12 * time.Millisecond, 180 * time.Millisecond, 2 * time.Second}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Record(ds[i&3], i&63 == 0)
		i++
	}
}

// BenchmarkRecordParallel is Record from every core on one side, the
// request path's contended case.
func BenchmarkRecordParallel(b *testing.B) {
	var s Side
	ds := []time.Duration{800 * time.Microsecond, 12 * time.Millisecond, 180 * time.Millisecond, 2 * time.Second}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Record(ds[i&3], i&63 == 0)
			i++
		}
	})
}

func BenchmarkJudge(b *testing.B) {
	var base, canary Side
	for i := range 10000 {
		base.Record(time.Duration(90+i%20)*time.Millisecond, i%100 == 0)
		canary.Record(time.Duration(92+i%20)*time.Millisecond, i%90 == 0)
	}
	bc, cc := base.Snapshot(), canary.Snapshot()
	var a Analysis
	b.ReportAllocs()
	for b.Loop() {
		a.Judge(bc, cc)
	}
}

// TestRecordCold: a cold success counts as a request, not a failure, and
// not in the latencies the U test and the quantiles judge.
func TestRecordCold(t *testing.T) {
	var s Side
	s.Record(time.Millisecond, false)
	s.RecordCold()
	s.RecordCold()
	s.Record(0, true)
	c := s.Snapshot()
	if c.Requests() != 4 || c.Successes() != 1 || c.Cold != 2 || c.Failures != 1 {
		t.Fatalf("requests %d, judged successes %d, cold %d, failures %d; want 4, 1, 2, 1", c.Requests(), c.Successes(), c.Cold, c.Failures)
	}
	if w := c.Sub(Counts{Cold: 1}); w.Cold != 1 || w.Requests() != 3 {
		t.Fatalf("window: cold %d, requests %d; want 1, 3", w.Cold, w.Requests())
	}
}
