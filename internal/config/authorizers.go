package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/turnout/turnout/internal/authz"
)

// Authorizer is one entry of `authorizers:`: how requests to the routes
// that name it are authenticated before their target runs
// (docs/authorizers.md): a JWT authorizer or a Lambda authorizer, with API
// Gateway's semantics.
type Authorizer struct {
	// Name is the key under `authorizers:`.
	Name string `yaml:"name" json:"name"`
	// JWT is a JSON Web Token authorizer (API Gateway's JwtConfiguration).
	JWT *JWTAuthorizer `yaml:"jwt" json:"jwt,omitempty"`
	// Lambda is a Lambda authorizer: a function that decides.
	Lambda *LambdaAuthorizer `yaml:"lambda" json:"lambda,omitempty"`

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

// LambdaAuthorizer is a function declared under functions: that API
// Gateway-style REQUEST or TOKEN events are sent to, and whose answer
// decides. Parse fills in every default.
type LambdaAuthorizer struct {
	// Function names the function (AuthorizerUri).
	Function string `yaml:"function" json:"function"`
	// Type is "request" (default) or "token" (the authorizer's type).
	Type string `yaml:"type" json:"type"`
	// PayloadFormatVersion is "2.0" (default) or "1.0" for request
	// authorizers (AuthorizerPayloadFormatVersion); "" for token ones.
	PayloadFormatVersion string `yaml:"payload_format_version" json:"payload_format_version,omitempty"`
	// SimpleResponses: the function answers {"isAuthorized", "context"},
	// not an IAM policy (EnableSimpleResponses; payload 2.0 only).
	SimpleResponses bool `yaml:"simple_responses" json:"simple_responses,omitempty"`
	// IdentitySource names the values a request must carry, which key the
	// cache (IdentitySource); default [$request.header.Authorization].
	IdentitySource []string `yaml:"identity_source" json:"identity_source"`
	// ResultTTL is how long an answer is cached, 0 for not at all
	// (AuthorizerResultTtlInSeconds; default 300s, at most 1h).
	ResultTTL Duration `yaml:"result_ttl" json:"result_ttl"`
	// Timeout bounds an invocation (default 10s, API Gateway's).
	Timeout Duration `yaml:"timeout" json:"timeout"`

	// FunctionPos is where function is written, for an unknown name.
	FunctionPos Pos `yaml:"-" json:"-"`
}

// Config returns l as the authorizer package takes it.
func (l LambdaAuthorizer) Config() authz.LambdaConfig {
	return authz.LambdaConfig{
		Function: l.Function, Type: l.Type, PayloadFormatVersion: l.PayloadFormatVersion, SimpleResponses: l.SimpleResponses,
		IdentitySource: l.IdentitySource, ResultTTL: l.ResultTTL.D(), Timeout: l.Timeout.D(),
	}
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
	authorizerKeys = []string{"jwt", "lambda"}
	jwtKeys        = []string{"issuer", "audience", "identity_source", "jwks_uri"}
	lambdaKeys     = []string{"function", "type", "payload_format_version", "simple_responses", "identity_source", "result_ttl", "timeout"}
	routeAuthKeys  = []string{"authorizer", "scopes", "forward_claims"}
)

const (
	authorizerExample       = `authorizers: {users: {jwt: {issuer: "https://issuer.example.com", audience: [api]}}}`
	lambdaAuthorizerExample = `authorizers: {custom: {lambda: {function: check-token, simple_responses: true}}}`
)

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
		switch key {
		case "jwt":
			a.JWT = d.jwtAuthorizer(v, what+".jwt")
		case "lambda":
			a.Lambda = d.lambdaAuthorizer(v, what+".lambda")
		}
	})
	switch {
	case a.JWT != nil && a.Lambda != nil:
		d.errorf(v, "%s has two kinds: keep jwt: or lambda:, one authorizer is one of them", what)
	case a.JWT == nil && a.Lambda == nil && deref(v).Kind == yaml.MappingNode:
		d.errorf(v, "%s has no kind: add jwt: {issuer, audience}, like %s, or lambda: {function}, like %s", what, authorizerExample, lambdaAuthorizerExample)
	}
	return a
}

