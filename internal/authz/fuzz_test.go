package authz_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/authz"
	"github.com/turnout/turnout/internal/authz/authztest"
)

// FuzzVerifyToken feeds arbitrary tokens, outside input, to Verify. Seeds
// are made at run time (tokens name the issuer's port and expire): tokens
// the issuer signed with each key type, alg none, HS256 with a public key,
// and a mangled one. Whatever comes in, Verify must not panic, must refuse
// with one of the package's errors, and may accept only a token whose
// claims the issuer signed: no change to a token's bytes forges one.
func FuzzVerifyToken(f *testing.F) {
	iss := authztest.NewIssuer(f, key("rsa"), key("ec"), key("ed"))
	a := newAuthorizer(f, iss, authz.Options{})
	signed := map[string]bool{}
	for _, name := range []string{"rsa", "ec", "ed"} {
		token := authztest.Sign(f, key(name), iss.Claims(audience))
		f.Add(token)
		signed[payloadOf(token)] = true
	}
	none := unsigned(map[string]any{"alg": "none", "kid": "rsa-1"}, iss.Claims(audience))
	f.Add(none + ".")
	m := hmac.New(sha256.New, []byte("public key bytes"))
	m.Write([]byte(none))
	f.Add(none + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)))
	f.Add("eyJhbGciOiJSUzI1NiJ9..")
	f.Fuzz(func(t *testing.T, token string) {
		res, err := a.VerifyToken(context.Background(), token)
		if err != nil {
			var e *authz.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is none of the package's", err)
			}
			return
		}
		if !signed[payloadOf(token)] {
			t.Fatalf("accepted claims the issuer never signed: %q", token)
		}
		if res.Subject != "user-1" || res.Claims == nil {
			t.Fatalf("accepted with subject %q claims %v", res.Subject, res.Claims)
		}
	})
}

// payloadOf is a compact token's decoded payload, "" if it has none.
func payloadOf(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	return string(b)
}
