package apigw

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Authorizer is what a route's authorizer said about a caller it let
// through, for requestContext.authorizer. Exactly one of the two kinds is
// set: a JWT authorizer's claims (and scopes), or a Lambda authorizer's
// context (and principalId).
type Authorizer struct {
	// Claims are a verified token's claims as encoding/json decodes them
	// (numbers as json.Number); nil for a Lambda authorizer.
	Claims map[string]any
	// Scopes are the token's scopes.
	Scopes []string

	// Lambda is set for a Lambda authorizer: Context is the context it
	// returned, PrincipalID its principalId (policy responses only).
	Lambda      bool
	PrincipalID string
	Context     map[string]any
	// Latency is how long the authorizer took, in milliseconds, for 1.0's
	// integrationLatency (0 when its answer was cached).
	Latency int64
}

// v2 is the 2.0 block: {"jwt": {"claims", "scopes"}} or {"lambda": context}.
func (a *Authorizer) v2() *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	if a == nil {
		return nil
	}
	if a.Lambda {
		ctx := a.Context
		if ctx == nil {
			// AWS sends "lambda": null for a simple response without a
			// context; an empty object reads the same to every handler
			// and keeps the key present.
			ctx = map[string]any{}
		}
		return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: ctx}
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: ClaimStrings(a.Claims), Scopes: a.Scopes},
	}
}

// v1 is the 1.0 block: {"claims": {...}, "scopes": [...]} for a JWT
// authorizer (an HTTP API's 1.0 payload, a REST API's Cognito authorizer),
// or principalId, integrationLatency and the context's keys, their values
// as strings, for a Lambda authorizer (a REST API's).
func (a *Authorizer) v1() map[string]any {
	if a == nil {
		return nil
	}
	if !a.Lambda {
		m := map[string]any{"claims": ClaimStrings(a.Claims), "scopes": nil}
		if len(a.Scopes) > 0 {
			m["scopes"] = a.Scopes
		}
		return m
	}
	// REST APIs deliver the context's values as strings ("numberKey":
	// "1", "booleanKey": "true"), whatever JSON type the authorizer gave.
	m := make(map[string]any, len(a.Context)+2)
	for k, v := range a.Context {
		m[k] = ClaimString(v)
	}
	// principalId and integrationLatency are API Gateway's own: a context
	// key of the same name does not replace them.
	m["principalId"] = a.PrincipalID
	m["integrationLatency"] = a.Latency
	return m
}

// ClaimStrings returns claims as API Gateway passes them to a function:
// every value a string. A string stays itself; a number keeps its digits
// ("1700000000", never "1.7e+09"); true and false are "true" and "false";
// an array is its elements' strings between brackets, separated by spaces
// ("[admin users]"), as AWS writes cognito:groups; an object is its JSON
// (AWS does not document its form); null is "".
func ClaimStrings(claims map[string]any) map[string]string {
	if claims == nil {
		return nil
	}
	out := make(map[string]string, len(claims))
	for k, v := range claims {
		out[k] = ClaimString(v)
	}
	return out
}

// ClaimString is one claim's value as ClaimStrings writes it.
func ClaimString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	case float64: // a claims map decoded without UseNumber
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = ClaimString(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			vb, _ := json.Marshal(v[k])
			b.Write(kb)
			b.WriteByte(':')
			b.Write(vb)
		}
		b.WriteByte('}')
		return b.String()
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}
