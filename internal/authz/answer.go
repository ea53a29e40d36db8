package authz

import (
	"errors"
	"net/http"
	"strings"
)

// Error is why a request was refused, with the answer API Gateway gives
// for it. Verify and Scopes.Allow return one of the values below, wrapped
// with detail for the log when there is some; errors.Is tells them apart
// and WriteError answers with the value's fixed text, never the detail.
type Error struct {
	// Status is 401 (no valid token) or 403 (a valid token without the
	// route's scope).
	Status int
	// Code is the RFC 6750 error code for WWW-Authenticate: "" when the
	// request carried no token (RFC 6750 §3.1), "invalid_token" or
	// "insufficient_scope".
	Code string
	// Description is error_description: safe to show the client, it never
	// holds the token or a claim's value.
	Description string
}

func (e *Error) Error() string { return e.Description }

// The reasons a request is refused. The descriptions of audience and
// expiry are API Gateway's own words.
var (
	ErrNoToken           = &Error{http.StatusUnauthorized, "", "no token in the identity source"}
	ErrMalformed         = &Error{http.StatusUnauthorized, "invalid_token", "the token is malformed"}
	ErrAlgorithm         = &Error{http.StatusUnauthorized, "invalid_token", "the token's algorithm is not allowed for its key"}
	ErrUnknownKey        = &Error{http.StatusUnauthorized, "invalid_token", "no key of the issuer matches the token's kid"}
	ErrKeysUnavailable   = &Error{http.StatusUnauthorized, "invalid_token", "the issuer's keys could not be fetched"}
	ErrSignature         = &Error{http.StatusUnauthorized, "invalid_token", "the token's signature is not valid"}
	ErrIssuer            = &Error{http.StatusUnauthorized, "invalid_token", "the token does not have a valid issuer"}
	ErrAudience          = &Error{http.StatusUnauthorized, "invalid_token", "the token does not have a valid audience"}
	ErrNoExpiry          = &Error{http.StatusUnauthorized, "invalid_token", "the token has no expiry"}
	ErrExpired           = &Error{http.StatusUnauthorized, "invalid_token", "the token has expired"}
	ErrNotYetValid       = &Error{http.StatusUnauthorized, "invalid_token", "the token is not valid yet"}
	ErrInsufficientScope = &Error{http.StatusForbidden, "insufficient_scope", "the token does not have the required scope"}
)

// The answers of a Lambda authorizer that did not allow the request.
// ErrDenied is its "no" (a simple response's isAuthorized false, a
// policy's Deny); ErrAuthorizerFailed is an authorizer that crashed, timed
// out or answered something that is not a response: API Gateway answers
// 500 and never lets the request through.
var (
	ErrDenied           = &Error{http.StatusForbidden, "", "the authorizer denied the request"}
	ErrAuthorizerFailed = &Error{http.StatusInternalServerError, "", "the authorizer failed"}
)

// WriteError answers a request that err refused, as API Gateway does: 401
// with {"message":"Unauthorized"}, 403 with {"message":"Forbidden"} or 500
// with {"message":"Internal Server Error"}, and for a token refused a
// WWW-Authenticate challenge (RFC 6750 §3) naming the route's scopes and
// the error. An err that is not an *Error is answered as ErrMalformed:
// whatever went wrong, the request is never let through.
func WriteError(w http.ResponseWriter, err error, scopes []string) {
	var e *Error
	if !errors.As(err, &e) {
		e = ErrMalformed
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	var body string
	switch e.Status {
	case http.StatusUnauthorized:
		body = `{"message":"Unauthorized"}`
	case http.StatusForbidden:
		body = `{"message":"Forbidden"}`
	default:
		body = `{"message":"Internal Server Error"}`
	}
	// A token refused says why in a challenge (RFC 6750 §3); an
	// authorizer's own no or failure has none to give.
	if e.Status == http.StatusUnauthorized || e.Code != "" {
		h.Set("WWW-Authenticate", challenge(e, scopes))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(body))
}

// challenge is the WWW-Authenticate value for e. API Gateway sends
// `Bearer scope="" error="invalid_token" error_description="…"`, without
// the commas RFC 6750 puts between parameters; turnout writes the RFC's
// form, which clients that parse the header expect.
func challenge(e *Error, scopes []string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	if len(scopes) > 0 {
		b.WriteString(sep + `scope="` + quoted(strings.Join(scopes, " ")) + `"`)
		sep = ", "
	}
	if e.Code != "" {
		b.WriteString(sep + `error="` + e.Code + `", error_description="` + quoted(e.Description) + `"`)
	}
	return b.String()
}

// quoted keeps s inside an RFC 7230 quoted-string.
func quoted(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// Scopes are a route's authorization scopes.
type Scopes []string

// Allow reports nil when the token's scopes include at least one of the
// route's, or the route names none (API Gateway: "the token must include
// at least one of the route's scopes"), and ErrInsufficientScope otherwise.
func (s Scopes) Allow(granted []string) error {
	if len(s) == 0 {
		return nil
	}
	for _, want := range s {
		for _, have := range granted {
			if want == have {
				return nil
			}
		}
	}
	return ErrInsufficientScope
}
