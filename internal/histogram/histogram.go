// Package histogram is the bucket arithmetic turnout's latency histograms
// share: which bucket a value falls in, and which bucket holds the value of
// a given rank. The counts stay with their users (a fixed array per second
// in the auto-rollback window and the dashboard's live series, a sparse
// slice in the traffic table) so each keeps its own memory shape and its own
// way of turning a bucket back into a value.
package histogram

// Bounds are a histogram's ascending upper bounds: bucket i holds the
// values v with Bounds[i-1] < v ≤ Bounds[i], and bucket len(Bounds) the
// values above them all, so a histogram over Bounds has len(Bounds)+1
// buckets.
type Bounds []float64

// Index returns the bucket v falls in, from 0 to len(b).
func (b Bounds) Index(v float64) int {
	// The first bound ≥ v, by binary search (sort.SearchFloat64s without
	// the closure).
	lo, hi := 0, len(b)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Rank returns the bucket of counts that holds the value of the given rank
// (1 for the smallest value; a fractional rank falls in the bucket that
// holds its ceiling) and how many values the buckets before it hold. When
// counts hold fewer values than rank, i is len(counts) and below is their
// total. The rank of quantile q of n values is q·n, rounded up or not as the
// caller's estimate needs.
func Rank[C ~uint32 | ~uint64](counts []C, rank float64) (i int, below uint64) {
	for i, c := range counts {
		if float64(below+uint64(c)) >= rank {
			return i, below
		}
		below += uint64(c)
	}
	return len(counts), below
}

// Total returns the number of values counts hold.
func Total[C ~uint32 | ~uint64](counts []C) uint64 {
	var n uint64
	for _, c := range counts {
		n += uint64(c)
	}
	return n
}
