package config

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/turnout/turnout/internal/authz"
)

// Authorizer is one entry of `authorizers:`: how requests to the routes
// that name it are authenticated before their target runs
// (docs/authorizers.md). Today a JWT authorizer, with API Gateway HTTP
// API's semantics.
type Authorizer struct {
	// Name is the key under `authorizers:`.
	Name string `yaml:"name" json:"name"`
	// JWT is a JSON Web Token authorizer (API Gateway's JwtConfiguration).
	JWT *JWTAuthorizer `yaml:"jwt" json:"jwt,omitempty"`

	Pos Pos `yaml:"-" json:"-"`
}

// JWTAuthorizer verifies a bearer JWT against its issuer's keys.
type JWTAuthorizer struct {
	// Issuer is the exact iss of the tokens, and the base of OpenID
	// discovery; https (http on a loopback address only, for tests).
	Issuer string `yaml:"issuer" json:"issuer"`
	// Audience: a token's aud (or client_id, without aud) must be one.
	Audience []string `yaml:"audience" json:"audience"`
	// IdentitySource is where the token is: "$request.header.NAME" or
	// "$request.querystring.NAME". Default $request.header.Authorization.
	IdentitySource string `yaml:"identity_source" json:"identity_source,omitempty"`
	// JWKSURI is where the issuer's keys are; default: OpenID discovery.
	JWKSURI string `yaml:"jwks_uri" json:"jwks_uri,omitempty"`
}

// Config returns a as the authorizer package takes it.
func (a JWTAuthorizer) Config() authz.Config {
	return authz.Config{Issuer: a.Issuer, Audience: a.Audience, JWKSURI: a.JWKSURI, IdentitySource: a.IdentitySource}
}

// RouteAuth is a route's `auth:`: the authorizer its requests must pass,
// and the scopes of which a token must hold one (none: any valid token).
type RouteAuth struct {
	Authorizer string   `yaml:"authorizer" json:"authorizer"`
	Scopes     []string `yaml:"scopes" json:"scopes,omitempty"`
	// ForwardClaims maps a claim (a JWT claim, or a key of a Lambda
	// authorizer's context; "principalId" its principal) to the request
	// header that carries it to the route's targets. A header of that name
	// sent by the client is always removed first.
	ForwardClaims map[string]string `yaml:"forward_claims" json:"forward_claims,omitempty"`
}

var (
	authorizerKeys = []string{"jwt"}
	jwtKeys        = []string{"issuer", "audience", "identity_source", "jwks_uri"}
	routeAuthKeys  = []string{"authorizer", "scopes", "forward_claims"}
)

const authorizerExample = `authorizers: {users: {jwt: {issuer: "https://issuer.example.com", audience: [api]}}}`

// authorizers decodes `authorizers:`.
func (d *decoder) authorizers(v *yaml.Node) []Authorizer {
	return named(d, v, "authorizers", "authorizer", authorizerExample, d.authorizer)
}

// authorizer decodes the authorizer declared as key k with settings v.
func (d *decoder) authorizer(k, v *yaml.Node) Authorizer {
	a := Authorizer{Name: k.Value, Pos: d.pos(k)}
	d.checkName(k, "authorizer")
	what := "authorizers." + k.Value
	d.fields(v, what, authorizerKeys, func(key string, _, v *yaml.Node) {
		a.JWT = d.jwtAuthorizer(v, what+".jwt")
	})
	if a.JWT == nil && deref(v).Kind == yaml.MappingNode {
		d.errorf(v, "%s has no kind: add jwt: {issuer, audience}, like %s", what, authorizerExample)
	}
	return a
}

// jwtAuthorizer decodes an authorizer's jwt: and checks it as the
// authorizer itself will.
func (d *decoder) jwtAuthorizer(v *yaml.Node, what string) *JWTAuthorizer {
	j := &JWTAuthorizer{}
	var issuerAt *yaml.Node
	d.fields(v, what, jwtKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "issuer":
			issuerAt = v
			j.Issuer, _ = d.name(v, what+".issuer")
		case "audience":
			j.Audience = d.stringList(v, what+".audience", "audience: [api]")
		case "identity_source":
			j.IdentitySource, _ = d.name(v, what+".identity_source")
		case "jwks_uri":
			j.JWKSURI, _ = d.name(v, what+".jwks_uri")
		}
	})
	if issuerAt == nil {
		d.errorf(v, "%s has no issuer: add issuer: with the tokens' iss, like %s", what, authorizerExample)
		return j
	}
	if _, err := j.Config().Validate(); err != nil {
		d.errorf(v, "%s: %v", what, err)
	}
	return j
}

