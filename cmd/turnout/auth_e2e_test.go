package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/turnout/turnout/internal/authz/authztest"
	"github.com/turnout/turnout/internal/testkit"
)

// TestJWTAuthorizerAsUser: an operator adds an issuer and protects a
// function route, as docs/authorizers.md shows. `turnout validate` names a
// misspelt authorizer at its line and column; `turnout serve` fetches the
// issuer's keys by OpenID discovery; a call without a token gets API
// Gateway's 401, one with the token reaches the aws-lambda-go function with
// its claims in requestContext.authorizer; `turnout status` shows the
// authorizer, its keys and its routes.
func TestJWTAuthorizerAsUser(t *testing.T) {
	k := authztest.NewKey(t, jose.ES256, "key-2026")
	iss := authztest.NewIssuer(t, k)
	dir := t.TempDir()
	body := func(name string) string {
		return fmt.Sprintf(`origins:
  legacy: {url: %s}
legacy: legacy
functions:
  hello: {handler: %s}
authorizers:
  idp: {jwt: {issuer: %q, audience: [orders-api]}}
routes:
  - match: "GET /orders/{id}"
    function: hello
    auth: {authorizer: %s, scopes: ["orders:read"]}
  - {match: /, origin: legacy}
`, namedOrigin(t, "legacy").URL, filepath.Join(functionDir, "hello-v2"), iss.URL, name)
	}
	bad := writeNodeConfig(t, dir, "off", body("ipd"))
	var out, errb bytes.Buffer
	if code := run([]string{"validate", bad}, &out, &errb); code == 0 {
		t.Fatalf("validate accepted an unknown authorizer:\n%s", out.String())
	}
	testkit.ContainsAll(t, "validate", out.String()+errb.String(), "turnout.yaml:", `routes[0].auth.authorizer: unknown authorizer "ipd": declared authorizers are idp`)

	cfg := writeNodeConfig(t, dir, "off", body("idp"))
	n := startNode(t, cfg)
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+n.public+"/orders/7", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := get(""); code != 401 || b != `{"message":"Unauthorized"}` {
		t.Errorf("no token: %d %s", code, b)
	}
	claims := iss.Claims("orders-api")
	claims["sub"], claims["scope"] = "ana", "orders:read"
	code, b := get(authztest.Sign(t, k, claims))
	var reply struct {
		Authorizer struct {
			JWT struct {
				Claims map[string]string
				Scopes []string
			}
		}
	}
	if code != 200 || json.Unmarshal([]byte(b), &reply) != nil || reply.Authorizer.JWT.Claims["sub"] != "ana" || len(reply.Authorizer.JWT.Scopes) != 1 {
		t.Errorf("with the token: %d %s", code, b)
	}

	out.Reset()
	if code := run([]string{"status", "--admin", n.admin, "--token", testToken}, &out, &errb); code != 0 {
		t.Fatalf("turnout status: %s", errb.String())
	}
	testkit.ContainsAll(t, "status", out.String(), "AUTHORIZER", "idp", "jwt", iss.URL, "1 (fetched", "GET /orders/{id}")
}
