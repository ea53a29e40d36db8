package authz_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/turnout/turnout/internal/authz"
	"github.com/turnout/turnout/internal/authz/authztest"
	"github.com/turnout/turnout/internal/testkit"
)

const audience = "api://orders"

// keys are generated once for the package's tests, in TestMain: RSA
// generation is slow.
var keys = map[string]authztest.Key{}

func TestMain(m *testing.M) {
	for name, k := range map[string]struct {
		alg jose.SignatureAlgorithm
		kid string
	}{"rsa": {jose.RS256, "rsa-1"}, "ec": {jose.ES256, "ec-1"}, "ed": {jose.EdDSA, "ed-1"}} {
		key, err := authztest.GenerateKey(k.alg, k.kid)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		keys[name] = key
	}
	os.Exit(m.Run())
}

func key(name string) authztest.Key { return keys[name] }

// newAuthorizer returns an authorizer for iss, its keys already fetched.
func newAuthorizer(t testing.TB, iss *authztest.Issuer, opt authz.Options) *authz.Authorizer {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testkit.QuietLogger()
	}
	a, err := authz.New(authz.Config{Issuer: iss.URL, Audience: []string{audience, "other-app"}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	testkit.Eventually(t, 10*time.Second, "the issuer's keys", func() bool { return len(a.KeyIDs()) > 0 })
	return a
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// unsigned builds a compact JWS by hand, for tokens no library would sign.
func unsigned(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
}

// signedPayload signs any payload, JSON object or not, with key.
func signedPayload(t *testing.T, key authztest.Key, payload string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Alg, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.ID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestVerify(t *testing.T) {
	rsaNoAlg := key("rsa")
	rsaNoAlg.ID, rsaNoAlg.OmitAlg = "rsa-2", true
	iss := authztest.NewIssuer(t, key("rsa"), key("ec"), key("ed"), rsaNoAlg)
	a := newAuthorizer(t, iss, authz.Options{})
	now := time.Now()
	with := func(change func(c map[string]any)) map[string]any {
		c := iss.Claims(audience)
		change(c)
		return c
	}
	rsaPublicPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(key("rsa").Private.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	hs256 := func(kid string, secret []byte) string {
		in := unsigned(map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, iss.Claims(audience))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	valid := authztest.Sign(t, key("rsa"), iss.Claims(audience))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+iss.URL+`","sub":"admin","aud":"`+audience+`","exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`}`)) + "." + parts[2]
	stranger := authztest.NewKey(t, jose.ES256, "ec-1") // same kid, key not published
	ecAsRSA, ecAsBareRSA := key("ec"), key("ec")
	ecAsRSA.ID, ecAsBareRSA.ID = "rsa-1", "rsa-2" // ES256 tokens naming an RSA key's kid

	for _, tc := range []struct {
		name    string
		token   string
		want    error
		subject string
		scopes  []string
	}{
		{"RS256", valid, nil, "user-1", nil},
		{"ES256", authztest.Sign(t, key("ec"), iss.Claims(audience)), nil, "user-1", nil},
		{"EdDSA", authztest.Sign(t, key("ed"), iss.Claims(audience)), nil, "user-1", nil},
		{"aud list with one of ours", authztest.Sign(t, key("rsa"), with(func(c map[string]any) { c["aud"] = []string{"x", "other-app"} })), nil, "user-1", nil},
		{"client_id without aud", authztest.Sign(t, key("rsa"), with(func(c map[string]any) { delete(c, "aud"); c["client_id"] = audience })), nil, "user-1", nil},
		{"scope string", authztest.Sign(t, key("ec"), with(func(c map[string]any) { c["scope"] = "orders:read  orders:write" })), nil, "user-1", []string{"orders:read", "orders:write"}},
		{"numbers kept exact", signedPayload(t, key("ed"), `{"iss":"`+iss.URL+`","sub":"user-1","aud":"`+audience+`","exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`,"account":9007199254740993}`), nil, "user-1", nil},
		{"scp array", authztest.Sign(t, key("ec"), with(func(c map[string]any) { c["scp"] = []string{"orders:read"} })), nil, "user-1", []string{"orders:read"}},
		{"expired within skew", authztest.Sign(t, key("ec"), with(func(c map[string]any) { c["exp"] = now.Add(-authz.Skew / 2).Unix() })), nil, "user-1", nil},
		{"expired", authztest.Sign(t, key("ec"), with(func(c map[string]any) { c["exp"] = now.Add(-2 * authz.Skew).Unix() })), authz.ErrExpired, "", nil},
		{"no exp", authztest.Sign(t, key("ec"), with(func(c map[string]any) { delete(c, "exp") })), authz.ErrNoExpiry, "", nil},
		{"not yet valid", authztest.Sign(t, key("ec"), with(func(c map[string]any) { c["nbf"] = now.Add(2 * authz.Skew).Unix() })), authz.ErrNotYetValid, "", nil},
		{"nbf within skew", authztest.Sign(t, key("ec"), with(func(c map[string]any) { c["nbf"] = now.Add(authz.Skew / 2).Unix() })), nil, "user-1", nil},
		{"issued in the future", authztest.Sign(t, key("ec"), with(func(c map[string]any) { c["iat"] = now.Add(2 * authz.Skew).Unix() })), authz.ErrNotYetValid, "", nil},
		{"wrong audience", authztest.Sign(t, key("rsa"), with(func(c map[string]any) { c["aud"] = "api://billing" })), authz.ErrAudience, "", nil},
		{"wrong client_id", authztest.Sign(t, key("rsa"), with(func(c map[string]any) { delete(c, "aud"); c["client_id"] = "api://billing" })), authz.ErrAudience, "", nil},
		{"aud wins over client_id", authztest.Sign(t, key("rsa"), with(func(c map[string]any) { c["aud"] = "api://billing"; c["client_id"] = audience })), authz.ErrAudience, "", nil},
		{"neither aud nor client_id", authztest.Sign(t, key("rsa"), with(func(c map[string]any) { delete(c, "aud") })), authz.ErrAudience, "", nil},
		{"wrong issuer", authztest.Sign(t, key("rsa"), with(func(c map[string]any) { c["iss"] = iss.URL + "/" })), authz.ErrIssuer, "", nil},
		{"alg none", unsigned(map[string]any{"alg": "none", "typ": "JWT", "kid": "rsa-1"}, iss.Claims(audience)) + ".", authz.ErrAlgorithm, "", nil},
		{"RS256, key published without alg", authztest.Sign(t, rsaNoAlg, iss.Claims(audience)), nil, "user-1", nil},
		{"HS256 with the RSA public key as secret", hs256("rsa-1", rsaPublicPEM()), authz.ErrAlgorithm, "", nil},
		{"HS256 with the public key as secret, key without alg", hs256("rsa-2", rsaPublicPEM()), authz.ErrAlgorithm, "", nil},
		{"ES256 naming an RSA key", authztest.Sign(t, ecAsRSA, iss.Claims(audience)), authz.ErrAlgorithm, "", nil},
		{"ES256 naming an RSA key without alg", authztest.Sign(t, ecAsBareRSA, iss.Claims(audience)), authz.ErrAlgorithm, "", nil},
		{"tampered claims", tampered, authz.ErrSignature, "", nil},
		{"unpublished key under a published kid", authztest.Sign(t, stranger, iss.Claims(audience)), authz.ErrSignature, "", nil},
		{"no kid", unsigned(map[string]any{"alg": "RS256"}, iss.Claims(audience)) + ".c2ln", authz.ErrUnknownKey, "", nil},
		{"garbage", "not.a.token", authz.ErrMalformed, "", nil},
		{"claims not an object", signedPayload(t, key("rsa"), `["x"]`), authz.ErrMalformed, "", nil},
		{"exp not a number", signedPayload(t, key("rsa"), `{"iss":"`+iss.URL+`","aud":"`+audience+`","exp":"tomorrow"}`), authz.ErrMalformed, "", nil},
		{"two parts", parts[0] + "." + parts[1], authz.ErrMalformed, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := a.Verify(context.Background(), bearer(tc.token))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			if err != nil {
				if res.Claims != nil {
					t.Errorf("a refused token gave claims %v", res.Claims)
				}
				return
			}
			if res.Subject != tc.subject || res.Claims["sub"] != tc.subject || res.Claims["iss"] != iss.URL {
				t.Errorf("subject %q claims %v, want subject %q", res.Subject, res.Claims, tc.subject)
			}
			if n, ok := res.Claims["account"]; ok && n != json.Number("9007199254740993") {
				t.Errorf("a large number claim came out as %#v", n)
			}
			if exp, ok := res.Claims["exp"].(json.Number); !ok || strings.ContainsAny(string(exp), ".e") {
				t.Errorf("exp came out as %#v, want the issuer's digits", res.Claims["exp"])
			}
			if strings.Join(res.Scopes, " ") != strings.Join(tc.scopes, " ") {
				t.Errorf("scopes %q, want %q", res.Scopes, tc.scopes)
			}
		})
	}
}

func TestIdentitySource(t *testing.T) {
	iss := authztest.NewIssuer(t, key("ec"))
	token := authztest.Sign(t, key("ec"), iss.Claims(audience))
	header := func(name, value string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if name != "" {
			r.Header.Set(name, value)
		}
		return r
	}
	for _, tc := range []struct {
		name, source string
		r            *http.Request
		want         error
	}{
		{"Bearer prefix", "", header("Authorization", "Bearer "+token), nil},
		{"lower-case bearer", "", header("Authorization", "bearer "+token), nil},
		{"bare token", "", header("Authorization", token), nil},
		{"no header", "", header("", ""), authz.ErrNoToken},
		{"empty Bearer", "", header("Authorization", "Bearer "), authz.ErrNoToken},
		{"other scheme", "", header("Authorization", "Basic dXNlcjpwdw=="), authz.ErrMalformed},
		{"custom header", "$request.header.X-Token", header("x-token", token), nil},
		{"custom header missing", "$request.header.X-Token", header("Authorization", "Bearer "+token), authz.ErrNoToken},
		{"query string", "$request.querystring.access_token", httptest.NewRequest(http.MethodGet, "/?access_token="+token, nil), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := authz.New(authz.Config{Issuer: iss.URL, Audience: []string{audience}, IdentitySource: tc.source}, authz.Options{Logger: testkit.QuietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if _, err := a.Verify(context.Background(), tc.r); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  authz.Config
		want string
	}{
		{"http issuer off loopback", authz.Config{Issuer: "http://auth.example.com", Audience: []string{"a"}}, "loopback"},
		{"other scheme", authz.Config{Issuer: "ftp://auth.example.com", Audience: []string{"a"}}, "https"},
		{"no host", authz.Config{Issuer: "https:///x", Audience: []string{"a"}}, "HOST"},
		{"query in issuer", authz.Config{Issuer: "https://auth.example.com/?x=1", Audience: []string{"a"}}, "query"},
		{"http jwks_uri off loopback", authz.Config{Issuer: "https://auth.example.com", JWKSURI: "http://10.0.0.1/jwks", Audience: []string{"a"}}, "jwks_uri"},
		{"no audience", authz.Config{Issuer: "https://auth.example.com"}, "audience"},
		{"empty audience", authz.Config{Issuer: "https://auth.example.com", Audience: []string{""}}, "audience"},
		{"identity source of two values", authz.Config{Issuer: "https://auth.example.com", Audience: []string{"a"}, IdentitySource: "$request.header.A, $request.header.B"}, "identity_source"},
		{"identity source from context", authz.Config{Issuer: "https://auth.example.com", Audience: []string{"a"}, IdentitySource: "$context.identity.sourceIp"}, "identity_source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error about %q", err, tc.want)
			}
			a, err := authz.New(tc.cfg, authz.Options{Logger: testkit.QuietLogger()})
			if err == nil {
				a.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestHTTPIssuerOnLoopbackWarns(t *testing.T) {
	iss := authztest.NewIssuer(t, key("ec"))
	var log testkit.SyncBuffer
	a := newAuthorizer(t, iss, authz.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if _, err := a.Verify(context.Background(), bearer(authztest.Sign(t, key("ec"), iss.Claims(audience)))); err != nil {
		t.Fatal(err)
	}
	testkit.ContainsAll(t, "log", log.String(), "level=WARN", "plain http", iss.URL)

	warnings, err := authz.Config{Issuer: "https://auth.example.com", JWKSURI: "http://[::1]:8080/jwks", Audience: []string{"a"}}.Validate()
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "jwks_uri http://[::1]:8080/jwks is plain http") {
		t.Errorf("Validate of an http jwks_uri on ::1: %q %v, want one warning", warnings, err)
	}
	if warnings, err := (authz.Config{Issuer: "https://auth.example.com", Audience: []string{"a"}}).Validate(); err != nil || len(warnings) != 0 {
		t.Errorf("Validate of an https issuer: %q %v, want nothing", warnings, err)
	}
}

func TestDiscovery(t *testing.T) {
	iss := authztest.NewIssuer(t, key("rsa"))
	token := authztest.Sign(t, key("rsa"), iss.Claims(audience))

	t.Run("explicit jwks_uri needs no discovery", func(t *testing.T) {
		// This issuer serves nothing at the discovery path.
		empty := httptest.NewServer(http.NotFoundHandler())
		defer empty.Close()
		a, err := authz.New(authz.Config{Issuer: empty.URL, JWKSURI: iss.JWKSURL(), Audience: []string{audience}}, authz.Options{Logger: testkit.QuietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		c := iss.Claims(audience)
		c["iss"] = empty.URL
		if _, err := a.Verify(context.Background(), bearer(authztest.Sign(t, key("rsa"), c))); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("discovery naming another issuer", func(t *testing.T) {
		liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, iss.URL, iss.JWKSURL())
		}))
		defer liar.Close()
		a, err := authz.New(authz.Config{Issuer: liar.URL, Audience: []string{audience}}, authz.Options{Logger: testkit.QuietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		_, err = a.Verify(context.Background(), bearer(token))
		if !errors.Is(err, authz.ErrKeysUnavailable) || !strings.Contains(err.Error(), "names issuer") {
			t.Fatalf("Verify: %v, want ErrKeysUnavailable for the discovery's issuer", err)
		}
	})

	t.Run("discovery pointing at plain http off loopback", func(t *testing.T) {
		bad := httptest.NewServer(nil)
		defer bad.Close()
		bad.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":"http://keys.example.com/jwks"}`, bad.URL)
		})
		a, err := authz.New(authz.Config{Issuer: bad.URL, Audience: []string{audience}}, authz.Options{Logger: testkit.QuietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if _, err := a.Verify(context.Background(), bearer(token)); !errors.Is(err, authz.ErrKeysUnavailable) || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("Verify: %v, want ErrKeysUnavailable for the jwks_uri", err)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	old, next, later := key("rsa"), authztest.NewKey(t, jose.ES256, "ec-2"), authztest.NewKey(t, jose.EdDSA, "ed-2")
	iss := authztest.NewIssuer(t, old)
	verifyToken := func(a *authz.Authorizer, token string) error {
		_, err := a.Verify(context.Background(), bearer(token))
		return err
	}
	verify := func(a *authz.Authorizer, k authztest.Key) error {
		return verifyToken(a, authztest.Sign(t, k, iss.Claims(audience)))
	}

	t.Run("new kid on first sight, then at most one fetch per interval", func(t *testing.T) {
		iss.Publish(old)
		a := newAuthorizer(t, iss, authz.Options{RefetchInterval: time.Hour})
		if err := verify(a, old); err != nil {
			t.Fatal(err)
		}
		before := iss.Fetches()
		iss.Publish(old, next)
		// Many requests see the new kid at once: one fetch serves them all.
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() { errs <- verify(a, next) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a token of the new key: %v", err)
			}
		}
		if got := iss.Fetches() - before; got != 1 {
			t.Fatalf("%d JWKS fetches for a new kid, want 1", got)
		}
		// Within the interval another new kid is not fetched for: the
		// request fails fast, and made-up kids cost the issuer nothing.
		iss.Publish(old, next, later)
		if err := verify(a, later); !errors.Is(err, authz.ErrUnknownKey) {
			t.Fatalf("a second new kid within the interval: %v, want ErrUnknownKey", err)
		}
		for i := range 500 {
			k := next
			k.ID = fmt.Sprintf("made-up-%d", i)
			if err := verify(a, k); !errors.Is(err, authz.ErrUnknownKey) {
				t.Fatalf("made-up kid: %v", err)
			}
		}
		if got := iss.Fetches() - before; got != 1 {
			t.Fatalf("%d JWKS fetches after 500 made-up kids, want still 1", got)
		}
		if got := strings.Join(a.KeyIDs(), ","); got != "ec-2,rsa-1" {
			t.Fatalf("keys held %s, want ec-2,rsa-1", got)
		}
	})

	t.Run("a short interval picks up the next key and still bounds fetches", func(t *testing.T) {
		const interval = 50 * time.Millisecond
		iss.Publish(old)
		a := newAuthorizer(t, iss, authz.Options{RefetchInterval: interval})
		iss.Publish(old, next)
		if err := verify(a, next); err != nil {
			t.Fatal(err)
		}
		kept := authztest.Sign(t, old, iss.Claims(audience))
		if err := verifyToken(a, kept); err != nil {
			t.Fatal(err)
		}
		iss.Publish(next, later) // the old key retired
		testkit.Eventually(t, 10*time.Second, "the later key", func() bool { return verify(a, later) == nil })
		if err := verify(a, old); !errors.Is(err, authz.ErrUnknownKey) {
			t.Fatalf("a retired key: %v, want ErrUnknownKey", err)
		}
		// A token verified before its key was retired is not let in
		// from the verified-token cache either.
		if err := verifyToken(a, kept); !errors.Is(err, authz.ErrUnknownKey) {
			t.Fatalf("a token of the retired key verified before: %v, want ErrUnknownKey", err)
		}
		// Made-up kids for a while: the fetches stay within one per
		// interval (plus the one the first may start at once).
		start, before := time.Now(), iss.Fetches()
		for i := 0; i < 2000 && time.Since(start) < 500*time.Millisecond; i++ {
			k := later
			k.ID = fmt.Sprintf("made-up-%d", i)
			_ = verify(a, k)
		}
		got, bound := iss.Fetches()-before, 2+int64(time.Since(start)/interval)
		if got > bound {
			t.Fatalf("%d JWKS fetches in %v, want at most %d", got, time.Since(start), bound)
		}
	})
}

func TestJWKSDown(t *testing.T) {
	iss := authztest.NewIssuer(t, key("rsa"), key("ec"))
	t.Run("cached keys keep working", func(t *testing.T) {
		a := newAuthorizer(t, iss, authz.Options{RefreshInterval: 10 * time.Millisecond, RefetchInterval: time.Hour})
		iss.SetDown(true)
		defer iss.SetDown(false)
		// The background refresh fails again and again; the keys stay.
		before := iss.Fetches()
		testkit.Eventually(t, 10*time.Second, "failed background refreshes", func() bool { return iss.Fetches() >= before+3 })
		for _, k := range []authztest.Key{key("rsa"), key("ec")} {
			if _, err := a.Verify(context.Background(), bearer(authztest.Sign(t, k, iss.Claims(audience)))); err != nil {
				t.Fatalf("%s with the JWKS down: %v", k.ID, err)
			}
		}
		a.Close()
	})

	t.Run("an unknown kid fails fast without hammering", func(t *testing.T) {
		// No background refresh within the test: every fetch counted is
		// one a request started.
		a := newAuthorizer(t, iss, authz.Options{RefreshInterval: time.Hour, RefetchInterval: time.Hour})
		iss.SetDown(true)
		defer iss.SetDown(false)
		stranger := authztest.NewKey(t, jose.ES256, "ec-9")
		token := authztest.Sign(t, stranger, iss.Claims(audience))
		before := iss.Fetches()
		for range 100 {
			if _, err := a.Verify(context.Background(), bearer(token)); !errors.Is(err, authz.ErrUnknownKey) {
				t.Fatalf("unknown kid with the JWKS down: %v", err)
			}
		}
		if got := iss.Fetches() - before; got != 1 {
			t.Fatalf("%d JWKS fetches for 100 requests with an unknown kid, want 1", got)
		}
		if _, err := a.Verify(context.Background(), bearer(authztest.Sign(t, key("rsa"), iss.Claims(audience)))); err != nil {
			t.Fatalf("a cached key after the failed fetch: %v", err)
		}
	})

	t.Run("down from the start, then up", func(t *testing.T) {
		iss.SetDown(true)
		a, err := authz.New(authz.Config{Issuer: iss.URL, Audience: []string{audience}}, authz.Options{Logger: testkit.QuietLogger(), RefetchInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		token := authztest.Sign(t, key("rsa"), iss.Claims(audience))
		if _, err := a.Verify(context.Background(), bearer(token)); !errors.Is(err, authz.ErrKeysUnavailable) {
			t.Fatalf("Verify with no keys ever fetched: %v, want ErrKeysUnavailable", err)
		}
		iss.SetDown(false)
		testkit.Eventually(t, 10*time.Second, "the keys once the issuer is up", func() bool {
			_, err := a.Verify(context.Background(), bearer(token))
			return err == nil
		})
	})

	t.Run("a request that gives up does not wait for the fetch", func(t *testing.T) {
		slow := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-slow:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(slow)
		a, err := authz.New(authz.Config{Issuer: iss.URL, JWKSURI: srv.URL + "/jwks", Audience: []string{audience}}, authz.Options{Logger: testkit.QuietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := a.Verify(ctx, bearer(authztest.Sign(t, key("rsa"), iss.Claims(audience)))); !errors.Is(err, authz.ErrKeysUnavailable) {
			t.Fatalf("Verify against a hanging JWKS: %v, want ErrKeysUnavailable", err)
		}
	})
}

// TestManyTokensBoundedMemory verifies 10,000 distinct tokens, half of
// them naming made-up kids, after enough to fill the verified-token cache:
// nothing more is kept per token, so the heap and the key set stay as
// they were.
func TestManyTokensBoundedMemory(t *testing.T) {
	iss := authztest.NewIssuer(t, key("ed"))
	a := newAuthorizer(t, iss, authz.Options{RefetchInterval: time.Hour})
	stranger := key("ed")
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	run := func(from, to int) {
		for i := from; i < to; i++ {
			c := iss.Claims(audience)
			c["sub"] = fmt.Sprintf("user-%d", i)
			c["jti"] = fmt.Sprintf("token-%d", i)
			k, want := key("ed"), error(nil)
			if i%2 == 1 {
				k, want = stranger, authz.ErrUnknownKey
				k.ID = fmt.Sprintf("kid-%d", i)
			}
			res, err := a.Verify(context.Background(), bearer(authztest.Sign(t, k, c)))
			if !errors.Is(err, want) || (err == nil && res.Subject != c["sub"]) {
				t.Fatalf("token %d: %v %q, want %v", i, err, res.Subject, want)
			}
		}
	}
	const warm = 2*authz.DefaultVerifiedTokens + 1000 // every other token is valid
	run(0, warm)
	fetches, before := iss.Fetches(), heap()
	run(warm, warm+10000)
	after := heap()
	t.Logf("heap %d bytes after %d tokens, %d after 10,000 more", before, warm, after)
	if after > before+1<<20 {
		t.Errorf("heap grew from %d to %d bytes over 10,000 tokens", before, after)
	}
	if got := iss.Fetches() - fetches; got != 0 {
		t.Errorf("%d JWKS fetches for 4,500 made-up kids after the first", got)
	}
	if got := a.KeyIDs(); len(got) != 1 {
		t.Errorf("keys held %v, want only ed-1", got)
	}
}

func TestScopesAllow(t *testing.T) {
	for _, tc := range []struct {
		route, token []string
		want         error
	}{
		{nil, nil, nil},
		{nil, []string{"a"}, nil},
		{[]string{"orders:read"}, []string{"orders:read"}, nil},
		{[]string{"orders:read", "orders:admin"}, []string{"profile", "orders:admin"}, nil},
		{[]string{"orders:read"}, nil, authz.ErrInsufficientScope},
		{[]string{"orders:read"}, []string{"orders:write", "Orders:read"}, authz.ErrInsufficientScope},
	} {
		if err := authz.Scopes(tc.route).Allow(tc.token); !errors.Is(err, tc.want) {
			t.Errorf("route %q token %q: %v, want %v", tc.route, tc.token, err, tc.want)
		}
	}
}

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		scopes    []string
		status    int
		body, www string
	}{
		{"no token", authz.ErrNoToken, nil, 401, `{"message":"Unauthorized"}`, `Bearer`},
		{"invalid, wrapped", fmt.Errorf("%w: kid %q", authz.ErrUnknownKey, "x"), nil, 401, `{"message":"Unauthorized"}`,
			`Bearer error="invalid_token", error_description="no key of the issuer matches the token's kid"`},
		{"audience", authz.ErrAudience, []string{"orders:read"}, 401, `{"message":"Unauthorized"}`,
			`Bearer scope="orders:read", error="invalid_token", error_description="the token does not have a valid audience"`},
		{"scope", authz.ErrInsufficientScope, []string{"orders:read", "orders:admin"}, 403, `{"message":"Forbidden"}`,
			`Bearer scope="orders:read orders:admin", error="insufficient_scope", error_description="the token does not have the required scope"`},
		{"anything else is still a refusal", errors.New("boom"), nil, 401, `{"message":"Unauthorized"}`,
			`Bearer error="invalid_token", error_description="the token is malformed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			authz.WriteError(w, tc.err, tc.scopes)
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Errorf("%d %s, want %d %s", w.Code, w.Body, tc.status, tc.body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.www {
				t.Errorf("WWW-Authenticate %s, want %s", got, tc.www)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %s", got)
			}
		})
	}
}

// BenchmarkVerify measures a verification on the request path, its key
// cached: header parse, signature, claims ("signed", a token not seen
// before) or a token verified before ("kept", the verified-token cache).
func BenchmarkVerify(b *testing.B) {
	iss := authztest.NewIssuer(b, key("rsa"), key("ec"), key("ed"))
	signed := newAuthorizer(b, iss, authz.Options{VerifiedTokens: -1})
	kept := newAuthorizer(b, iss, authz.Options{})
	for _, name := range []string{"rsa", "ec", "ed"} {
		k := key(name)
		c := iss.Claims(audience)
		c["exp"] = time.Now().Add(time.Hour).Unix()
		c["scope"] = "orders:read orders:write"
		r := bearer(authztest.Sign(b, k, c))
		for _, a := range []struct {
			name string
			a    *authz.Authorizer
		}{{"signed", signed}, {"kept", kept}} {
			b.Run(string(k.Alg)+"/"+a.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.a.Verify(context.Background(), r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestAnswersOverHTTP runs the whole check in front of a handler on a
// real socket, as the gateway will: Verify, the route's scopes, and
// WriteError for every refusal.
func TestAnswersOverHTTP(t *testing.T) {
	iss := authztest.NewIssuer(t, key("rsa"))
	a := newAuthorizer(t, iss, authz.Options{})
	routeScopes := authz.Scopes{"orders:read", "orders:admin"}
	addr := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := a.Verify(r.Context(), r)
		if err == nil {
			err = routeScopes.Allow(res.Scopes)
		}
		if err != nil {
			authz.WriteError(w, err, routeScopes)
			return
		}
		_, _ = fmt.Fprintf(w, "hello %s", res.Subject)
	}))
	token := func(scope string) string {
		c := iss.Claims(audience)
		if scope != "" {
			c["scope"] = scope
		}
		return authztest.Sign(t, key("rsa"), c)
	}
	expired := iss.Claims(audience)
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	for _, tc := range []struct {
		name, authorization string
		status              int
		body, www           string
	}{
		{"allowed", "Bearer " + token("profile orders:admin"), 200, "hello user-1", ""},
		{"no token", "", 401, `{"message":"Unauthorized"}`, `Bearer scope="orders:read orders:admin"`},
		{"expired", "Bearer " + authztest.Sign(t, key("rsa"), expired), 401, `{"message":"Unauthorized"}`,
			`Bearer scope="orders:read orders:admin", error="invalid_token", error_description="the token has expired"`},
		{"missing scope", "Bearer " + token("profile"), 403, `{"message":"Forbidden"}`,
			`Bearer scope="orders:read orders:admin", error="insufficient_scope", error_description="the token does not have the required scope"`},
		{"no scope at all", "Bearer " + token(""), 403, `{"message":"Forbidden"}`,
			`Bearer scope="orders:read orders:admin", error="insufficient_scope", error_description="the token does not have the required scope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/orders/7", nil)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, body, tc.status, tc.body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.www {
				t.Errorf("WWW-Authenticate %s, want %s", got, tc.www)
			}
		})
	}
}

// TestKeySetContents serves hand-made key sets: keys turnout must not use
// are skipped one by one, and a set that cannot be used at all (too big,
// not JSON, no usable key) leaves the cached keys in place.
func TestKeySetContents(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a shared secret of thirty-two by")
	jwk := func(k jose.JSONWebKey) json.RawMessage {
		b, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	set := func(keys ...json.RawMessage) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	ecPublic := jose.JSONWebKey{Key: key("ec").Private.Public(), KeyID: "ec-1", Use: "sig"}
	mixed := set(
		jwk(jose.JSONWebKey{Key: secret, KeyID: "oct-1", Algorithm: "HS256"}),
		jwk(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "rsa-1024"}),
		jwk(jose.JSONWebKey{Key: key("rsa").Private.Public(), KeyID: "rsa-enc", Use: "enc"}),
		jwk(jose.JSONWebKey{Key: key("ed").Private.Public()}), // no kid
		json.RawMessage(`{"kty":"XYZ","kid":"weird"}`),
		json.RawMessage(`{"kty":"EC","kid":"broken","crv":"P-256","x":"AAAA","y":"AAAA"}`),
		jwk(ecPublic),
	)
	var body atomic.Value
	body.Store(mixed)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(body.Load().([]byte))
	}))
	defer srv.Close()
	a, err := authz.New(authz.Config{Issuer: srv.URL, JWKSURI: srv.URL + "/jwks", Audience: []string{audience}},
		authz.Options{Logger: testkit.QuietLogger(), RefreshInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	testkit.Eventually(t, 10*time.Second, "the key set", func() bool { return len(a.KeyIDs()) > 0 })
	if got := strings.Join(a.KeyIDs(), ","); got != "ec-1" {
		t.Fatalf("keys held %s, want only ec-1", got)
	}
	claims := map[string]any{"iss": srv.URL, "sub": "user-1", "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}
	check := func(what string) {
		t.Helper()
		if _, err := a.VerifyToken(context.Background(), authztest.Sign(t, key("ec"), claims)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		m := hmac.New(sha256.New, secret)
		in := unsigned(map[string]any{"alg": "HS256", "kid": "oct-1"}, claims)
		m.Write([]byte(in))
		if _, err := a.VerifyToken(context.Background(), in+"."+base64.RawURLEncoding.EncodeToString(m.Sum(nil))); !errors.Is(err, authz.ErrAlgorithm) {
			t.Fatalf("%s: an HS256 token of a published oct key: %v, want ErrAlgorithm", what, err)
		}
	}
	check("mixed set")

	for _, bad := range []struct {
		name string
		body []byte
	}{
		{"larger than 1 MiB", append(set(jwk(ecPublic)), bytes.Repeat([]byte(" "), 1<<20)...)},
		{"not JSON", []byte("<html>maintenance</html>")},
		{"no usable key", set(jwk(jose.JSONWebKey{Key: secret, KeyID: "oct-2"}))},
		{"no keys", []byte(`{"keys":[]}`)},
	} {
		body.Store(bad.body)
		h := hits.Load()
		testkit.Eventually(t, 10*time.Second, "two more refreshes", func() bool { return hits.Load() >= h+2 })
		if got := strings.Join(a.KeyIDs(), ","); got != "ec-1" {
			t.Fatalf("after a key set %s, keys held %q, want ec-1 kept", bad.name, got)
		}
		check("after a key set " + bad.name)
	}
}
