package authz

import (
	"context"
	"net/http"

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
