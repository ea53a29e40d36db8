package judge

import (
	"math"
	"slices"
	"testing"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// groups turns two raw samples into counts per distinct value, ascending:
// the ranked groups mannWhitneyU takes.
func groups(base, canary []float64) (b, c []uint64) {
	vals := slices.Sorted(slices.Values(append(slices.Clone(base), canary...)))
	vals = slices.Compact(vals)
	b, c = make([]uint64, len(vals)), make([]uint64, len(vals))
	for _, v := range base {
		i, _ := slices.BinarySearch(vals, v)
		b[i]++
	}
	for _, v := range canary {
		i, _ := slices.BinarySearch(vals, v)
		c[i]++
	}
	return b, c
}

func TestMannWhitneyUReference(t *testing.T) {
	tests := []struct {
		name         string
		base, canary []float64
		wantU, wantP float64
	}{
		{
			// scipy.stats.mannwhitneyu's documented example (Mann & Whitney's
			// ages): mannwhitneyu(males, females, method="asymptotic")
			// gives U1 = 17.0 and two-sided p = 0.11134688653314041; the
			// one-sided "greater" p is half of it. No ties.
			name:   "scipy males vs females",
			base:   []float64{20, 11, 17, 12},
			canary: []float64{19, 22, 16, 29, 24},
			wantU:  17, wantP: 0.11134688653314041 / 2,
		},
		{
			// By hand, with ties: canary {2,3,3,4} vs baseline {1,2,2,3}.
			// Midranks: 1→1, 2→3 (ranks 2–4), 3→6 (5–7), 4→8. Canary rank
			// sum 3+6+6+8 = 23, U = 23 − 4·5/2 = 13 (pairwise: 2+3.5+3.5+4).
			// μ = 8; ties Σ(t³−t) = 24+24 = 48; σ² = 16/12·(9 − 48/56) =
			// 10.857142857; z = (13 − 8 − 0.5)/σ = 1.3656982; p = Q(z) =
			// 0.0860168545 (as scipy's asymptotic method with tie correction).
			name:   "ties by hand",
			base:   []float64{1, 2, 2, 3},
			canary: []float64{2, 3, 3, 4},
			wantU:  13, wantP: 0.08601685446091148,
		},
		{
			// The other way round: U' = n₁n₂ − U = 3, and the canary is the
			// faster side, so p is large: z = (3−8−0.5)/σ = −1.6692, Q = 0.9525.
			name:   "canary faster",
			base:   []float64{2, 3, 3, 4},
			canary: []float64{1, 2, 2, 3},
			wantU:  3, wantP: 0.5 * math.Erfc(-5.5/math.Sqrt(10.857142857142856)/math.Sqrt2),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := groups(tt.base, tt.canary)
			got := mannWhitneyU(b, c)
			if got.U != tt.wantU || !near(got.P, tt.wantP, 1e-12) {
				t.Errorf("U = %v, p = %.17g; want U = %v, p = %.17g", got.U, got.P, tt.wantU, tt.wantP)
			}
		})
	}
}

func TestMannWhitneyUEdges(t *testing.T) {
	if got := mannWhitneyU([]uint64{0, 0}, []uint64{3, 0}); got.P != 1 {
		t.Errorf("empty baseline: p = %v, want 1", got.P)
	}
	// Every value in one group: all ties, no evidence.
	if got := mannWhitneyU([]uint64{0, 50, 0}, []uint64{0, 70, 0}); got.P != 1 || got.U != 50*70/2 {
		t.Errorf("all tied: U = %v, p = %v; want U = 1750, p = 1", got.U, got.P)
	}
	// Groups with nothing in them change nothing.
	a := mannWhitneyU([]uint64{1, 2, 1, 0}, []uint64{0, 1, 2, 1})
	b := mannWhitneyU([]uint64{0, 1, 0, 2, 0, 1, 0, 0, 0}, []uint64{0, 0, 0, 1, 0, 2, 1, 0, 0})
	if a != b {
		t.Errorf("empty groups changed the test: %+v vs %+v", a, b)
	}
}

