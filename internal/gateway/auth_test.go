package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/turnout/turnout/internal/authz/authztest"
)

// TestAuthorizedRoute: a route with a JWT authorizer answers 401 without a
// valid token and 403 without its scope, in API Gateway's words, before its
// origin sees anything; a token with the scope reaches the origin. The
// route switched off keeps its authorizer.
func TestAuthorizedRoute(t *testing.T) {
	legacy, users := newOrigin(t, "legacy"), newOrigin(t, "users")
	k := authztest.NewKey(t, jose.ES256, "k1")
	iss := authztest.NewIssuer(t, k)
	cfg := func(off string) string {
		return fmt.Sprintf(`authorizers:
  idp: {jwt: {issuer: %q, audience: [api]}}
`, iss.URL) + withLegacy(legacy.srv.URL, []string{"users", users.srv.URL},
			`{match: "/orders/", origin: users, fallback: legacy, auth: {authorizer: idp, scopes: ["orders:read"]}`+off+`}`)
	}
	h := newHarness(t, cfg(""))
	get := func(token string) (int, string, string) {
		req, _ := http.NewRequest("GET", "http://"+h.addr+"/orders/1", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate")
	}
	claims := iss.Claims("api")
	if code, body, www := get(""); code != 401 || !strings.Contains(body, `"Unauthorized"`) || www == "" {
		t.Fatalf("no token: %d %q %q; want 401 Unauthorized with WWW-Authenticate", code, body, www)
	}
	if code, body, _ := get(authztest.Sign(t, k, claims)); code != 403 || !strings.Contains(body, `"Forbidden"`) {
		t.Fatalf("no scope: %d %q; want 403 Forbidden", code, body)
	}
	claims["scope"] = "orders:read profile"
	if code, body, _ := get(authztest.Sign(t, k, claims)); code != 200 || !strings.HasPrefix(body, "users saw GET /orders/1") {
		t.Fatalf("with the scope: %d %q; want the origin's answer", code, body)
	}
	if n := len(users.requests()); n != 1 {
		t.Fatalf("the origin saw %d requests, want only the authorized one", n)
	}
	h.apply(t, 2, cfg(", off: true"))
	if code, _, _ := get(""); code != 401 {
		t.Fatalf("switched off, no token: %d; want 401 (off does not open a route)", code)
	}
}
