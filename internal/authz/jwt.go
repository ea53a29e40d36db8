package authz

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/time/rate"
)

// Skew is how far the clocks of the issuer and of turnout may disagree:
// a token is still accepted up to Skew after its exp, and from Skew before
// its nbf or iat. It is go-jose's default leeway; AWS documents none.
const Skew = 60 * time.Second

// DefaultIdentitySource is where a JWT authorizer looks for the token
// unless told otherwise, as in API Gateway.
const DefaultIdentitySource = "$request.header.Authorization"

// maxToken bounds the token read from a request (header lines are bounded
// by the edge already; a query parameter is not).
const maxToken = 16 << 10

// allowedAlgs are the only algorithms a token may name: asymmetric ones.
// "none" and the HMAC algorithms are refused before any key is looked at.
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Config is one JWT authorizer, with the names of API Gateway's
// JwtConfiguration and identitySource.
type Config struct {
	// Issuer is the exact value the tokens' iss must have, and the base
	// of OpenID discovery. It must be https; http is accepted on a
	// loopback address only, for tests, with a warning.
	Issuer string
	// Audience lists the values of which a token's aud — or its client_id,
	// when it has no aud — must match one. At least one is required.
	Audience []string
	// JWKSURI is where the issuer's keys are; empty means OpenID discovery
	// at Issuer + "/.well-known/openid-configuration".
	JWKSURI string
	// IdentitySource is where the token is: "$request.header.NAME" or
	// "$request.querystring.NAME"; empty means DefaultIdentitySource.
	IdentitySource string
}

// Options tune an Authorizer; the zero value is the production default.
type Options struct {
	// Client fetches discovery and JWKS documents. The default has a
	// FetchTimeout timeout and follows redirects only to URLs an issuer
	// could have (https, or http on loopback).
	Client *http.Client
	// Logger receives the warnings about http issuers and failed key
	// fetches; default slog.Default().
	Logger *slog.Logger
	// RefreshInterval is how often the keys are fetched in the background;
	// default 15 minutes (API Gateway caches them for up to two hours).
	RefreshInterval time.Duration
	// RefetchInterval bounds the fetches that tokens with a kid the cache
	// does not know can cause on the request path: at most one per
	// interval, default 30 s; a fetch already under way is joined instead.
	// A background fetch that failed is retried after the shorter of the
	// two intervals.
	RefetchInterval time.Duration
	// FetchTimeout bounds one discovery plus JWKS fetch; default 5 s.
	FetchTimeout time.Duration
	// VerifiedTokens is how many verified tokens are kept so that the
	// same token again skips the signature check; 0 means
	// DefaultVerifiedTokens, a negative number keeps none.
	VerifiedTokens int
}

// Result is who a verified token says the caller is.
type Result struct {
	// Claims are all the token's claims as JSON decodes them, except
	// that numbers are json.Number: exactly the digits the issuer wrote.
	Claims map[string]any
	// Scopes are the token's "scope" (space-separated) or, without one,
	// its "scp" (an array, or a space-separated string).
	Scopes []string
	// Subject is the token's sub, or a Lambda authorizer's principalId:
	// who the access log says the caller is.
	Subject string

	// Lambda is set when a Lambda authorizer allowed the request: Context
	// is the context it returned (a simple response's, or a policy
	// response's), Latency how long its invocation took (0 when Cached).
	Lambda  bool
	Context map[string]any
	Latency time.Duration
	// Cached says the answer came from the authorizer's result cache.
	Cached bool
}

// Authorizer verifies JWTs from one issuer. Verify is safe for concurrent
// use and, when the token's kid is cached, takes no lock; Close stops the
// background refresh.
type Authorizer struct {
	issuer   string
	audience []string
	source   identitySource
	keys     *keySet
	verified *verifiedCache // nil: none kept
	log      *slog.Logger

	base   context.Context // the life of the background fetches
	cancel context.CancelFunc
	done   chan struct{}
	close  sync.Once
}