// routeAuth decodes routes[i].auth (what).
func (d *decoder) routeAuth(v *yaml.Node, what string) *RouteAuth {
	a := &RouteAuth{}
	seen := false
	d.fields(v, what, routeAuthKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "authorizer":
			seen = true
			a.Authorizer, _ = d.name(v, what+".authorizer")
		case "scopes":
			a.Scopes = d.stringList(v, what+".scopes", "scopes: [orders:read]")
		case "forward_claims":
			a.ForwardClaims = d.forwardClaims(v, what+".forward_claims")
		}
	})
	if !seen && deref(v).Kind == yaml.MappingNode {
		d.errorf(v, "%s has no authorizer: name one of authorizers:, like auth: {authorizer: users, scopes: [orders:read]}", what)
	}
	return a
}

// forwardClaims decodes a route's auth.forward_claims: claim → header.
func (d *decoder) forwardClaims(v *yaml.Node, what string) map[string]string {
	es, ok := d.entries(v, what, "claim")
	if !ok {
		return nil
	}
	out := make(map[string]string, len(es))
	byHeader := map[string]string{}
	for _, e := range es {
		h, ok := d.headerName(e.v, what+"."+e.k.Value)
		if !ok {
			continue
		}
		if reservedForward[h] {
			d.errorf(e.v, "%s.%s: %s is set by turnout or the connection, not by a claim: choose a header of your own, like X-User-Id", what, e.k.Value, h)
			continue
		}
		if other, dup := byHeader[h]; dup {
			d.errorf(e.v, "%s.%s: header %s already carries claim %q: one header per claim", what, e.k.Value, h, other)
			continue
		}
		byHeader[h] = e.k.Value
		out[e.k.Value] = h
	}
	return out
}

// reservedForward are headers a forwarded claim may not replace: the
// message's framing, the hop's, and those turnout sets itself.
var reservedForward = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Upgrade": true,
	"Te": true, "Trailer": true, "Keep-Alive": true, "Proxy-Connection": true, "Content-Type": true,
	"Authorization": true, "Cookie": true, "X-Request-Id": true, "X-Forwarded-For": true,
	"X-Forwarded-Host": true, "X-Forwarded-Proto": true, "Forwarded": true,
}

// validateAuth checks that routes name declared authorizers.
func (d *decoder) validateAuth(c *Config) {
	names := make([]string, 0, len(c.Authorizers))
	known := map[string]bool{}
	for _, a := range c.Authorizers {
		names = append(names, a.Name)
		known[a.Name] = true
	}
	for i, r := range c.Routes {
		if r.Auth == nil || r.Auth.Authorizer == "" || known[r.Auth.Authorizer] {
			continue
		}
		what := fmt.Sprintf("routes[%d].auth.authorizer", i)
		if len(names) == 0 {
			d.errorAt(d.routes[i].auth, fmt.Sprintf("%s: unknown authorizer %q: no authorizers are declared; add it under authorizers:, like %s", what, r.Auth.Authorizer, authorizerExample))
			continue
		}
		d.errorAt(d.routes[i].auth, fmt.Sprintf("%s: unknown authorizer %q: declared authorizers are %s", what, r.Auth.Authorizer, nameList(names)))
	}
}

// mapIndexNode returns the value of key in mapping m, nil without it.
func mapIndexNode(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// stringList decodes a list of non-empty strings (what, shown like example
// when v is not a list).
func (d *decoder) stringList(v *yaml.Node, what, example string) []string {
	items, ok := d.list(v, what, example)
	if !ok {
		return nil
	}
	var out []string
	for i, it := range items {
		if s, ok := d.name(it, what+"["+strconv.Itoa(i)+"]"); ok {
			out = append(out, s)
		}
	}
	return out
}
