package apigw

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// jwtClaims are a token's claims as the JWT authorizer decodes them
// (numbers as json.Number), one of each JSON kind.
func jwtClaims(t *testing.T) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(`{"sub": "u-1", "iss": "https://idp.example.com", "exp": 1700000000,
		"big": 9007199254740993, "email_verified": true, "cognito:groups": ["admin", "users"],
		"address": {"country": "NL", "zip": "1011"}, "nothing": null, "ratio": 0.5}`))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAuthorizerEventV2: a JWT authorizer's claims and scopes reach a 2.0
// event as AWS documents ("claims": {"claim1": "value1"}, "scopes":
// ["scope1"]) and decode into aws-lambda-go's types, every value a string
// as AWS sends it; a Lambda authorizer's context is authorizer.lambda.
func TestAuthorizerEventV2(t *testing.T) {
	r := httptest.NewRequest("GET", "/orders/1", nil)
	in := Info{Route: "GET /orders/{id}", Authorizer: &Authorizer{Claims: jwtClaims(t), Scopes: []string{"orders:read", "profile"}}}
	b, err := EventV2(r, nil, in)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	a := ev.RequestContext.Authorizer
	if a == nil || a.JWT == nil {
		t.Fatalf("no authorizer.jwt in %s", b)
	}
	want := map[string]string{"sub": "u-1", "iss": "https://idp.example.com", "exp": "1700000000",
		"big": "9007199254740993", "email_verified": "true", "cognito:groups": "[admin users]",
		"address": `{"country":"NL","zip":"1011"}`, "nothing": "", "ratio": "0.5"}
	if !reflect.DeepEqual(a.JWT.Claims, want) {
		t.Errorf("claims %v\nwant %v", a.JWT.Claims, want)
	}
	if !reflect.DeepEqual(a.JWT.Scopes, []string{"orders:read", "profile"}) {
		t.Errorf("scopes %v", a.JWT.Scopes)
	}
	// The raw JSON has the documented nesting, nothing else beside jwt.
	var raw struct {
		RequestContext struct {
			Authorizer map[string]json.RawMessage `json:"authorizer"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.RequestContext.Authorizer) != 1 || raw.RequestContext.Authorizer["jwt"] == nil {
		t.Errorf("authorizer block %s, want only jwt", b)
	}

	in.Authorizer = &Authorizer{Lambda: true, PrincipalID: "u-1", Context: map[string]any{"tenant": "acme", "tier": 2, "beta": true}}
	if b, err = EventV2(r, nil, in); err != nil {
		t.Fatal(err)
	}
	ev = events.APIGatewayV2HTTPRequest{}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if a := ev.RequestContext.Authorizer; a == nil || a.JWT != nil || a.Lambda["tenant"] != "acme" || a.Lambda["tier"] != 2.0 || a.Lambda["beta"] != true {
		t.Errorf("lambda authorizer block from %s", b)
	}

	in.Authorizer = nil
	if b, err = EventV2(r, nil, in); err != nil {
		t.Fatal(err)
	}
	ev = events.APIGatewayV2HTTPRequest{}
	_ = json.Unmarshal(b, &ev)
	if ev.RequestContext.Authorizer != nil {
		t.Errorf("a route without an authorizer has an authorizer block: %s", b)
	}
}

// TestAuthorizerEventV1: 1.0 events carry a JWT authorizer's claims and
// scopes as authorizer.claims / authorizer.scopes (HTTP API 1.0 payload,
// REST Cognito authorizers), and a Lambda authorizer's principalId,
// integrationLatency and context keys flat in authorizer, as
// events.APIGatewayProxyRequestContext.Authorizer holds them.
func TestAuthorizerEventV1(t *testing.T) {
	r := httptest.NewRequest("GET", "/orders/1", nil)
	in := Info{Route: "GET /orders/{id}", Authorizer: &Authorizer{Claims: jwtClaims(t)}}
	b, err := EventV1(r, nil, in)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	a := ev.RequestContext.Authorizer
	claims, _ := a["claims"].(map[string]any)
	if claims["sub"] != "u-1" || claims["exp"] != "1700000000" || claims["cognito:groups"] != "[admin users]" {
		t.Errorf("1.0 claims %v from %s", a, b)
	}
	// No scopes: null, as AWS's documented 1.0 example has it.
	if v, ok := a["scopes"]; !ok || v != nil {
		t.Errorf("1.0 scopes %v (present %v), want null", v, ok)
	}

	in.Authorizer = &Authorizer{Lambda: true, PrincipalID: "u-1", Latency: 12,
		Context: map[string]any{"tenant": "acme", "principalId": "forged"}}
	if b, err = EventV1(r, nil, in); err != nil {
		t.Fatal(err)
	}
	ev = events.APIGatewayProxyRequest{}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	a = ev.RequestContext.Authorizer
	if a["principalId"] != "u-1" || a["tenant"] != "acme" || a["integrationLatency"] != 12.0 {
		t.Errorf("1.0 lambda authorizer %v, want principalId u-1, tenant acme, integrationLatency 12", a)
	}
}

// TestClaimStringsKeepsDigits: a number claim reaches the function with
// the issuer's digits, never a float's rendering.
func TestClaimStringsKeepsDigits(t *testing.T) {
	got := ClaimStrings(map[string]any{"n": json.Number("12345678901234567890"), "f": 1700000000.0})
	if got["n"] != "12345678901234567890" || got["f"] != "1700000000" {
		t.Errorf("ClaimStrings = %v", got)
	}
}