// Validate checks cfg as New does, without starting anything: for
// `turnout validate` and for a deployment checked before it serves. The
// warnings name an http issuer or jwks_uri accepted only because it is on
// loopback.
func (cfg Config) Validate() (warnings []string, err error) {
	plain, err := checkURL(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if plain {
		warnings = append(warnings, fmt.Sprintf("JWT issuer %s is plain http, accepted only because it is on loopback: use https anywhere else", cfg.Issuer))
	}
	if cfg.JWKSURI != "" {
		if plain, err = checkURL(cfg.JWKSURI); err != nil {
			return nil, fmt.Errorf("jwks_uri: %w", err)
		}
		if plain {
			warnings = append(warnings, fmt.Sprintf("JWT jwks_uri %s is plain http, accepted only because it is on loopback: use https anywhere else", cfg.JWKSURI))
		}
	}
	if len(cfg.Audience) == 0 {
		return nil, errors.New("audience: name at least one value that the tokens' aud or client_id must match")
	}
	for _, a := range cfg.Audience {
		if a == "" {
			return nil, errors.New("audience: an empty value would match no token; remove it")
		}
	}
	if _, err := parseIdentitySource(cfg.IdentitySource); err != nil {
		return nil, err
	}
	return warnings, nil
}

// New checks cfg and returns its Authorizer, which starts fetching the
// issuer's keys in the background; a key set that cannot be fetched yet is
// no error here (the issuer may come up later) but fails verifications
// with ErrKeysUnavailable until it can.
func New(cfg Config, opt Options) (*Authorizer, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.RefreshInterval <= 0 {
		opt.RefreshInterval = 15 * time.Minute
	}
	if opt.RefetchInterval <= 0 {
		opt.RefetchInterval = 30 * time.Second
	}
	if opt.FetchTimeout <= 0 {
		opt.FetchTimeout = 5 * time.Second
	}
	warnings, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		opt.Logger.Warn(w)
	}
	src, _ := parseIdentitySource(cfg.IdentitySource) // checked by Validate
	client := opt.Client
	if client == nil {
		client = &http.Client{
			Timeout: opt.FetchTimeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("stopped after 5 redirects")
				}
				_, err := checkURL(req.URL.String())
				return err
			},
		}
	}
	a := &Authorizer{
		issuer:   cfg.Issuer,
		audience: append([]string(nil), cfg.Audience...),
		source:   src,
		keys: &keySet{
			issuer:  cfg.Issuer,
			uri:     cfg.JWKSURI,
			client:  client,
			timeout: opt.FetchTimeout,
			refetch: rate.NewLimiter(rate.Every(opt.RefetchInterval), 1),
		},
		log:  opt.Logger,
		done: make(chan struct{}),
	}
	if opt.VerifiedTokens == 0 {
		opt.VerifiedTokens = DefaultVerifiedTokens
	}
	a.verified = newVerifiedCache(opt.VerifiedTokens, a.keys.keys.Load)
	a.base, a.cancel = context.WithCancel(context.Background())
	go a.refreshLoop(opt.RefreshInterval, min(opt.RefreshInterval, opt.RefetchInterval))
	return a, nil
}

// KeyIDs lists the kids of the keys held now, sorted: what a status page
// shows, and a key set's size.
func (a *Authorizer) KeyIDs() []string {
	m := a.keys.keys.Load()
	if m == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*m))
}

// Close stops the background refresh and waits for it to end.
func (a *Authorizer) Close() {
	a.close.Do(a.cancel)
	<-a.done
}

