package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/origin"
)

// serve carries out x's plan: it picks the side (the primary, or the
// canary for its share), sends the request there first (unless the rate
// limit or, on the primary, the breaker keeps it from it), then, when that
// fails before answering and the request can be replayed, to the side's
// fallback.
func (g *Gateway) serve(x *exchange) {
	p := x.plan
	s := &p.primary
	if p.canary != nil {
		if x.side = p.canary.pick(x.r); x.side == turnout.Canary {
			s = &p.canary.side
		}
	}
	x.at = s
	if s.timeout > 0 {
		ctx, cancel := context.WithTimeout(x.r.Context(), s.timeout)
		defer cancel()
		x.r = x.r.WithContext(ctx)
	}
	fb := s.fallback
	replay := fb != nil && fb.replayable(x.r)
	if f := g.readBody(x, &replay); f != nil {
		outcome := turnout.Error // too large for the backend
		if f.reason == turnout.ReasonBadRequest {
			outcome = turnout.Rejected // unreadable, as on every route
		}
		x.fail(outcome, f, s.target(), "")
		return
	}

	// A copy for the shadow needs the body kept.
	var mirror *mirrorSlot
	if sh := p.shadow; sh != nil && x.side == turnout.Baseline && sh.wants(x.r) && sh.keepBody(x) {
		mirror = sh
	}

	// One deadline covers both attempts; the side may not eat the
	// fallback's reserved share.
	pr := x.r
	if fb != nil && fb.timeout > 0 {
		outer, cancel := context.WithTimeout(x.r.Context(), fb.timeout)
		defer cancel()
		x.r = x.r.WithContext(outer)
		inner, cancelInner := context.WithTimeout(outer, fb.timeout-fb.reserve)
		defer cancelInner()
		pr = x.r.WithContext(inner)
	}

	// The rate limit counts the route's requests on both sides; the
	// breaker and the auto-rollback window judge the primary only.
	primary := x.side == turnout.Baseline
	var f *failure
	switch {
	case p.limiter != nil && !p.limiter.Allow():
		if !p.spill || fb == nil {
			g.overLimit(x)
			return
		}
		// Over the limit: the side is not called, so this is not a
		// replay and any method may go to the fallback.
		f, replay = &failure{reason: turnout.ReasonRateLimited}, true
	case primary && p.breaker != nil && !p.breaker.OK():
		// The primary is not called at all, so even an unsafe request may
		// go to the fallback: it is not a replay.
		f, replay = &failure{reason: turnout.ReasonBreakerOpen}, fb != nil
		p.record(f, 0)
	default:
		if x.servedBy != "" {
			x.w.Header()[x.servedBy] = s.servedByValue
		}
		onStatus := fb
		if !replay {
			onStatus = nil // a listed status is a failure only when the fallback may have the request
		}
		var c *capture
		if mirror != nil {
			c = &capture{ResponseWriter: x.w}
			c.limit = mirror.m.cfg.MaxBodyBytes
			x.capture = c
		}
		t0 := time.Now()
		f = g.try(x, pr, s.backend, onStatus)
		x.capture = nil
		if primary {
			p.record(f, time.Since(t0))
		}
		switch {
		case f == nil:
			x.outcome = turnout.Served
			if c != nil && c.wrote {
				mirror.copyOf(x, c) // only an answer that went out whole is compared
			}
			return
		case f.reason == turnout.ReasonClientClosed:
			// Nobody is left to answer, on the fallback or otherwise.
			x.outcome, x.err = turnout.ClientClosed, f.err
			if !f.started {
				x.code, x.n = turnout.StatusClientClosed, 0
			}
			return
		case f.started:
			// The answer had begun when the backend aborted it.
			x.outcome, x.reason, x.err = turnout.Error, f.reason, f.err
			return
		}
	}

	x.reason = f.reason
	if !replay || f.reason == turnout.ReasonBadRequest {
		if f.code == 0 { // the breaker open with nowhere to go: cannot happen, breakers need a fallback
			f.code, f.msg = http.StatusServiceUnavailable, "route unavailable"
		}
		outcome := turnout.Error
		switch f.reason {
		case turnout.ReasonBadRequest:
			outcome = turnout.Rejected
		case turnout.ReasonThrottled:
			x.w.Header().Set("Retry-After", "1")
			outcome = turnout.Throttled
		}
		x.fail(outcome, f, s.target(), "")
		return
	}
	g.toFallback(x, f)
}

