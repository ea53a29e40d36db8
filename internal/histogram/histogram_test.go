package histogram

import "testing"

func TestBoundsIndex(t *testing.T) {
	b := Bounds{0.5, 1, 2, 5}
	tests := []struct {
		v    float64
		want int
	}{
		{-1, 0},
		{0, 0},
		{0.5, 0}, // a bound belongs to the bucket it closes
		{0.51, 1},
		{1, 1},
		{1.5, 2},
		{2, 2},
		{4.99, 3},
		{5, 3},
		{5.01, 4}, // above every bound: the last, unbounded bucket
		{1e300, 4},
	}
	for _, tt := range tests {
		if got := b.Index(tt.v); got != tt.want {
			t.Errorf("Index(%v) = %d, want %d", tt.v, got, tt.want)
		}
	}
	if got := Bounds(nil).Index(3); got != 0 {
		t.Errorf("no bounds: Index = %d, want 0 (the one bucket)", got)
	}
}

// TestBoundsIndexLinear checks the binary search against the linear scan
// the histograms used before, on every bound and between them.
func TestBoundsIndexLinear(t *testing.T) {
	b := make(Bounds, 64)
	d := 100.0
	for i := range b {
		b[i] = d
		d *= 1.25
	}
	linear := func(v float64) int {
		for i, ub := range b {
			if v <= ub {
				return i
			}
		}
		return len(b)
	}
	for _, ub := range b {
		for _, v := range []float64{ub - 1, ub - 1e-9, ub, ub + 1e-9, ub + 1} {
			if got, want := b.Index(v), linear(v); got != want {
				t.Fatalf("Index(%v) = %d, linear scan %d", v, got, want)
			}
		}
	}
}

func TestRank(t *testing.T) {
	tests := []struct {
		name      string
		counts    []uint32
		rank      float64
		wantI     int
		wantBelow uint64
	}{
		{"empty", nil, 1, 0, 0},
		{"first value", []uint32{2, 3, 5}, 1, 0, 0},
		{"last of first bucket", []uint32{2, 3, 5}, 2, 0, 0},
		{"first of second bucket", []uint32{2, 3, 5}, 3, 1, 2},
		{"fractional rank rounds up", []uint32{2, 3, 5}, 2.01, 1, 2},
		{"last value", []uint32{2, 3, 5}, 10, 2, 5},
		{"zero buckets are skipped", []uint32{0, 4, 0, 0, 1}, 5, 4, 4},
		{"leading zeros", []uint32{0, 0, 1}, 0.5, 2, 0},
		{"beyond the total", []uint32{2, 3}, 6, 2, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, below := Rank(tt.counts, tt.rank)
			if i != tt.wantI || below != tt.wantBelow {
				t.Errorf("Rank(%v, %v) = %d, %d; want %d, %d", tt.counts, tt.rank, i, below, tt.wantI, tt.wantBelow)
			}
			c64 := make([]uint64, len(tt.counts))
			for j, c := range tt.counts {
				c64[j] = uint64(c)
			}
			if i64, below64 := Rank(c64, tt.rank); i64 != i || below64 != below {
				t.Errorf("uint64 counts: Rank = %d, %d; uint32 gave %d, %d", i64, below64, i, below)
			}
		})
	}
}

func TestTotal(t *testing.T) {
	if got := Total([]uint32{1, 0, 4294967295}); got != 4294967296 {
		t.Errorf("Total = %d: uint32 counts must sum without wrapping", got)
	}
	if got := Total[uint64](nil); got != 0 {
		t.Errorf("Total(nil) = %d", got)
	}
}

func BenchmarkIndex(b *testing.B) {
	bounds := Bounds{0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}
	vs := []float64{0.3, 4, 40, 900}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		bounds.Index(vs[i&3])
		i++
	}
}
