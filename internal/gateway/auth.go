package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpguts"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/apigw"
	"github.com/turnout/turnout/internal/authz"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/route"
)

// guard is a route's authorizer and the scopes a token must hold one of:
// the check a request passes before the plan runs.
type guard struct {
	name   string // the authorizer's name under authorizers:
	check  authz.Checker
	scopes authz.Scopes
	// event is set when the authorizer reads the request as an API
	// Gateway event (a Lambda authorizer): route names it.
	event bool
	route eventRoute
	// counts are turnout_auth_total's children for the route, by result.
	counts [authResults]prometheus.Counter
	// forward are the claims the route's targets get as headers.
	forward []forwardClaim
}

// forwardClaim is one entry of a route's auth.forward_claims.
type forwardClaim struct{ claim, header string }

// forwardClaims replaces r's headers of the route's forwarded claims with
// the values res holds: a client never chooses them. A claim the caller's
// identity lacks, or whose value cannot be a header value (a line break),
// leaves its header absent.
func (gd *guard) forwardClaims(r *http.Request, res *authz.Result) {
	for _, f := range gd.forward {
		delete(r.Header, f.header)
		var v any
		var ok bool
		if res.Lambda {
			if f.claim == "principalId" {
				v, ok = res.Subject, res.Subject != ""
			} else {
				v, ok = res.Context[f.claim]
			}
		} else {
			v, ok = res.Claims[f.claim]
		}
		if !ok || v == nil {
			continue
		}
		if s := apigw.ClaimString(v); httpguts.ValidHeaderFieldValue(s) {
			r.Header[f.header] = []string{s}
		}
	}
}

// The results turnout_auth_total counts.
const (
	authAllowed = iota
	authUnauthorized
	authForbidden
	authDenied
	authError
	authResults
)

var authResultNames = [authResults]string{"allowed", "unauthorized", "forbidden", "denied", "error"}

// authResult is the turnout_auth_total result of a refusal err.
func authResult(err error) int {
	switch {
	case errors.Is(err, authz.ErrDenied):
		return authDenied
	case errors.Is(err, authz.ErrAuthorizerFailed):
		return authError
	case errors.Is(err, authz.ErrInsufficientScope):
		return authForbidden
	}
	return authUnauthorized
}

// authorizer is one authorizer with the tables holding it: authorizers
// outlive tables, as mirrors do, since each fetches and refreshes its
// issuer's keys or caches its function's answers.
type authorizer struct {
	c    authz.Checker
	refs int // g.mu guards it
}

func (a *authorizer) release() bool {
	if a.refs--; a.refs > 0 {
		return false
	}
	a.c.Close()
	return true
}

// newChecker starts the authorizer def declares.
func (g *Gateway) newChecker(def config.Authorizer) (authz.Checker, error) {
	switch {
	case def.JWT != nil:
		return authz.New(def.JWT.Config(), authz.Options{Logger: g.opts.Logger})
	case def.Lambda != nil:
		if g.opts.Functions == nil {
			return nil, errors.New("authorizer " + def.Name + " runs function " + def.Lambda.Function + ", but this gateway runs no functions")
		}
		return authz.NewLambda(def.Lambda.Config(), g.lambdaInvoker(def.Lambda.Function))
	}
	return nil, errors.New("authorizer " + def.Name + " has no kind")
}

// lambdaInvoker runs function fn for a Lambda authorizer, hosted or on AWS
// as the deployment declares it (the name is looked up per invocation, so
// a deployment that changes the function changes what the authorizer runs).
func (g *Gateway) lambdaInvoker(fn string) authz.LambdaInvoker {
	return func(ctx context.Context, requestID string, event []byte) ([]byte, bool, error) {
		resp, err := g.opts.Functions.Invoke(ctx, invoke.Request{Function: fn, Payload: event, PayloadChecked: true, RequestID: requestID})
		return resp.Payload, resp.FunctionError != "", err
	}
}

// guardLocked returns route r's guard, with the authorizer its auth names
// among as, created on first use and held by t. g.mu is held.
func (g *Gateway) guardLocked(t *Table, as []config.Authorizer, pat *route.Pattern, r config.Route) (*guard, error) {
	var def *config.Authorizer
	for i := range as {
		if as[i].Name == r.Auth.Authorizer {
			def = &as[i]
		}
	}
	if def == nil { // Parse refuses it; a hand-built config may not
		return nil, errors.New("route " + r.Match + ": unknown authorizer " + r.Auth.Authorizer)
	}
	// One authorizer per distinct definition, its name included: the
	// metrics and the log name it.
	b, _ := json.Marshal(def)
	k := string(b)
	e := g.authorizers[k]
	if e == nil {
		c, err := g.newChecker(*def)
		if err != nil {
			return nil, err
		}
		e = &authorizer{c: c}
		g.authorizers[k] = e
	}
	e.refs++
	t.authorizerKeys = append(t.authorizerKeys, k)
	gd := &guard{name: def.Name, check: e.c, scopes: r.Auth.Scopes, event: def.JWT == nil, route: newEventRoute(pat)}
	for claim, h := range r.Auth.ForwardClaims {
		gd.forward = append(gd.forward, forwardClaim{claim, h})
	}
	for i := range gd.counts {
		gd.counts[i] = g.opts.Metrics.Auth.WithLabelValues(pat.Canonical, def.Name, authResultNames[i])
	}
	return gd, nil
}

// admit checks x's request against its route's guard: true when it may go
// on (x then holds what the authorizer said), else the refusal is answered
// (API Gateway's 401, 403 or 500) and x says so.
func (g *Gateway) admit(x *exchange) bool {
	gd := x.plan.guard
	x.at = &x.plan.primary // a refusal is counted on the route's own target
	var in *apigw.Info
	if gd.event {
		info := x.eventInfo(x.r, gd.route)
		in = &info
	}
	res, err := gd.check.Check(x.r.Context(), x.r, in)
	if err == nil {
		err = gd.scopes.Allow(res.Scopes)
	}
	if err == nil {
		x.auth, x.authed = res, true
		gd.forwardClaims(x.r, &x.auth)
		gd.counts[authAllowed].Inc()
		x.authResult = authResultNames[authAllowed]
		return true
	}
	result := authResult(err)
	gd.counts[result].Inc()
	x.authResult = authResultNames[result]
	rw := &statusRecorder{ResponseWriter: x.w}
	authz.WriteError(rw, err, gd.scopes)
	x.outcome, x.code, x.err = turnout.Rejected, rw.code, err
	x.reason = turnout.ReasonUnauthorized
	switch result {
	case authForbidden, authDenied:
		x.reason = turnout.ReasonForbidden
	case authError:
		x.reason = turnout.ReasonAuthorizerError
	}
	return false
}

// statusRecorder notes the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