// readBody reads the request body ahead of the first attempt when it must
// be whole or kept: a function's event carries it (bounded by the
// function's and the gateway's limits), and a replayable request keeps up
// to maxReplayBody of it for the fallback; a longer one streams to the
// primary and is not replayed.
func (g *Gateway) readBody(x *exchange, replay *bool) *failure {
	s := x.at
	switch {
	case s.bodyWhose != "":
		body, err := io.ReadAll(io.LimitReader(x.r.Body, s.bodyLimit+1))
		if err != nil {
			return &failure{reason: turnout.ReasonBadRequest, code: http.StatusBadRequest, msg: "reading the request body: " + err.Error(), err: err}
		}
		if int64(len(body)) > s.bodyLimit {
			msg := fmt.Sprintf("request body is over the %s limit of %d bytes", s.bodyWhose, s.bodyLimit)
			return &failure{reason: turnout.ReasonTooLarge, code: http.StatusRequestEntityTooLarge, msg: msg, err: errors.New(msg)}
		}
		x.body, x.buffered = body, true
	case *replay && x.r.Body != nil && x.r.Body != http.NoBody:
		buf, err := io.ReadAll(io.LimitReader(x.r.Body, maxReplayBody+1))
		if err != nil {
			return &failure{reason: turnout.ReasonBadRequest, code: http.StatusBadRequest, msg: "reading the request body: " + err.Error(), err: err}
		}
		if len(buf) > maxReplayBody {
			*replay = false
			x.r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), x.r.Body), x.r.Body}
		} else {
			x.body, x.buffered = buf, true
			x.r.Body = io.NopCloser(bytes.NewReader(buf))
		}
	}
	return nil
}

// try sends r to backend b and, when b answers usefully, sends its answer
// to the client, filling in x's status and size. It returns nil when the
// answer went out whole, else why not: f.started tells an answer cut short
// from one that never began (which leaves the client's response untouched).
// With onStatus, an answer whose status the fallback's fallback_on_status
// lists is dropped unsent and is a failure.
func (g *Gateway) try(x *exchange, r *http.Request, b backend, onStatus *fallback) *failure {
	rep, f := b.roundTrip(x, r)
	if f != nil {
		return f
	}
	code := rep.StatusCode()
	if onStatus != nil && onStatus.refuses(code) {
		rep.Discard()
		return &failure{reason: turnout.ReasonStatus, code: code, msg: strings.Replace(b.target(), ":", " ", 1) + " answered " + http.StatusText(code)}
	}
	w := x.w
	if x.capture != nil {
		w = x.capture
	}
	n, err := rep.Send(w)
	x.code, x.n = code, n
	if err == nil {
		return nil
	}
	return sendFailure(x, r, b, err)
}

// sendFailure says why b's answer did not go out whole.
func sendFailure(x *exchange, r *http.Request, b backend, err error) *failure {
	var f *failure
	switch {
	case errors.As(err, new(*origin.Error)):
		// A WebSocket hand-over that failed before the 101: nothing written.
		x.code, x.n = 0, 0
		return b.failure(r, err)
	case clientGone(r.Context(), err):
		f = clientClosed(err)
	default:
		f = &failure{reason: turnout.ReasonOriginAborted, code: x.code, err: err}
	}
	f.started = true
	return f
}

// toFallback sends x to its side's fallback, the side's backend having
// failed with why before answering.
func (g *Gateway) toFallback(x *exchange, why *failure) {
	p, fb := x.plan, x.at.fallback
	g.opts.Metrics.Fallbacks.WithLabelValues(p.pattern, why.reason).Inc()
	switch why.reason {
	case turnout.ReasonThrottled, turnout.ReasonRateLimited:
		x.outcome = turnout.Throttled
	case turnout.ReasonBreakerOpen:
		x.outcome = turnout.BreakerOpen
	default:
		x.outcome = turnout.Fallback
	}
	x.fellBack = true
	if x.buffered {
		x.r.Body = io.NopCloser(bytes.NewReader(x.body))
		x.r.ContentLength = int64(len(x.body))
	}
	if x.servedBy != "" {
		x.w.Header()[x.servedBy] = []string{fb.backend.target() + "; fallback=" + why.reason}
		x.markCanary()
	}
	f := g.try(x, x.r, fb.backend, nil)
	switch {
	case f == nil:
		x.err = why.fellBack()
	case f.reason == turnout.ReasonClientClosed:
		// The client left while the fallback worked: not the fallback's
		// failure either. The reason stays the primary's.
		x.outcome, x.err = turnout.ClientClosed, errors.Join(why.fellBack(), f.err)
		if !f.started {
			x.code, x.n = turnout.StatusClientClosed, 0
		}
	case f.started:
		// The fallback aborted its answer: nothing answered usefully.
		x.outcome, x.err = turnout.Error, errors.Join(why.fellBack(), f.err)
	default:
		// The fallback failed too. The reason stays the primary's; the
		// served-by header and the access log have both.
		x.fail(turnout.Error, f, fb.backend.target(), why.reason)
		x.err = errors.Join(why.fellBack(), f.err)
	}
}

// overLimit answers a request over its route's rate limit with 429 and a
// Retry-After of when the limiter has a token again.
func (g *Gateway) overLimit(x *exchange) {
	p := x.plan
	g.opts.Metrics.Rejected.WithLabelValues(turnout.ReasonRateLimited).Inc()
	wait := p.limiter.Reserve()
	secs := int(math.Ceil(wait.Delay().Seconds()))
	wait.Cancel()
	x.w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	x.fail(turnout.Throttled, &failure{reason: turnout.ReasonRateLimited, code: http.StatusTooManyRequests,
		msg: "route " + p.pattern + " is over its rate limit"}, x.at.target(), "")
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }
