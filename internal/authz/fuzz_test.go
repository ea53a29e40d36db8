package authz_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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

// FuzzLambdaAnswer feeds arbitrary function answers, outside input, to a
// Lambda authorizer, as a simple response and as a policy. Whatever comes
// in, Check must not panic, must refuse with ErrDenied or
// ErrAuthorizerFailed, and may allow only an answer that says yes: a
// simple response whose isAuthorized is true, a policy holding "Allow".
func FuzzLambdaAnswer(f *testing.F) {
	for _, seed := range []string{
		`{"isAuthorized": true, "context": {"a": 1}}`,
		`{"isAuthorized": false}`,
		`{"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}]}}`,
		`{"principalId": "u", "policyDocument": {"Statement": {"Effect": "Deny", "Action": ["execute-api:*"], "Resource": ["arn:*/GET/*"]}}}`,
		`{"policyDocument": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:execute-api:*:*:turnout/$default/GET/orders/?"}]}, "context": {"o": {}}}`,
		`null`, `[]`, `"Allow"`, `{"isAuthorized": "true"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		for _, simple := range []bool{true, false} {
			fn := &fixedFunction{answer: string(answer)}
			l, err := authz.NewLambda(lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses = simple }), fn.invoke)
			if err != nil {
				t.Fatal(err)
			}
			_, err = check(l, "GET", "/orders/1", "tok")
			l.Close()
			if err != nil {
				if !errors.Is(err, authz.ErrDenied) && !errors.Is(err, authz.ErrAuthorizerFailed) {
					t.Fatalf("simple %v: %q refused with %v, not one of the Lambda answers", simple, answer, err)
				}
				continue
			}
			var v any
			if json.Unmarshal(answer, &v) != nil {
				t.Fatalf("simple %v: allowed %q, which is not JSON", simple, answer)
			}
			if simple {
				var r struct{ IsAuthorized bool }
				if json.Unmarshal(answer, &r) != nil || !r.IsAuthorized {
					t.Fatalf("allowed %q, whose isAuthorized is not true", answer)
				}
			} else if !holds(v, "Allow") {
				t.Fatalf("allowed %q, a policy without Allow", answer)
			}
		}
	})
}

// holds reports whether the decoded JSON v has the string s somewhere.
func holds(v any, s string) bool {
	switch v := v.(type) {
	case string:
		return v == s
	case []any:
		for _, e := range v {
			if holds(e, s) {
				return true
			}
		}
	case map[string]any:
		for _, e := range v {
			if holds(e, s) {
				return true
			}
		}
	}
	return false
}
