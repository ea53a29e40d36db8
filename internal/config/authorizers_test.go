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
