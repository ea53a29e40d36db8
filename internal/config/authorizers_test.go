package config

import (
	"slices"
	"testing"
)

const authOrigins = "origins: {legacy: {url: \"http://127.0.0.1:9000\"}}\n"

// TestAuthorizers: a JWT authorizer and a route naming it, as parsed.
func TestAuthorizers(t *testing.T) {
	c, err := Parse("a.yaml", []byte(authOrigins+`authorizers:
  users:
    jwt: {issuer: "https://issuer.example.com", audience: [api, web], jwks_uri: "https://issuer.example.com/keys"}
routes:
  - match: /orders/
    origin: legacy
    auth: {authorizer: users, scopes: ["orders:read"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Authorizers
	if len(a) != 1 || a[0].Name != "users" || a[0].JWT == nil || a[0].JWT.Issuer != "https://issuer.example.com" ||
		!slices.Equal(a[0].JWT.Audience, []string{"api", "web"}) || a[0].JWT.JWKSURI != "https://issuer.example.com/keys" {
		t.Fatalf("authorizers: %+v", a)
	}
	if r := c.Routes[0].Auth; r == nil || r.Authorizer != "users" || !slices.Equal(r.Scopes, []string{"orders:read"}) {
		t.Fatalf("route auth: %+v", r)
	}
}

func TestAuthorizerErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{authOrigins + "routes:\n  - {match: /, origin: legacy, auth: {authorizer: users}}\n",
			[]string{`r.yaml:3:51: routes[0].auth.authorizer: unknown authorizer "users": no authorizers are declared; add it under authorizers:, like authorizers: {users: {jwt: {issuer: "https://issuer.example.com", audience: [api]}}}`}},
		{authOrigins + "authorizers: {users: {jwt: {issuer: \"https://i.example.com\", audience: [a]}}}\nroutes:\n  - {match: /, origin: legacy, auth: {authorizer: staff}}\n",
			[]string{`r.yaml:4:51: routes[0].auth.authorizer: unknown authorizer "staff": declared authorizers are users`}},
		{authOrigins + "authorizers: {users: {jwt: {audience: [a]}}}\nroutes:\n  - {match: /, origin: legacy}\n",
			[]string{`r.yaml:2:28: authorizers.users.jwt has no issuer: add issuer: with the tokens' iss, like authorizers: {users: {jwt: {issuer: "https://issuer.example.com", audience: [api]}}}`}},
		{authOrigins + "authorizers: {users: {}}\nroutes:\n  - {match: /, origin: legacy}\n",
			[]string{`r.yaml:2:22: authorizers.users has no kind: add jwt: {issuer, audience}, like authorizers: {users: {jwt: {issuer: "https://issuer.example.com", audience: [api]}}}, or lambda: {function}, like authorizers: {custom: {lambda: {function: check-token, simple_responses: true}}}`}},
		{authOrigins + "routes:\n  - {match: /, origin: legacy, auth: {scopes: [a]}}\n",
			[]string{`r.yaml:3:38: routes[0].auth has no authorizer: name one of authorizers:, like auth: {authorizer: users, scopes: [orders:read]}`}},
	} {
		checkErrors(t, tc.file, tc.want...)
	}
}

// TestAuthorizerIssuerChecked: an issuer the authorizer would refuse (http
// off loopback, no audience) is refused when the file is read.
func TestAuthorizerIssuerChecked(t *testing.T) {
	for _, jwt := range []string{
		`{issuer: "http://issuer.example.com", audience: [a]}`,
		`{issuer: "https://issuer.example.com", audience: []}`,
	} {
		_, err := Parse("r.yaml", []byte(authOrigins+"authorizers: {users: {jwt: "+jwt+"}}\nroutes:\n  - {match: /, origin: legacy}\n"))
		if err == nil {
			t.Errorf("jwt %s: parsed without an error", jwt)
		}
	}
}

// TestForwardClaims: claims go to headers of the operator's choosing, not
// to the message's framing or headers turnout sets, one claim per header.
func TestForwardClaims(t *testing.T) {
	decl := authOrigins + "authorizers: {users: {jwt: {issuer: \"https://i.example.com\", audience: [a]}}}\nroutes:\n"
	c, err := Parse("r.yaml", []byte(decl+"  - {match: /, origin: legacy, auth: {authorizer: users, forward_claims: {sub: x-user-id, email: X-Email}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Routes[0].Auth.ForwardClaims; got["sub"] != "X-User-Id" || got["email"] != "X-Email" || len(got) != 2 {
		t.Errorf("forward_claims = %v", got)
	}
	for _, tc := range []struct{ route, want string }{
		{"{sub: Host}", `r.yaml:4:80: routes[0].auth.forward_claims.sub: Host is set by turnout or the connection, not by a claim: choose a header of your own, like X-User-Id`},
		{"{sub: X-Id, email: x-id}", `r.yaml:4:93: routes[0].auth.forward_claims.email: header X-Id already carries claim "sub": one header per claim`},
		{`{sub: "X User"}`, `r.yaml:4:80: routes[0].auth.forward_claims.sub "X User" is not a header name: use letters, digits and '-', like X-Request-Id`},
		{"[sub]", `r.yaml:4:74: routes[0].auth.forward_claims must be a mapping of keys to values, got a list`},
	} {
		checkErrors(t, decl+"  - {match: /, origin: legacy, auth: {authorizer: users, forward_claims: "+tc.route+"}}\n", tc.want)
	}
}

const lambdaFunctions = "functions: {check: {handler: ./check}, remote: {aws: {function: check-prod}}}\n"

// TestLambdaAuthorizers: Lambda authorizers as parsed, every default filled
// in, hosted and AWS functions alike.
func TestLambdaAuthorizers(t *testing.T) {
	c, err := Parse("a.yaml", []byte(authOrigins+lambdaFunctions+`authorizers:
  plain: {lambda: {function: check}}
  simple: {lambda: {function: remote, simple_responses: true, identity_source: [$request.header.X-Key, $request.querystring.tenant, $context.identity.sourceIp], result_ttl: 0s, timeout: 2s}}
  rest: {lambda: {function: check, payload_format_version: "1.0", result_ttl: 1h}}
  token: {lambda: {function: check, type: TOKEN, identity_source: $request.header.X-Token}}
routes:
  - {match: /a, origin: legacy, auth: {authorizer: plain}}
  - {match: /b, origin: legacy, auth: {authorizer: token}}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]LambdaAuthorizer{}
	for _, a := range c.Authorizers {
		if a.Lambda == nil || a.JWT != nil {
			t.Fatalf("authorizer %s: %+v", a.Name, a)
		}
		l := *a.Lambda
		l.FunctionPos = Pos{}
		got[a.Name] = l
	}
	auth := []string{"$request.header.Authorization"}
	want := map[string]LambdaAuthorizer{
		"plain": {Function: "check", Type: "request", PayloadFormatVersion: "2.0", IdentitySource: auth, ResultTTL: Duration(300e9), Timeout: Duration(10e9)},
		"simple": {Function: "remote", Type: "request", PayloadFormatVersion: "2.0", SimpleResponses: true,
			IdentitySource: []string{"$request.header.X-Key", "$request.querystring.tenant", "$context.identity.sourceIp"}, Timeout: Duration(2e9)},
		"rest":  {Function: "check", Type: "request", PayloadFormatVersion: "1.0", IdentitySource: auth, ResultTTL: Duration(3600e9), Timeout: Duration(10e9)},
		"token": {Function: "check", Type: "token", IdentitySource: []string{"$request.header.X-Token"}, ResultTTL: Duration(300e9), Timeout: Duration(10e9)},
	}
	for name, w := range want {
		g := got[name]
		if g.Function != w.Function || g.Type != w.Type || g.PayloadFormatVersion != w.PayloadFormatVersion || g.SimpleResponses != w.SimpleResponses ||
			!slices.Equal(g.IdentitySource, w.IdentitySource) || g.ResultTTL != w.ResultTTL || g.Timeout != w.Timeout {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}
}

// TestLambdaAuthorizerErrors: each mistake is refused at its place, with
// what to do.
func TestLambdaAuthorizerErrors(t *testing.T) {
	const head = authOrigins + lambdaFunctions
	const route = "routes:\n  - {match: /, origin: legacy}\n"
	for _, tc := range []struct {
		file string
		want string
	}{
		{head + "authorizers: {a: {lambda: {function: nope}}}\n" + route,
			`r.yaml:3:38: authorizers.a.lambda.function: unknown function "nope": declared functions are check, remote`},
		{authOrigins + "authorizers: {a: {lambda: {function: nope}}}\n" + route,
			`r.yaml:2:38: authorizers.a.lambda.function: unknown function "nope": no functions are declared; add it under functions:, like functions: {users: {handler: ./bin/users}}`},
		{head + "authorizers: {a: {lambda: {type: token}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda has no function: name one of functions:, like authorizers: {custom: {lambda: {function: check-token, simple_responses: true}}}`},
		{head + "authorizers: {a: {lambda: {function: check}}}\nroutes:\n  - {match: /, origin: legacy, auth: {authorizer: a, scopes: [x]}}\n",
			`r.yaml:5:51: routes[0].auth.scopes: authorizer a is a Lambda authorizer, whose function decides alone; scopes apply to JWT authorizers (as in API Gateway): remove them`},
		{head + "authorizers: {a: {lambda: {function: check, type: token, identity_source: [$request.header.A, $request.header.B]}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: identity_source: a token authorizer reads exactly one header, like [$request.header.Authorization]`},
		{head + "authorizers: {a: {lambda: {function: check, type: token, identity_source: $request.querystring.t}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: identity_source: a token authorizer reads exactly one header, like [$request.header.Authorization]`},
		{head + "authorizers: {a: {lambda: {function: check, type: token, payload_format_version: \"2.0\"}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: payload_format_version applies to request authorizers: a token authorizer's event has one shape`},
		{head + "authorizers: {a: {lambda: {function: check, type: bearer}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: type must be request or token, got "bearer"`},
		{head + "authorizers: {a: {lambda: {function: check, payload_format_version: \"1.0\", simple_responses: true}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: simple_responses needs payload_format_version "2.0": a 1.0 authorizer answers with an IAM policy`},
		{head + "authorizers: {a: {lambda: {function: check, payload_format_version: \"3.0\"}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: payload_format_version must be "2.0" or "1.0", got "3.0"`},
		{head + "authorizers: {a: {lambda: {function: check, result_ttl: 2h}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: result_ttl must be from 0s (no cache) to 1h0m0s, got 2h0m0s`},
		{head + "authorizers: {a: {lambda: {function: check, result_ttl: 300}}}\n" + route,
			`r.yaml:3:57: authorizers.a.lambda.result_ttl 300 has no unit: use a Go duration like "300s" (0s: no cache)`},
		{head + "authorizers: {a: {lambda: {function: check, timeout: 1m}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: timeout must be more than 0 and at most 30s, got 1m0s`},
		{head + "authorizers: {a: {lambda: {function: check, identity_source: []}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: identity_source: a cached authorizer needs at least one, its answers are cached by their values; name one, or set result_ttl: 0s`},
		{head + "authorizers: {a: {lambda: {function: check, identity_source: [$stageVariables.key]}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: identity_source "$stageVariables.key": turnout has no stages and so no stage variables; use a header or a query parameter`},
		{head + "authorizers: {a: {lambda: {function: check, identity_source: [$context.requestId]}}}\n" + route,
			`r.yaml:3:27: authorizers.a.lambda: identity_source "$context.requestId": turnout reads $context.httpMethod, path, domainName, stage, identity.sourceIp and identity.userAgent`},
		{head + "authorizers: {a: {lambda: {function: check}, jwt: {issuer: \"https://i.example.com\", audience: [x]}}}\n" + route,
			`r.yaml:3:18: authorizers.a has two kinds: keep jwt: or lambda:, one authorizer is one of them`},
	} {
		checkErrors(t, tc.file, tc.want)
	}
	// No cache, no identity source: every request invokes the function.
	if _, err := Parse("r.yaml", []byte(head+"authorizers: {a: {lambda: {function: check, identity_source: [], result_ttl: 0s}}}\n"+route)); err != nil {
		t.Errorf("no identity source without a cache: %v", err)
	}
}
