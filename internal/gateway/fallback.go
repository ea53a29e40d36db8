package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/origin"
)

// maxReplayBody is the most of a request body kept for replaying it on the
// fallback; a longer body streams to the primary and is not replayed.
const maxReplayBody = 1 << 20

// fallbackPlan is where a route's requests go when its primary fails.
type fallbackPlan struct {
	name     string
	pool     *origin.Pool
	onStatus []int
	unsafe   bool
	// timeout covers the whole request; the primary gets timeout − reserve,
	// so the fallback always has reserve left. 0: no route deadline.
	timeout, reserve time.Duration
}

// replayable reports whether r may be sent a second time.
func (fb *fallbackPlan) replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return fb.unsafe
}

// fellBack is the access log's account of why the fallback answered.
func (f *failure) fellBack() error {
	if f.err == nil {
		return errors.New("fallback: " + f.reason)
	}
	return fmt.Errorf("fallback: %s: %w", f.reason, f.err)
}

// clientSide reports failures that do not count against the primary.
func (f *failure) clientSide() bool {
	switch f.reason {
	case turnout.ReasonThrottled, "request_too_large", turnout.ReasonTooLarge, turnout.ReasonBadRequest, "invalid_request", turnout.ReasonClientClosed:
		return true
	}
	return false
}

// record tells the route's breaker and its auto-rollback window, the two
// that judge the primary, what one request said about it: f is nil when
// the primary answered, else why it did not; took is how long the primary
// had the request.
//
// A throttle says the function is busy, not broken (spillover handles it),
// a bad request says nothing about the function, and neither does a client
// that went away: none moves the breaker or the auto-rollback window. A
// request the open breaker kept from the primary is, for auto-rollback, one
// the primary failed (it cannot be trusted with requests); the breaker
// itself is not told, as it never let the request through.
func (tg *target) record(f *failure, took time.Duration) {
	res := breaker.Success
	switch {
	case f == nil:
	case f.clientSide():
		res = breaker.Inconclusive
	default:
		res = breaker.Failure
	}
	if tg.breaker != nil && (f == nil || f.reason != turnout.ReasonBreakerOpen) {
		tg.breaker.Record(res)
	}
	if tg.health != nil && res != breaker.Inconclusive {
		tg.health.record(res == breaker.Success, took, time.Now())
	}
}

