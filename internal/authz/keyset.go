package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"
)

// maxDocument bounds a discovery document or JWKS read from the issuer.
const maxDocument = 1 << 20

// minRSABits refuses RSA keys too short to trust (NIST SP 800-131A).
const minRSABits = 2048

// verifyKey is one usable public key of a key set with the algorithms it
// may verify: only asymmetric ones, and only those of its own type, so a
// token signed with HS256 using the public key's bytes as the secret has
// nothing to be checked against.
type verifyKey struct {
	key  any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs []jose.SignatureAlgorithm
}

func (k verifyKey) allows(alg string) bool {
	for _, a := range k.algs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// keySet is an issuer's keys by kid, fetched from its JWKS. The map is
// immutable and swapped whole, so readers take no lock; fetches are shared
// by whoever wants one while it runs (a single flight).
type keySet struct {
	issuer  string
	client  *http.Client
	timeout time.Duration
	keys    atomic.Pointer[map[string]verifyKey]

	// refetch bounds the fetches that a request with an unknown kid may
	// start: one per interval, whatever the tokens say.
	refetch *rate.Limiter

	mu     sync.Mutex
	flight *fetchCall // the fetch under way, if any
	uri    string     // the JWKS URI: configured, or found by discovery
	// fetched is when keys were last fetched; lastErr the last fetch's
	// error, nil when it succeeded (status only).
	fetched time.Time
	lastErr error
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// lookup returns the key for kid from the cache.
func (s *keySet) lookup(kid string) (verifyKey, bool) {
	m := s.keys.Load()
	if m == nil {
		return verifyKey{}, false
	}
	k, ok := (*m)[kid]
	return k, ok
}

// refresh fetches the key set, joining a fetch already under way; with
// none under way it starts one only if mayStart (nil: always) allows,
// and otherwise reports false at once. Joining and starting are decided
// under one lock, so a caller never starts a fetch the limiter did not
// grant just because one ended a moment ago. The fetch runs under base
// and its own timeout, not under ctx, so a request that gives up does not
// cancel it for the others waiting; ctx only bounds the wait.
func (s *keySet) refresh(ctx, base context.Context, mayStart func() bool) (fetched bool, err error) {
	s.mu.Lock()
	c := s.flight
	if c == nil {
		if mayStart != nil && !mayStart() {
			s.mu.Unlock()
			return false, nil
		}
		c = &fetchCall{done: make(chan struct{})}
		s.flight = c
		go func() {
			fctx, cancel := context.WithTimeout(base, s.timeout)
			c.err = s.fetch(fctx)
			cancel()
			s.mu.Lock()
			s.lastErr = c.err
			if c.err == nil {
				s.fetched = time.Now()
			}
			s.flight = nil
			s.mu.Unlock()
			close(c.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return true, c.err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// fetch reads the JWKS (after discovery, the first time, when no jwks_uri
// was configured) and swaps in its usable keys. On any failure the cached
// keys stay.
func (s *keySet) fetch(ctx context.Context) error {
	s.mu.Lock()
	uri := s.uri
	s.mu.Unlock()
	if uri == "" {
		var err error
		if uri, err = s.discover(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		s.uri = uri
		s.mu.Unlock()
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := s.get(ctx, uri, &doc); err != nil {
		return fmt.Errorf("fetch JWKS: %w", err)
	}
	keys := make(map[string]verifyKey, len(doc.Keys))
	for _, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		// A key this package cannot read (another kty, a bad encoding)
		// is skipped, not a reason to drop the whole set.
		if jwk.UnmarshalJSON(raw) != nil || jwk.KeyID == "" || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		if k, ok := usable(jwk); ok {
			keys[jwk.KeyID] = k
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("fetch JWKS %s: no usable signing key (RSA of %d bits or more, EC P-256/384/521 or Ed25519, with a kid)", uri, minRSABits)
	}
	s.keys.Store(&keys)
	return nil
}

// usable returns the public key of jwk with the algorithms its type may
// verify, narrowed to jwk's own alg when it names one.
func usable(jwk jose.JSONWebKey) (verifyKey, bool) {
	if !jwk.IsPublic() {
		jwk = jwk.Public() // a private key published by mistake: use its public half
	}
	var k verifyKey
	switch key := jwk.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return k, false
		}
		k = verifyKey{key, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}}
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256():
			k = verifyKey{key, []jose.SignatureAlgorithm{jose.ES256}}
		case elliptic.P384():
			k = verifyKey{key, []jose.SignatureAlgorithm{jose.ES384}}
		case elliptic.P521():
			k = verifyKey{key, []jose.SignatureAlgorithm{jose.ES512}}
		default:
			return k, false
		}
	case ed25519.PublicKey:
		k = verifyKey{key, []jose.SignatureAlgorithm{jose.EdDSA}}
	default: // symmetric ("oct") keys and anything else: never
		return k, false
	}
	if jwk.Algorithm != "" {
		if !k.allows(jwk.Algorithm) {
			return k, false
		}
		k.algs = []jose.SignatureAlgorithm{jose.SignatureAlgorithm(jwk.Algorithm)}
	}
	return k, true
}

// discover reads the issuer's OpenID configuration for its jwks_uri
// (OpenID Connect Discovery 1.0 §4), which must name the same issuer
// (§4.3) and must itself be https, or http on loopback.
func (s *keySet) discover(ctx context.Context) (string, error) {
	uri := discoveryURL(s.issuer)
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := s.get(ctx, uri, &doc); err != nil {
		return "", fmt.Errorf("OpenID discovery: %w", err)
	}
	if doc.Issuer != s.issuer {
		return "", fmt.Errorf("OpenID discovery at %s: it names issuer %q, not %q", uri, doc.Issuer, s.issuer)
	}
	if _, err := checkURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("OpenID discovery at %s: jwks_uri: %w", uri, err)
	}
	return doc.JWKSURI, nil
}

func (s *keySet) get(ctx context.Context, uri string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", uri, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", uri, err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("GET %s: larger than %d bytes", uri, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", uri, err)
	}
	return nil
}
