package authz

import (
	"context"
	"net/http"
	"time"

	"github.com/turnout/turnout/internal/apigw"
)

// Checker is an authorizer as the gateway holds it: the JWT Authorizer,
// or a Lambda authorizer. Check decides whether r may go on; in is what
// the gateway knows of the request beyond r (route, request id, path
// parameters), which a Lambda authorizer's event carries. Every error is
// or wraps one of this package's *Error values; pass it to WriteError.
type Checker interface {
	Check(ctx context.Context, r *http.Request, in *apigw.Info) (Result, error)
	Close()
}

// Check is Verify, for the Checker interface.
func (a *Authorizer) Check(ctx context.Context, r *http.Request, _ *apigw.Info) (Result, error) {
	return a.Verify(ctx, r)
}

var _ Checker = (*Authorizer)(nil)

// Event returns what res puts in the event's requestContext.authorizer.
func (res *Result) Event() *apigw.Authorizer {
	if res.Lambda {
		return &apigw.Authorizer{Lambda: true, PrincipalID: res.Subject, Context: res.Context, Latency: res.Latency.Milliseconds()}
	}
	return &apigw.Authorizer{Claims: res.Claims, Scopes: res.Scopes}
}

// Status is an authorizer's state for `turnout status` and the admin API.
type Status struct {
	// Name is the authorizer's name under authorizers: (set by the
	// gateway, which knows it).
	Name string `json:"name"`
	// Kind is "jwt" or "lambda".
	Kind string `json:"kind"`
	// Issuer and JWKSURI are a JWT authorizer's (JWKSURI once discovered).
	Issuer  string `json:"issuer,omitempty"`
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Keys are the kids of the keys held now; KeysFetched when they were
	// last fetched (zero: never).
	Keys        []string  `json:"keys,omitempty"`
	KeysFetched time.Time `json:"keys_fetched,omitzero"`
	// Function is a Lambda authorizer's function; Cached the answers in
	// its cache now.
	Function string `json:"function,omitempty"`
	Cached   int    `json:"cached,omitempty"`
	// LastError is the last key fetch's or invocation's error, "" when it
	// succeeded.
	LastError string `json:"last_error,omitempty"`
	// Routes are the routes that name it (set by the gateway).
	Routes []string `json:"routes,omitempty"`
}

// Status reports the authorizer's issuer and keys.
func (a *Authorizer) Status() Status {
	s := a.keys
	s.mu.Lock()
	st := Status{Kind: "jwt", Issuer: a.issuer, JWKSURI: s.uri, KeysFetched: s.fetched}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	s.mu.Unlock()
	st.Keys = a.KeyIDs()
	return st
}