// serveGuarded serves a function route, or an origin route with a fallback:
// the primary first (unless its breaker is open), then, when the primary
// fails before answering and the request can be replayed, the fallback.
// It fills a with how the request was answered.
func (g *Gateway) serveGuarded(w http.ResponseWriter, r *http.Request, tg *target, id, path string, values []string, start time.Time, a *answer) {
	fb := tg.fb
	replay := fb != nil && fb.replayable(r)
	var body []byte

	// Keep the body for a second send: function routes read it whole
	// anyway; origin routes keep up to maxReplayBody.
	switch {
	case tg.fn != nil:
		var f *failure
		if body, f = g.readFunctionBody(r, tg.fn); f != nil {
			answeredByGateway(w, tg.servedByHeader, f.reason, tg.name, "")
			writeError(w, f.code, f.msg, id)
			a.outcome, a.reason, a.code, a.err = turnout.Error, f.reason, f.code, f.err
			return
		}
		a.body, a.buffered = body, true
	case replay && r.Body != nil && r.Body != http.NoBody:
		buf, err := io.ReadAll(io.LimitReader(r.Body, maxReplayBody+1))
		if err != nil {
			answeredByGateway(w, tg.servedByHeader, turnout.ReasonBadRequest, tg.name, "")
			writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error(), id)
			a.outcome, a.reason, a.code, a.err = turnout.Error, turnout.ReasonBadRequest, http.StatusBadRequest, err
			return
		}
		if len(buf) > maxReplayBody {
			replay = false
			r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		} else {
			body = buf
			a.body, a.buffered = body, true
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
	}

	// One deadline covers both attempts; the primary may not eat the
	// fallback's reserved share.
	pr := r
	if fb != nil && fb.timeout > 0 {
		outer, cancel := context.WithTimeout(r.Context(), fb.timeout)
		defer cancel()
		r = r.WithContext(outer)
		inner, cancelInner := context.WithTimeout(outer, fb.timeout-fb.reserve)
		defer cancelInner()
		pr = r.WithContext(inner)
	}

	var f *failure
	if tg.limiter != nil && !tg.limiter.Allow() {
		if !tg.spill {
			g.opts.Metrics.Rejected.WithLabelValues(turnout.ReasonRateLimited).Inc()
			wait := tg.limiter.Reserve()
			secs := int(math.Ceil(wait.Delay().Seconds()))
			wait.Cancel()
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			answeredByGateway(w, tg.servedByHeader, turnout.ReasonRateLimited, tg.name, "")
			writeError(w, http.StatusTooManyRequests, "route "+tg.pattern+" is over its rate limit", id)
			a.outcome, a.reason, a.code = turnout.Throttled, turnout.ReasonRateLimited, http.StatusTooManyRequests
			return
		}
		// Over the limit: the primary is not called, so this is not a
		// replay and any method may go to the fallback.
		f, replay = &failure{reason: turnout.ReasonRateLimited}, true
	} else if tg.breaker != nil && !tg.breaker.OK() {
		// The primary is not called at all, so even an unsafe request may
		// go to the fallback: it is not a replay.
		f, replay = &failure{reason: turnout.ReasonBreakerOpen}, fb != nil
		tg.record(f, 0)
	} else {
		var done bool
		t0 := time.Now()
		a.code, a.n, done, f = g.primary(w, pr, tg, replay, body, id, path, values, start)
		tg.record(f, time.Since(t0))
		if f != nil && f.reason == turnout.ReasonClientClosed {
			// Nobody is left to answer, on the fallback or otherwise.
			a.outcome, a.err = turnout.ClientClosed, f.err
			if !done {
				a.code, a.n = turnout.StatusClientClosed, 0
			}
			return
		}
		if done {
			a.outcome = turnout.Served
			return
		}
	}
	a.reason = f.reason
	if !replay || f.reason == turnout.ReasonBadRequest {
		if f.code == 0 { // breaker open with nowhere to go: cannot happen, breakers need a fallback
			f.code, f.msg = http.StatusServiceUnavailable, "route unavailable"
		}
		a.outcome = turnout.Error
		if f.reason == turnout.ReasonBadRequest {
			a.outcome = turnout.Rejected
		}
		if f.reason == turnout.ReasonThrottled {
			w.Header().Set("Retry-After", "1")
			a.outcome = turnout.Throttled
		}
		answeredByGateway(w, tg.servedByHeader, f.reason, tg.name, "")
		writeError(w, f.code, f.msg, id)
		a.code, a.n, a.err = f.code, 0, f.err
		return
	}

	// The fallback.
	g.opts.Metrics.Fallbacks.WithLabelValues(tg.pattern, f.reason).Inc()
	switch f.reason {
	case turnout.ReasonThrottled, turnout.ReasonRateLimited:
		a.outcome = turnout.Throttled
	case turnout.ReasonBreakerOpen:
		a.outcome = turnout.BreakerOpen
	default:
		a.outcome = turnout.Fallback
	}
	a.fellBack = true
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	if tg.servedByHeader != "" {
		w.Header()[tg.servedByHeader] = []string{tg.fbName + "; fallback=" + f.reason}
	}
	var ferr error
	a.code, a.n, ferr = forward(fb.pool, w, r)
	if ferr != nil && clientGone(r.Context(), ferr) {
		// The client left while the fallback worked: not the fallback's
		// failure either. The reason stays the primary's.
		a.outcome, a.err = turnout.ClientClosed, errors.Join(f.fellBack(), ferr)
		if a.code == 0 {
			a.code = turnout.StatusClientClosed
		}
		return
	}
	if ferr != nil {
		// The fallback failed too: nothing answered usefully. The reason
		// stays the primary's; the access log has both errors.
		a.code = g.originErrorFor(w, tg, fb.name, f.reason, ferr, id, a.code)
		a.outcome, a.err = turnout.Error, errors.Join(f.fellBack(), ferr)
		return
	}
	a.err = f.fellBack()
}

