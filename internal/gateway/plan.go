package gateway

import (
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/cors"
	"github.com/turnout/turnout/internal/metrics"
)

// maxReplayBody is the most of a request body kept for replaying it on the
// fallback; a longer body streams to the primary and is not replayed.
const maxReplayBody = 1 << 20

// plan is what one route does with a request: which backend answers it
// (primary), which answers a weighted share of it instead (canary), where
// it goes when either fails (its side's fallback), and what guards the
// primary (a rate limit, a circuit breaker, the auto-rollback window), and
// where a copy of its requests goes to be compared (shadow). The compiled
// table maps each request to one plan; plans are immutable but for the
// counters inside breaker and health.
type plan struct {
	pattern string // the route's canonical pattern
	off     bool   // switched off: primary is the route's fallback or the legacy origin

	primary side
	canary  *canary      // nil: every request goes to the primary
	shadow  *mirrorSlot  // nil: no request is copied
	guard   *guard       // nil: no authorizer checks the route's requests
	keys    *keyring     // nil: the route requires no API key
	cors    *cors.Policy // nil: no CORS (gateway/cors.go)

	limiter *rate.Limiter // set for a route with rate_limit
	spill   bool          // past the limit: to the fallback, not 429
	breaker *breaker.Breaker
	health  *healthWindow // set for a route with auto_rollback

	// servedBy is the canonical name of the served-by header, "" for none.
	servedBy string
	metrics  *metrics.Metrics

	// loop is the primary's origin when the plan is plain enough for the
	// event loop to serve its requests (loopable, loop.go); nil when only
	// ServeHTTP may.
	loop *originBackend
}

// side is one of a route's targets with what depends on it: the primary
// (the baseline, when the route has a canary) or the canary.
type side struct {
	backend  backend
	fallback *fallback // nil: nowhere else to go
	// timeout is the route's deadline, when it is worth a context: shorter
	// than the origin's own overall timeout, on a route without a fallback
	// (whose deadline covers both attempts). 0: none.
	timeout time.Duration
	// bodyLimit, when not 0, is the backend's limit on a request body it
	// reads whole (a function's); bodyWhose names whose limit it is.
	bodyLimit int64
	bodyWhose string
	// servedByValue is the served-by header's value when the backend
	// answers (capacity 1, so that an append by whoever else sets the
	// header copies it instead of writing into it).
	servedByValue []string

	observer   atomic.Pointer[metrics.Target] // the backend's, resolved on first request
	fbObserver atomic.Pointer[metrics.Target] // the fallback's, on first use
}

func (s *side) target() string { return s.backend.target() }

// fallback is where a route's requests go when its primary fails: an
// origin, and the rules for sending a request there.
type fallback struct {
	backend  *originBackend
	onStatus []int // fallback_on_status: primary answers treated as failures
	unsafe   bool  // fallback_unsafe: replay non-idempotent methods too
	// timeout covers the whole request; the primary gets timeout − reserve,
	// so the fallback always has reserve left. 0: no route deadline.
	timeout, reserve time.Duration
}

// replayable reports whether r may be sent a second time.
func (fb *fallback) replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return fb.unsafe
}

// refuses reports whether the primary's answer with status is to be
// dropped for the fallback (fallback_on_status).
func (fb *fallback) refuses(status int) bool {
	return status >= 200 && slices.Contains(fb.onStatus, status)
}

// observerFor returns the route's (pattern's) metrics children for the
// backend that answered on side s. They are resolved on a route's first
// request rather than at Build, so applying 10,000 routes does not cost
// 70,000 label lookups.
func (s *side) observerFor(m *metrics.Metrics, pattern string, fellBack bool) *metrics.Target {
	ptr := &s.observer
	if fellBack {
		ptr = &s.fbObserver
	}
	o := ptr.Load()
	if o == nil {
		if fellBack {
			o = m.ForFallback(pattern, s.fallback.backend.target())
		} else {
			o = m.For(pattern, s.target())
		}
		ptr.Store(o)
	}
	return o
}

// record tells the route's breaker and its auto-rollback window, the two
// that judge the primary, what one request on the primary said about it
// (a canary's requests are not theirs to judge: canary.observe counts
// them, per side, for the rollout's comparison): f is nil when
// the primary answered, else why it did not; took is how long the primary
// had the request.
//
// A throttle says the function is busy, not broken (spillover handles it),
// a bad request says nothing about the function, and neither does a client
// that went away or an answer cut short mid-way: none moves the breaker or the auto-rollback window. A
// request the open breaker kept from the primary is, for auto-rollback, one
// the primary failed (it cannot be trusted with requests); the breaker
// itself is not told, as it never let the request through.
func (p *plan) record(f *failure, took time.Duration) {
	res := breaker.Success
	switch {
	case f == nil:
	case f.clientSide() || f.started:
		// An answer cut short after it began: the origin aborted it, or
		// writing to the client failed; which one cannot be told apart.
		res = breaker.Inconclusive
	default:
		res = breaker.Failure
	}
	if p.breaker != nil && (f == nil || f.reason != turnout.ReasonBreakerOpen) {
		p.breaker.Record(res)
	}
	if p.health != nil && res != breaker.Inconclusive {
		p.health.record(res == breaker.Success, took, time.Now())
	}
}
