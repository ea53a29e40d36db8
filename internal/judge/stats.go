package judge

import "math"

// normalSF is the standard normal survival function, P(Z > z).
func normalSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// ErrorTest is the one-sided test of "the canary fails more often than the
// baseline" on one window's counts.
type ErrorTest struct {
	// Method is "z-test" (pooled two-proportion z-test) or "Fisher test"
	// (Fisher's exact test, used when a side expects fewer than 5 failures
	// or 5 successes, where the z-test's normal approximation is too
	// eager: one canary error against a clean baseline of 20,000 gives
	// z ≈ 10).
	Method string
	// Z is the z statistic (z-test only; 0 for the Fisher test).
	Z float64
	// P is the one-sided p-value.
	P float64
}

// minExpected is the least number of failures and of successes each side
// must expect, under the pooled rate, for the z-test's normal approximation
// (the usual rule of thumb; below it the Fisher test decides).
const minExpected = 5

// errorTest tests whether the canary's failure rate (fc of nc) is higher
// than the baseline's (fb of nb).
func errorTest(fb, nb, fc, nc uint64) ErrorTest {
	if nb == 0 || nc == 0 {
		return ErrorTest{Method: "z-test", P: 1}
	}
	n := float64(nb + nc)
	pool := float64(fb+fc) / n
	small := float64(min(nb, nc))
	if small*pool < minExpected || small*(1-pool) < minExpected {
		return ErrorTest{Method: "Fisher test", P: fisherGreater(fc, nc, fb+fc, nb+nc)}
	}
	return zTest(fb, nb, fc, nc)
}

// zTest is the pooled two-proportion z-test, one-sided: H1 is that the
// second proportion (fc/nc) is greater than the first.
func zTest(fb, nb, fc, nc uint64) ErrorTest {
	pb, pc := float64(fb)/float64(nb), float64(fc)/float64(nc)
	pool := float64(fb+fc) / float64(nb+nc)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(nb) + 1/float64(nc)))
	if se == 0 { // no failures, or nothing but failures, on both sides
		return ErrorTest{Method: "z-test", P: 1}
	}
	z := (pc - pb) / se
	return ErrorTest{Method: "z-test", Z: z, P: normalSF(z)}
}

// fisherGreater is the one-sided p-value of Fisher's exact test: the
// probability that a draw of n of N requests, k of which failed in all,
// holds x or more failures (the upper tail of the hypergeometric
// distribution).
func fisherGreater(x, n, k, total uint64) float64 {
	if x == 0 {
		return 1
	}
	hi := min(n, k)
	if x > hi {
		return 0
	}
	// log P(X = x), then each next term by the ratio of consecutive
	// probabilities; past the mode the terms only shrink, so stop once
	// they no longer change the sum.
	X, N, K, T := float64(x), float64(n), float64(k), float64(total)
	logp := lchoose(K, X) + lchoose(T-K, N-X) - lchoose(T, N)
	term := math.Exp(logp)
	sum := term
	for j := X; j < float64(hi); j++ {
		term *= (K - j) * (N - j) / ((j + 1) * (T - K - N + j + 1))
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return min(sum, 1)
}

func lchoose(n, k float64) float64 {
	a, _ := math.Lgamma(n + 1)
	b, _ := math.Lgamma(k + 1)
	c, _ := math.Lgamma(n - k + 1)
	return a - b - c
}

// UTest is the one-sided Mann–Whitney U test of "the canary's latencies
// are stochastically greater than the baseline's".
type UTest struct {
	// U is the canary's U statistic: the number of (canary, baseline)
	// pairs where the canary's latency is the greater, ties counting ½.
	U float64
	// Z is U's normal approximation with tie correction and a continuity
	// correction of ½ (scipy.stats.mannwhitneyu's asymptotic method).
	Z float64
	// P is the one-sided p-value.
	P float64
}

// mannWhitneyU tests whether the canary's values are greater than the
// baseline's. The values come as counts per ranked group (ascending; equal
// values share a group, as latencies in one histogram bucket do): base[i]
// and canary[i] values tie in group i, and rank above every value of the
// groups before. Groups it cannot tell apart count as ties, so a coarse
// grouping makes the test more cautious, never more eager.
func mannWhitneyU(base, canary []uint64) UTest {
	var nb, nc, tie float64
	var rankSum float64 // of the canary's values
	for i := range base {
		b, c := float64(base[i]), float64(canary[i])
		t := b + c
		if t == 0 {
			continue
		}
		// The group's values share the mean of the ranks they span.
		mid := nb + nc + (t+1)/2
		rankSum += c * mid
		tie += t*t*t - t
		nb += b
		nc += c
	}
	if nb == 0 || nc == 0 {
		return UTest{P: 1}
	}
	u := rankSum - nc*(nc+1)/2
	n := nb + nc
	mu := nb * nc / 2
	v := nb * nc / 12 * ((n + 1) - tie/(n*(n-1)))
	if v <= 0 { // every value ties: no evidence either way
		return UTest{U: u, P: 1}
	}
	z := (u - mu - 0.5) / math.Sqrt(v)
	return UTest{U: u, Z: z, P: normalSF(z)}
}
