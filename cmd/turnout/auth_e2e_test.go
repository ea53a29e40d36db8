package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
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
		if token != "" {
			token = "Bearer " + token
		}
		return getWithAuthorization(t, "http://"+n.public+"/orders/7", token)
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

// TestLambdaAuthorizerOnAWS: a Lambda authorizer that is an aws: function,
// invoked through the real AWS SDK (its endpoint is this node's own Invoke
// API, hosting the aws-lambda-go authorizer): an allowed call reaches the
// function with the authorizer's context, a denied one gets 403, a token
// seen before is answered from the cache, and `turnout status` shows it.
func TestLambdaAuthorizerOnAWS(t *testing.T) {
	dir := t.TempDir()
	invokeAddr := freePort(t)
	counts := filepath.Join(dir, "count")
	cfg := writeNodeConfig(t, dir, invokeAddr, fmt.Sprintf(`origins:
  legacy: {url: %s}
functions:
  hello: {handler: %s}
  authz: {handler: %s, env: {AUTHORIZER_RESPONSE: simple, COUNT_FILE: %s}}
  remote-authz: {aws: {function: "arn:aws:lambda:us-east-1:000000000000:function:authz", region: us-east-1, endpoint: "http://%s"}}
authorizers:
  custom: {lambda: {function: remote-authz, simple_responses: true}}
routes:
  - {match: "GET /orders/{id}", function: hello, auth: {authorizer: custom}}
  - {match: /, origin: legacy}
`, namedOrigin(t, "legacy").URL, filepath.Join(functionDir, "hello-v2"), filepath.Join(functionDir, "authorizer"), counts, invokeAddr))
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	n := startNode(t, cfg)
	get := func(token string) (int, string) {
		return getWithAuthorization(t, "http://"+n.public+"/orders/7", token)
	}
	for range 2 {
		code, b := get("allow-ana")
		var reply struct {
			Authorizer struct{ Lambda map[string]any }
		}
		if code != 200 || json.Unmarshal([]byte(b), &reply) != nil || reply.Authorizer.Lambda["user"] != "ana" {
			t.Fatalf("allow-ana: %d %s", code, b)
		}
	}
	if code, b := get("deny-bo"); code != 403 || b != `{"message":"Forbidden"}` {
		t.Errorf("deny-bo: %d %s", code, b)
	}
	seen, _ := os.ReadFile(counts)
	if got := string(seen); got != "allow-ana\ndeny-bo\n" {
		t.Errorf("the authorizer was invoked for %q; want allow-ana once (then cached) and deny-bo", got)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--admin", n.admin, "--token", testToken}, &out, &errb); code != 0 {
		t.Fatalf("turnout status: %s", errb.String())
	}
	testkit.ContainsAll(t, "status", out.String(), "custom", "lambda", "function:remote-authz", "GET /orders/{id}")
}

// getWithAuthorization GETs url with the Authorization header (none when
// "") and returns the status and body.
func getWithAuthorization(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
