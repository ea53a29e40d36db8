package gateway

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/authz"
	"github.com/turnout/turnout/internal/config"
)

// guard is a route's authorizer and the scopes a token must hold one of:
// the check a request passes before the plan runs.
type guard struct {
	a      *authz.Authorizer
	scopes authz.Scopes
}

// authorizer is one authorizer with the tables holding it: authorizers
// outlive tables, as mirrors do, since each fetches and refreshes its
// issuer's keys.
type authorizer struct {
	a    *authz.Authorizer
	refs int // g.mu guards it
}

func (a *authorizer) release() bool {
	if a.refs--; a.refs > 0 {
		return false
	}
	a.a.Close()
	return true
}

// guardLocked returns route r's guard, with the authorizer its auth names
// among as, created on first use and held by t. g.mu is held.
func (g *Gateway) guardLocked(t *Table, as []config.Authorizer, r config.Route) (*guard, error) {
	var def *config.JWTAuthorizer
	for _, a := range as {
		if a.Name == r.Auth.Authorizer {
			def = a.JWT
		}
	}
	if def == nil { // Parse refuses it; a hand-built config may not
		return nil, errors.New("route " + r.Match + ": unknown authorizer " + r.Auth.Authorizer)
	}
	b, _ := json.Marshal(def)
	k := string(b)
	e := g.authorizers[k]
	if e == nil {
		a, err := authz.New(def.Config(), authz.Options{})
		if err != nil {
			return nil, err
		}
		e = &authorizer{a: a}
		g.authorizers[k] = e
	}
	e.refs++
	t.authorizerKeys = append(t.authorizerKeys, k)
	return &guard{a: e.a, scopes: r.Auth.Scopes}, nil
}

// admit checks x's request against its route's guard: nil when it may go
// on, else the refusal is answered (API Gateway's 401 or 403) and x says
// so.
func (g *Gateway) admit(x *exchange) bool {
	gd := x.plan.guard
	x.at = &x.plan.primary // a refusal is counted on the route's own target
	res, err := gd.a.Verify(x.r.Context(), x.r)
	if err == nil {
		err = gd.scopes.Allow(res.Scopes)
	}
	if err == nil {
		return true
	}
	rw := &statusRecorder{ResponseWriter: x.w}
	authz.WriteError(rw, err, gd.scopes)
	x.outcome, x.code, x.err = turnout.Rejected, rw.code, err
	x.reason = turnout.ReasonUnauthorized
	if rw.code == http.StatusForbidden {
		x.reason = turnout.ReasonForbidden
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