// refreshLoop fetches the keys now and every interval after, or after
// retry when a fetch failed; a failure keeps the cached keys.
func (a *Authorizer) refreshLoop(interval, retry time.Duration) {
	defer close(a.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-a.base.Done():
			return
		case <-t.C:
		}
		next := interval
		if _, err := a.keys.refresh(a.base, a.base, nil); err != nil {
			if a.base.Err() != nil {
				return
			}
			a.log.Warn("JWT keys not refreshed; the cached keys stay", "issuer", a.issuer, "error", err)
			next = retry
		}
		t.Reset(next)
	}
}

// Verify checks the token r carries in the authorizer's identity source
// and returns what it says. Every error is or wraps one of this package's
// *Error values; pass it to WriteError. ctx bounds the wait for a key
// fetch that a token with a new kid may cause.
func (a *Authorizer) Verify(ctx context.Context, r *http.Request) (Result, error) {
	token := a.source.token(r)
	if token == "" {
		return Result{}, ErrNoToken
	}
	return a.VerifyToken(ctx, token)
}

// VerifyToken is Verify for a token already read from its source.
func (a *Authorizer) VerifyToken(ctx context.Context, token string) (Result, error) {
	if len(token) > maxToken {
		return Result{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxToken)
	}
	if res, err, ok := a.verified.get(token, time.Now()); ok {
		return res, err
	}
	// The key set the token is checked against, read before its key: a
	// refetch meanwhile only makes the kept result miss sooner.
	keys := a.keys.keys.Load()
	tok, err := jwt.ParseSigned(token, allowedAlgs)
	if err != nil {
		if alg, ok := headerAlg(token); ok && !isAllowed(alg) {
			return Result{}, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
		}
		return Result{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(tok.Headers) != 1 {
		return Result{}, ErrMalformed
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return Result{}, fmt.Errorf("%w: the token has no kid", ErrUnknownKey)
	}
	key, err := a.key(ctx, h.KeyID)
	if err != nil {
		return Result{}, err
	}
	if !key.allows(h.Algorithm) {
		return Result{}, fmt.Errorf("%w: %s with kid %q", ErrAlgorithm, h.Algorithm, h.KeyID)
	}
	var payload json.RawMessage
	if err := tok.Claims(key.key, &payload); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return Result{}, ErrSignature
		}
		return Result{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	claims, std, err := decodeClaims(payload)
	if err != nil {
		return Result{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if std.Issuer != a.issuer {
		return Result{}, ErrIssuer
	}
	if !a.audienceMatches(std.Audience, claims) {
		return Result{}, ErrAudience
	}
	now := time.Now()
	switch {
	case std.Expiry == nil:
		return Result{}, ErrNoExpiry
	case now.Add(-Skew).After(std.Expiry.Time()):
		return Result{}, ErrExpired
	case std.NotBefore != nil && now.Add(Skew).Before(std.NotBefore.Time()):
		return Result{}, ErrNotYetValid
	case std.IssuedAt != nil && now.Add(Skew).Before(std.IssuedAt.Time()):
		return Result{}, fmt.Errorf("%w: issued in the future", ErrNotYetValid)
	}
	res := Result{Claims: claims, Scopes: scopes(claims), Subject: std.Subject}
	a.verified.put(token, res, std.Expiry.Time(), keys)
	return res, nil
}

// decodeClaims reads a verified payload twice: into a map for the
// function, its numbers as json.Number so that a numeric id or a date
// reaches it exactly as the issuer wrote it (float64 would turn
// 9007199254740993 into ...992 and 1700000000 into 1.7e+09), and into
// jwt.Claims for the registered claims.
func decodeClaims(payload []byte) (map[string]any, jwt.Claims, error) {
	var claims map[string]any
	var std jwt.Claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, std, err
	}
	if claims == nil {
		return nil, std, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, std, err
	}
	return claims, std, nil
}

// key returns the key for kid: from the cache, or after one fetch when
// the cache does not know kid and no fetch was started from the request
// path within the refetch interval. Tokens with made-up kids therefore
// cost the issuer at most one fetch per interval, and fail fast between.
func (a *Authorizer) key(ctx context.Context, kid string) (verifyKey, error) {
	if k, ok := a.keys.lookup(kid); ok {
		return k, nil
	}
	// A fetch under way (the background's, or one another request
	// started) is joined for free: a new kid seen by many requests at once
	// costs one fetch and fails none of them.
	fetched, fetchErr := a.keys.refresh(ctx, a.base, a.keys.refetch.Allow)
	if fetched {
		if k, ok := a.keys.lookup(kid); ok {
			return k, nil
		}
	}
	if a.keys.keys.Load() == nil {
		if fetchErr != nil {
			return verifyKey{}, fmt.Errorf("%w: %v", ErrKeysUnavailable, fetchErr)
		}
		return verifyKey{}, ErrKeysUnavailable
	}
	return verifyKey{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// audienceMatches applies API Gateway's rule: aud must hold one of the
// configured values; only a token without aud is judged by client_id.
func (a *Authorizer) audienceMatches(aud jwt.Audience, claims map[string]any) bool {
	if len(aud) > 0 {
		for _, want := range a.audience {
			if aud.Contains(want) {
				return true
			}
		}
		return false
	}
	id, _ := claims["client_id"].(string)
	for _, want := range a.audience {
		if id == want {
			return true
		}
	}
	return false
}

// scopes reads "scope" (RFC 8693 §4.2: space-separated) or else "scp"
// (an array, as Okta and Entra ID send it, or a string).
func scopes(claims map[string]any) []string {
	v, ok := claims["scope"]
	if !ok {
		v = claims["scp"]
	}
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, s := range v {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// headerAlg reads the alg a compact JWS's header names, to tell a refused
// algorithm from a malformed token in the answer.
func headerAlg(token string) (string, bool) {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return "", false
	}
	return h.Alg, true
}

func isAllowed(alg string) bool {
	for _, a := range allowedAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// identitySource is where a request carries its token.
type identitySource struct {
	header string // canonical header name, or
	query  string // query parameter name
}

func parseIdentitySource(s string) (identitySource, error) {
	if s == "" {
		s = DefaultIdentitySource
	}
	if name, ok := strings.CutPrefix(s, "$request.header."); ok && validName(name) {
		return identitySource{header: http.CanonicalHeaderKey(name)}, nil
	}
	if name, ok := strings.CutPrefix(s, "$request.querystring."); ok && validName(name) {
		return identitySource{query: name}, nil
	}
	return identitySource{}, fmt.Errorf("identity_source %q: a JWT authorizer reads one value, $request.header.NAME or $request.querystring.NAME", s)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// token reads the token, without a "Bearer " prefix if it has one (API
// Gateway: "the token, or the token prefixed with Bearer"; RFC 6750 §2.1
// makes the scheme case-insensitive).
func (s identitySource) token(r *http.Request) string {
	var v string
	if s.header != "" {
		v = r.Header.Get(s.header)
	} else {
		v = r.URL.Query().Get(s.query)
	}
	v = strings.TrimSpace(v)
	if len(v) >= 6 && strings.EqualFold(v[:6], "bearer") && (len(v) == 6 || v[6] == ' ') {
		v = strings.TrimSpace(v[6:])
	}
	return v
}

// checkURL accepts an https URL, or an http one on a loopback address
// (then plain is true), with a host and without query or fragment.
func checkURL(s string) (plain bool, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return false, err
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return false, fmt.Errorf("%q: want https://HOST[/PATH], without user, query or fragment", s)
	}
	switch u.Scheme {
	case "https":
		return false, nil
	case "http":
		if isLoopback(u.Hostname()) {
			return true, nil
		}
		return false, fmt.Errorf("%q: http is accepted on a loopback address only (for tests); use https", s)
	}
	return false, fmt.Errorf("%q: the scheme must be https", s)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// discoveryURL is where OpenID Connect Discovery 1.0 §4 puts an issuer's
// configuration.
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}