func TestZTestReference(t *testing.T) {
	// By hand: baseline 10 of 1000 failed, canary 25 of 1000. Pooled
	// p = 35/2000 = 0.0175; SE = √(0.0175·0.9825·(2/1000)) = 0.0058641;
	// z = (0.025 − 0.010)/SE = 2.5579436; one-sided p = Q(z) = 0.0052647
	// (standard normal table: Q(2.56) = 0.00523).
	got := zTest(10, 1000, 25, 1000)
	if !near(got.Z, 2.557943557892809, 1e-9) || !near(got.P, 0.005264659032641468, 1e-12) {
		t.Errorf("z = %.10g, p = %.10g; want z = 2.5579435579, p = 0.0052646590", got.Z, got.P)
	}
	// Swapped, the canary is the better side: z = −2.558, p = 1 − 0.00526.
	if got := zTest(25, 1000, 10, 1000); !near(got.P, 1-0.005264659032641468, 1e-12) {
		t.Errorf("canary better: p = %v, want 0.99474", got.P)
	}
	// By hand, 50/500 vs 75/500: pooled 0.125,
	// SE = √(0.125·0.875·0.004) = 0.0209165, z = 0.05/SE = 2.3904572,
	// p = Q(z) = 0.0084145.
	if got := zTest(50, 500, 75, 500); !near(got.Z, 2.390457218668787, 1e-9) || !near(got.P, 0.008414, 1e-5) {
		t.Errorf("50/500 vs 75/500: z = %v, p = %v", got.Z, got.P)
	}
	if got := zTest(0, 100, 0, 100); got.P != 1 {
		t.Errorf("no failures at all: p = %v, want 1", got.P)
	}
	if got := zTest(100, 100, 100, 100); got.P != 1 {
		t.Errorf("nothing but failures: p = %v, want 1", got.P)
	}
}

func TestFisherReference(t *testing.T) {
	// scipy.stats.fisher_exact's documented example: whales and sharks,
	// [[8, 2], [1, 5]], two-sided p = 0.0349650. The hypergeometric of
	// 16 draws with 10 in row one, 9 in column one: P(8) = C(9,8)·C(7,2)/
	// C(16,10) = 189/8008, P(9) = 7/8008, P(3) = 84/8008 (the other tail,
	// as unlikely as 8 or less). One-sided greater = 196/8008; the
	// two-sided value is (196 + 84)/8008 = 0.034965035, the documented one.
	if got, want := fisherGreater(8, 9, 10, 16), 196.0/8008; !near(got, want, 1e-12) {
		t.Errorf("whales: p = %.15g, want %.15g", got, want)
	}
	if got, want := fisherGreater(8, 10, 9, 16), 196.0/8008; !near(got, want, 1e-12) {
		t.Errorf("whales, margins swapped: p = %.15g, want %.15g", got, want)
	}
	// One failure in 20,000 requests, and the canary (200 of them) has it:
	// p = 200/20000 exactly.
	if got := fisherGreater(1, 200, 1, 20000); !near(got, 0.01, 1e-12) {
		t.Errorf("one failure: p = %v, want 0.01", got)
	}
	if got := fisherGreater(0, 200, 5, 20000); got != 1 {
		t.Errorf("no canary failure: p = %v, want 1", got)
	}
	// A large table: every term summed stays a probability.
	if got := fisherGreater(30, 5000, 40, 1_000_000); got <= 0 || got > 1e-20 {
		t.Errorf("30 of 40 failures in 0.5 %% of the traffic: p = %v, want tiny", got)
	}
}

func TestErrorTestMethod(t *testing.T) {
	// One canary error against a clean baseline 99 times larger: the
	// z-test would say z ≈ 10; the Fisher test says what it is, p = 0.01.
	if got := errorTest(0, 19800, 1, 200); got.Method != "Fisher test" || !near(got.P, 0.01, 1e-12) {
		t.Errorf("rare failures: %+v, want the Fisher test, p = 0.01", got)
	}
	if got := errorTest(10, 1000, 25, 1000); got.Method != "z-test" {
		t.Errorf("plenty of failures: %+v, want the z-test", got)
	}
	if got := errorTest(0, 0, 1, 200); got.P != 1 {
		t.Errorf("empty baseline: p = %v, want 1", got.P)
	}
}
