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
			[]string{`r.yaml:2:22: authorizers.users has no kind: add jwt: {issuer, audience}, like authorizers: {users: {jwt: {issuer: "https://issuer.example.com", audience: [api]}}}`}},
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