// primary tries tg's own target. done reports that a response was written
// (code and n describe it); otherwise f says why the primary failed and
// nothing was written. With done, f is nil, or the client-closed failure
// of a client that went away mid-response. A listed status
// (fallback_on_status) is a failure only when the request can go to the
// fallback (replay).
func (g *Gateway) primary(w http.ResponseWriter, r *http.Request, tg *target, replay bool, body []byte, id, path string, values []string, start time.Time) (code int, n int64, done bool, f *failure) {
	if tg.fn != nil {
		out, f := g.callFunction(r, tg, body, id, path, values, start)
		if f == nil && replay && slices.Contains(tg.fb.onStatus, out.Status) {
			f = &failure{reason: turnout.ReasonStatus, code: out.Status, msg: "function " + tg.fn.name + " answered " + http.StatusText(out.Status)}
		}
		if f != nil {
			return 0, 0, false, f
		}
		g.servedBy(w, tg)
		out.Write(w)
		return out.Status, int64(len(out.Body)), true, nil
	}

	g.servedBy(w, tg)
	resp, err := tg.pool.RoundTrip(w, r)
	if err != nil {
		return 0, 0, false, g.originFailure(r, tg, err)
	}
	if replay && resp.Status >= 200 && slices.Contains(tg.fb.onStatus, resp.Status) {
		// fallback_on_status: the answer is dropped unsent.
		c := resp.Status
		resp.Discard()
		return 0, 0, false, &failure{reason: turnout.ReasonStatus, code: c, msg: "origin " + tg.origin + " answered " + http.StatusText(c)}
	}
	code, n, err = send(resp, w)
	if err != nil && code == 0 { // a WebSocket hand-over failed before the 101
		return 0, 0, false, g.originFailure(r, tg, err)
	}
	if err != nil && clientGone(r.Context(), err) {
		return code, n, true, clientClosed(err) // mid-response
	}
	// Any other error means the response had started and the origin
	// package aborted it.
	return code, n, true, nil
}

// originFailure maps an origin exchange that failed before writing anything
// (an *origin.Error) to the primary's failure.
func (g *Gateway) originFailure(r *http.Request, tg *target, err error) *failure {
	var oe *origin.Error
	switch {
	case clientGone(r.Context(), err):
		return clientClosed(err)
	case errors.As(err, &oe) && oe.Kind == origin.KindClient:
		return &failure{reason: turnout.ReasonBadRequest, code: oe.StatusCode(), msg: clientBodyMessage(oe), err: err}
	case errors.As(err, &oe):
		g.opts.Metrics.OriginErrors.WithLabelValues(tg.origin, oe.Kind.String()).Inc()
		return &failure{reason: turnout.OriginReason(oe.Kind.String()), code: oe.StatusCode(), msg: "origin " + tg.origin + ": " + oe.Kind.String(), err: err}
	}
	// Not reached: RoundTrip fails with *origin.Error only.
	return &failure{reason: turnout.OriginReason("protocol"), code: http.StatusBadGateway, msg: "origin " + tg.origin + ": protocol", err: err}
}

// servedBy sets the served-by header to tg's own target, unless it is
// turned off.
func (g *Gateway) servedBy(w http.ResponseWriter, tg *target) {
	if tg.servedByHeader != "" {
		w.Header()[tg.servedByHeader] = tg.servedByValue
	}
}

// answeredByGateway sets the served-by header (named header, "" when off)
// of an answer turnout writes itself: "turnout; reason=REASON", then
// "; target=T" for the target that failed or was refused, then
// "; fallback=WHY" when that target was the fallback, sent there because
// the primary failed with WHY.
func answeredByGateway(w http.ResponseWriter, header, reason, target, fellBackFor string) {
	if header == "" {
		return
	}
	v := "turnout; reason=" + reason
	if target != "" {
		v += "; target=" + target
	}
	if fellBackFor != "" {
		v += "; fallback=" + fellBackFor
	}
	w.Header()[header] = []string{v}
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }
