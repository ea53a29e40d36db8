package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/go-jose/go-jose/v4"

	"github.com/turnout/turnout/internal/authz/authztest"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/testkit"
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

// TestAuthorizerReachesTargets: what a JWT authorizer verified reaches the
// route's targets — aws-lambda-go functions read it from
// requestContext.authorizer (2.0 jwt.claims/scopes, 1.0 claims), an origin
// route gets the chosen claims as headers, and a client cannot send those
// headers itself. The access log names the subject, never the token.
func TestAuthorizerReachesTargets(t *testing.T) {
	dir := testkit.BuildFunctions(t, "hello-v2", "hello-v1")
	host, err := fnhost.New(fnhost.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	seen := make(chan http.Header, 4)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	}))
	t.Cleanup(origin.Close)
	k := authztest.NewKey(t, jose.RS256, "k1")
	iss := authztest.NewIssuer(t, k)
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logged := func() string { logMu.Lock(); defer logMu.Unlock(); return logBuf.String() }
	h := newHarnessWith(t, Options{Functions: &invoke.Router{Hosted: host}, AccessLog: NewAccessLogger(lockedWriter{&logBuf, &logMu})}, fmt.Sprintf(`
legacy: legacy
origins:
  legacy: {url: %s}
functions:
  v2: {handler: %s}
  v1: {handler: %s}
authorizers:
  idp: {jwt: {issuer: %q, audience: [api]}}
routes:
  - {match: "GET /v2/{id}", function: v2, auth: {authorizer: idp}}
  - {match: "GET /v1/{id}", function: v1, payload: "1.0", auth: {authorizer: idp}}
  - {match: "GET /orders/{id}", origin: legacy, auth: {authorizer: idp, forward_claims: {sub: X-User-Id, "cognito:groups": X-Groups, tenant: X-Tenant}}}
`, origin.URL, filepath.Join(dir, "hello-v2"), filepath.Join(dir, "hello-v1"), iss.URL))

	claims := iss.Claims("api")
	claims["sub"] = "user-42"
	claims["scope"] = "orders:read profile"
	claims["cognito:groups"] = []string{"admin", "users"}
	claims["level"] = 3
	token := authztest.Sign(t, k, claims)
	get := func(path string, hdr ...string) []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+h.addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}

	var v2 struct {
		Authorizer *events.APIGatewayV2HTTPRequestContextAuthorizerDescription `json:"authorizer"`
	}
	if err := json.Unmarshal(get("/v2/1"), &v2); err != nil {
		t.Fatal(err)
	}
	if a := v2.Authorizer; a == nil || a.JWT == nil || a.JWT.Claims["sub"] != "user-42" || a.JWT.Claims["level"] != "3" ||
		a.JWT.Claims["cognito:groups"] != "[admin users]" || !slices.Equal(a.JWT.Scopes, []string{"orders:read", "profile"}) {
		t.Errorf("2.0 function saw authorizer %+v", v2.Authorizer)
	}
	var v1 struct {
		Authorizer map[string]any `json:"authorizer"`
	}
	if err := json.Unmarshal(get("/v1/1"), &v1); err != nil {
		t.Fatal(err)
	}
	if c, _ := v1.Authorizer["claims"].(map[string]any); c["sub"] != "user-42" || c["level"] != "3" {
		t.Errorf("1.0 function saw authorizer %v", v1.Authorizer)
	}

	get("/orders/1", "X-User-Id", "admin", "X-Tenant", "evil")
	hdr := <-seen
	if got := hdr.Values("X-User-Id"); !slices.Equal(got, []string{"user-42"}) {
		t.Errorf("origin saw X-User-Id %q, want only the token's sub", got)
	}
	if got := hdr.Get("X-Groups"); got != "[admin users]" {
		t.Errorf("origin saw X-Groups %q", got)
	}
	if _, ok := hdr["X-Tenant"]; ok {
		t.Errorf("origin saw the client's X-Tenant %q: a claim the token lacks must leave its header absent", hdr.Get("X-Tenant"))
	}

	testkit.Eventually(t, 5*time.Second, "three access-log lines", func() bool { return strings.Count(logged(), "\n") >= 3 })
	log := logged()
	if strings.Contains(log, token) || strings.Contains(log, token[strings.LastIndexByte(token, '.')+1:]) {
		t.Errorf("the access log holds the token:\n%s", log)
	}
	if n := strings.Count(log, `"authorizer":"idp","auth":"allowed","subject":"user-42"`); n != 3 {
		t.Errorf("%d access-log lines name the subject, want 3:\n%s", n, log)
	}
}
