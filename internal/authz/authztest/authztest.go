// Package authztest runs an OpenID-style token issuer on a loopback port
// for tests: a discovery document and a JWKS served by a real HTTP server,
// and tokens signed with real keys (RSA, ECDSA P-256, Ed25519) generated
// in the test. The issuer can rotate its keys, go down, and count how
// often its JWKS was fetched.
package authztest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key is a signing key of the issuer: its kid, its algorithm and its
// private half.
type Key struct {
	ID      string
	Alg     jose.SignatureAlgorithm
	Private crypto.Signer
	// OmitAlg publishes the key without "alg", as some issuers (Entra ID)
	// do: then only its type says which algorithms it may verify.
	OmitAlg bool
}

// NewKey generates a key for alg (RS256, ES256 or EdDSA) named kid.
func NewKey(t testing.TB, alg jose.SignatureAlgorithm, kid string) Key {
	t.Helper()
	k, err := GenerateKey(alg, kid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// GenerateKey is NewKey outside a test, for keys a package's tests share
// (RSA keys take a while to generate).
func GenerateKey(alg jose.SignatureAlgorithm, kid string) (Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, fmt.Errorf("authztest: no key generator for %s", alg)
	}
	if err != nil {
		return Key{}, err
	}
	return Key{ID: kid, Alg: alg, Private: priv}, nil
}

// Issuer is a token issuer serving ISSUER/.well-known/openid-configuration
// and ISSUER/jwks on 127.0.0.1.
type Issuer struct {
	// URL is the issuer, the value of its tokens' iss.
	URL string

	mu      sync.Mutex
	keys    []Key // published in the JWKS
	down    atomic.Bool
	fetches atomic.Int64
}

// NewIssuer starts an issuer publishing keys, closed at the end of the
// test.
func NewIssuer(t testing.TB, keys ...Key) *Issuer {
	t.Helper()
	iss := &Issuer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": iss.JWKSURL()})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.fetches.Add(1)
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(iss.JWKS())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	return iss
}

// JWKSURL is where the issuer serves its key set.
func (iss *Issuer) JWKSURL() string { return iss.URL + "/jwks" }

// JWKS is the key set the issuer publishes: the public halves of its keys.
func (iss *Issuer) JWKS() jose.JSONWebKeySet {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range iss.keys {
		jwk := jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"}
		if k.OmitAlg {
			jwk.Algorithm = ""
		}
		set.Keys = append(set.Keys, jwk)
	}
	return set
}

// Publish replaces the keys the JWKS holds: a rotation.
func (iss *Issuer) Publish(keys ...Key) {
	iss.mu.Lock()
	iss.keys = keys
	iss.mu.Unlock()
}

// SetDown makes discovery and the JWKS answer 503 (true) or serve again.
func (iss *Issuer) SetDown(down bool) { iss.down.Store(down) }

// Fetches counts the JWKS requests the issuer has had, answered or not.
func (iss *Issuer) Fetches() int64 { return iss.fetches.Load() }

// Claims are valid claims for audience: iss, sub "user-1", aud, iat now,
// exp in five minutes. Change them before Sign for the case under test.
func (iss *Issuer) Claims(audience string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss.URL,
		"sub": "user-1",
		"aud": audience,
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
}

// Sign returns claims as a compact JWT signed with key, its kid in the
// header.
func Sign(t testing.TB, key Key, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: key.Alg, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}
