package gateway

import (
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/judge"
)

// comparison is what a route with a canary records for judging it against
// its baseline (internal/judge): each side's failures and latencies. It
// outlives tables, as breakers do, so a deployment that leaves the route
// alone does not reset its window; a new canary target starts afresh.
type comparison struct {
	baseline, canary judge.Side
	refs             int // tables holding it; g.mu guards it
}

// record counts one answered request of side s, with outcome o and status
// code, that took d. What a client did (hung up, sent a bad request) says
// nothing about either side and is not counted; a 5xx, or any answer but
// the side's own — an error, the fallback, a throttle, the breaker — is a
// failure of that side.
// A success that waited for a function's cold start (cold) is counted
// without its latency: a new function version starts every instance cold,
// so judging those latencies against a warm baseline would fail every
// function canary for being new, not for being slow.
// It reports whether it counted a failure.
func (c *comparison) record(s turnout.Side, o turnout.Outcome, code int, d time.Duration, cold bool) bool {
	if o == turnout.ClientClosed || o == turnout.Rejected {
		return false
	}
	side := &c.baseline
	if s == turnout.Canary {
		side = &c.canary
	}
	failed := o != turnout.Served || code >= 500
	if cold && !failed {
		side.RecordCold()
		return false
	}
	side.Record(d, failed)
	return failed
}

// comparisonLocked returns the comparison of the route with pattern whose
// primary and canary are the targets named, creating it on first use; t
// holds it until released, so a comparison no table uses any more (the
// canary was promoted, or removed) is let go. g.mu is held.
func (g *Gateway) comparisonLocked(t *Table, pattern, primary, canary string) *comparison {
	key := pattern + "|" + primary + "|" + canary
	c := g.comparisons[key]
	if c == nil {
		c = &comparison{}
		g.comparisons[key] = c
	}
	c.refs++
	t.comparisonKeys = append(t.comparisonKeys, key)
	return c
}

// release lets go of one table's hold on c (releaseKeys).
func (c *comparison) release() bool {
	c.refs--
	return c.refs <= 0
}

// Comparison returns the counts each side of the route with pattern (as
// canonical in the table) has recorded since its canary started, for
// judge.Analysis; ok is false when the active table has no canary on it.
func (g *Gateway) Comparison(pattern string) (baseline, canary judge.Counts, ok bool) {
	t := g.cur.Load()
	if t == nil {
		return baseline, canary, false
	}
	for _, p := range t.plans {
		if p.pattern == pattern && p.canary != nil && p.canary.compare != nil {
			return p.canary.compare.baseline.Snapshot(), p.canary.compare.canary.Snapshot(), true
		}
	}
	return baseline, canary, false
}