// lambdaAuthorizer decodes an authorizer's lambda:, fills in its defaults
// and checks it as the authorizer itself will; validateAuth checks that
// its function is declared.
func (d *decoder) lambdaAuthorizer(v *yaml.Node, what string) *LambdaAuthorizer {
	l := &LambdaAuthorizer{Type: authz.LambdaRequest, ResultTTL: Duration(authz.DefaultLambdaTTL), Timeout: Duration(authz.DefaultLambdaTimeout)}
	var fnAt, payloadAt *yaml.Node
	sourceSet := false
	ok := d.fields(v, what, lambdaKeys, func(key string, _, v *yaml.Node) {
		w := what + "." + key
		switch key {
		case "function":
			fnAt = v
			l.Function, _ = d.name(v, w)
			l.FunctionPos = d.pos(v)
		case "type":
			if s, ok := d.name(v, w); ok {
				l.Type = strings.ToLower(s)
			}
		case "payload_format_version":
			payloadAt = v
			l.PayloadFormatVersion, _ = d.name(v, w)
		case "simple_responses":
			d.boolean(v, w, &l.SimpleResponses)
		case "identity_source":
			sourceSet = true
			if deref(v).Kind == yaml.SequenceNode {
				items, _ := d.list(v, w, "identity_source: [$request.header.Authorization]")
				l.IdentitySource = []string{}
				for i, it := range items {
					if s, ok := d.name(it, w+"["+strconv.Itoa(i)+"]"); ok {
						l.IdentitySource = append(l.IdentitySource, s)
					}
				}
			} else if s, ok := d.name(v, w); ok { // one source, as a JWT authorizer's
				l.IdentitySource = []string{s}
			}
		case "result_ttl":
			l.ResultTTL = d.ttl(v, w)
		case "timeout":
			d.duration(v, w, &l.Timeout, "the default 10s")
		}
	})
	if !ok {
		return l
	}
	if fnAt == nil {
		d.errorf(v, "%s has no function: name one of functions:, like %s", what, lambdaAuthorizerExample)
		return l
	}
	if !sourceSet {
		l.IdentitySource = []string{authz.DefaultIdentitySource}
	}
	if l.Type == authz.LambdaRequest && payloadAt == nil {
		l.PayloadFormatVersion = "2.0"
	}
	if err := l.Config().Validate(); err != nil {
		d.errorf(v, "%s: %v", what, err)
	}
	return l
}

// ttl decodes a result_ttl: a Go duration from 0s (no cache) up.
func (d *decoder) ttl(v *yaml.Node, what string) Duration {
	s, ok := d.str(v, what)
	if !ok {
		return 0
	}
	if s == "0" {
		return 0
	}
	t, err := time.ParseDuration(s)
	switch {
	case err != nil && (v.Tag == "!!int" || v.Tag == "!!float"):
		d.errorf(v, "%s %s has no unit: use a Go duration like \"%ss\" (0s: no cache)", what, s, s)
	case err != nil:
		d.errorf(v, "%s %q is not a duration: use a Go duration like \"300s\" (0s: no cache)", what, s)
	default:
		return Duration(t) // the range is checked with the rest
	}
	return Duration(authz.DefaultLambdaTTL)
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

// validateAuth checks that routes name declared authorizers, that Lambda
// authorizers name declared functions, and that only JWT authorizers are
// given scopes.
func (d *decoder) validateAuth(c *Config) {
	fns := make(map[string]bool, len(c.Functions))
	fnNames := make([]string, 0, len(c.Functions))
	for _, f := range c.Functions {
		fns[f.Name] = true
		fnNames = append(fnNames, f.Name)
	}
	names := make([]string, 0, len(c.Authorizers))
	known := map[string]*Authorizer{}
	for i, a := range c.Authorizers {
		names = append(names, a.Name)
		known[a.Name] = &c.Authorizers[i]
		if l := a.Lambda; l != nil && l.Function != "" && !fns[l.Function] {
			what := "authorizers." + a.Name + ".lambda.function"
			if len(fnNames) == 0 {
				d.errorAt(l.FunctionPos, fmt.Sprintf("%s: unknown function %q: no functions are declared; add it under functions:, like %s", what, l.Function, functionExampleHosted))
			} else {
				d.errorAt(l.FunctionPos, fmt.Sprintf("%s: unknown function %q: declared functions are %s", what, l.Function, nameList(fnNames)))
			}
		}
	}
	for i, r := range c.Routes {
		if r.Auth == nil || r.Auth.Authorizer == "" {
			continue
		}
		if a := known[r.Auth.Authorizer]; a != nil {
			if a.Lambda != nil && len(r.Auth.Scopes) > 0 {
				d.errorAt(d.routes[i].auth, fmt.Sprintf("routes[%d].auth.scopes: authorizer %s is a Lambda authorizer, whose function decides alone; scopes apply to JWT authorizers (as in API Gateway): remove them", i, a.Name))
			}
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
