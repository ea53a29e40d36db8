package traffic

import (
	"math"

	"github.com/turnout/turnout/internal/histogram"
)

// histRatio is the width of one histogram bucket: bucket i ≥ 1 holds
// [r^(i-1), r^i). A quantile is reported as its bucket's geometric midpoint
// (clamped to the observed min and max), so it is within √r − 1 = 5 % of a
// value the bucket really holds.
const histRatio = 1.1025

// histMaxBucket bounds the index: r^447 > 2^63, so every int64 fits.
const histMaxBucket = 448

var histLogRatio = math.Log(histRatio)

// hist is a log-bucket histogram of non-negative int64 values that keeps
// only the span of buckets it has seen, so a template whose durations fall
// within a factor of ten costs ~25 counters, and never more than
// histMaxBucket+1 of them.
type hist struct {
	lo       int32 // index of counts[0]
	counts   []uint64
	n        uint64
	min, max int64
}

func bucketOf(v int64) int32 {
	if v <= 0 {
		return 0
	}
	i := 1 + int32(math.Log(float64(v))/histLogRatio)
	return min(i, histMaxBucket)
}

func bucketValue(i int32) float64 {
	if i == 0 {
		return 0
	}
	return math.Exp((float64(i-1) + 0.5) * histLogRatio)
}

func (h *hist) add(v int64) {
	if v < 0 {
		v = 0
	}
	i := bucketOf(v)
	if h.n == 0 {
		h.min, h.max = v, v
	} else {
		h.min, h.max = min(h.min, v), max(h.max, v)
	}
	h.n++
	switch {
	case len(h.counts) == 0:
		h.counts = make([]uint64, 1, 8)
		h.lo = i
	case i < h.lo:
		grow := int(h.lo - i)
		c := make([]uint64, len(h.counts)+grow, len(h.counts)+grow+4)
		copy(c[grow:], h.counts)
		h.counts, h.lo = c, i
	case int(i-h.lo) >= len(h.counts):
		need := int(i-h.lo) + 1
		if need <= cap(h.counts) {
			h.counts = h.counts[:need]
		} else {
			c := make([]uint64, need, need+4)
			copy(c, h.counts)
			h.counts = c
		}
	}
	h.counts[i-h.lo]++
}

// quantile returns the value at quantile q (0 < q ≤ 1), 0 when empty.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	j, _ := histogram.Rank(h.counts, max(math.Ceil(q*float64(h.n)), 1))
	if j == len(h.counts) {
		return float64(h.max)
	}
	v := bucketValue(h.lo + int32(j))
	return math.Min(math.Max(v, float64(h.min)), float64(h.max))
}
