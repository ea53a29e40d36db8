package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout/internal/authz"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/testkit"
)

// lambdaAuthHarness is a gateway whose routes are guarded by Lambda
// authorizers: the real aws-lambda-go binary examples/functions/authorizer,
// hosted, in front of examples/functions/echo (which answers with the event
// it was given) and a legacy origin. The authorizer appends each token it
// is invoked with to a file, so the test counts invocations.
type lambdaAuthHarness struct {
	*harness
	legacy *recordingOrigin
	counts string // the policy authorizer's COUNT_FILE
	simple string // the simple one's
	client *http.Client

	logMu sync.Mutex
	log   bytes.Buffer // the access log
}

func newLambdaAuthHarness(t *testing.T) *lambdaAuthHarness {
	t.Helper()
	dir := testkit.BuildFunctions(t, "authorizer", "echo")
	host, err := fnhost.New(fnhost.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	h := &lambdaAuthHarness{legacy: newOrigin(t, "legacy"), counts: filepath.Join(dir, "policy.count"),
		simple: filepath.Join(dir, "simple.count"), client: &http.Client{Timeout: 10 * time.Second}}
	h.harness = newHarnessWith(t, Options{Functions: &invoke.Router{Hosted: host}, AccessLog: NewAccessLogger(lockedWriter{&h.log, &h.logMu})}, fmt.Sprintf(`origins:
  legacy: {url: %[1]s}
functions:
  authz: {handler: %[2]s/authorizer, timeout: 5s, env: {COUNT_FILE: %[3]s}}
  authz-simple: {handler: %[2]s/authorizer, env: {AUTHORIZER_RESPONSE: simple, COUNT_FILE: %[4]s}}
  echo: {handler: %[2]s/echo}
authorizers:
  simple: {lambda: {function: authz-simple, simple_responses: true}}
  policy: {lambda: {function: authz}}
  rest: {lambda: {function: authz, payload_format_version: "1.0"}}
  token: {lambda: {function: authz, type: token, identity_source: $request.header.X-Token}}
  nocache: {lambda: {function: authz, result_ttl: 0s}}
  quick: {lambda: {function: authz, timeout: 300ms, result_ttl: 0s}}
  query: {lambda: {function: authz-simple, simple_responses: true, identity_source: [$request.querystring.token, $request.header.X-Tenant]}}
routes:
  - {match: "GET /simple", function: echo, auth: {authorizer: simple}}
  - {match: "/policy/", function: echo, auth: {authorizer: policy}}
  - {match: "GET /rest", function: echo, payload: "1.0", auth: {authorizer: rest}}
  - {match: "GET /token", function: echo, payload: "1.0", auth: {authorizer: token}}
  - {match: "GET /nocache", function: echo, auth: {authorizer: nocache}}
  - {match: "GET /quick", function: echo, auth: {authorizer: quick}}
  - {match: "GET /query", function: echo, auth: {authorizer: query}}
  - {match: "GET /origin", origin: legacy, auth: {authorizer: simple}}
`, h.legacy.srv.URL, dir, h.counts, h.simple))
	return h
}

// get sends GET path with header: value (none when value is "") and
// returns the status and body.
func (h *lambdaAuthHarness) get(t *testing.T, method, path, header, value string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+h.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if value != "" {
		req.Header.Set(header, value)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// invocations is how many times the authorizer writing file was invoked
// with token, or at all when token is "".
func invocations(t *testing.T, file, token string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l == token || token == "" && l != "" {
			n++
		}
	}
	return n
}

// authorizerBlock is the event's requestContext.authorizer, from the echo
// function's body.
func authorizerBlock(t *testing.T, body string) map[string]any {
	t.Helper()
	var ev struct {
		RequestContext struct {
			Authorizer map[string]any `json:"authorizer"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatalf("the echo's body is not an event: %v: %s", err, body)
	}
	return ev.RequestContext.Authorizer
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestLambdaAuthorizerSimple: a payload 2.0 authorizer with simple
// responses. Allowed, the function's event carries its context under
// requestContext.authorizer.lambda, as AWS's; its answer is cached per
// token (a second request does not invoke it, another token does); no
// token is 401 without invoking; a no is 403; an answer that is not one is
// 500. Each is counted in turnout_auth_total.
func TestLambdaAuthorizerSimple(t *testing.T) {
	h := newLambdaAuthHarness(t)
	code, body := h.get(t, "GET", "/simple", "Authorization", "Bearer allow-alice")
	if code != 200 {
		t.Fatalf("allow-alice: %d %s", code, body)
	}
	if got, want := jsonOf(authorizerBlock(t, body)), `{"lambda":{"admin":true,"level":3,"user":"alice"}}`; got != want {
		t.Errorf("requestContext.authorizer %s, want %s", got, want)
	}
	if code, _ := h.get(t, "GET", "/simple", "Authorization", "Bearer allow-alice"); code != 200 {
		t.Fatalf("allow-alice again: %d", code)
	}
	if n := invocations(t, h.simple, "allow-alice"); n != 1 {
		t.Errorf("allow-alice twice invoked the authorizer %d times, want 1 (the second from the cache)", n)
	}
	if code, _ := h.get(t, "GET", "/simple", "Authorization", "Bearer allow-bob"); code != 200 {
		t.Fatalf("allow-bob: %d", code)
	}
	if n := invocations(t, h.simple, "allow-bob"); n != 1 {
		t.Errorf("another token invoked the authorizer %d times, want 1: the cache is keyed by the identity source", n)
	}
	if st := authorizerStatusOf(t, h.gw, "simple"); st.Cached != 2 || st.Function != "authz-simple" {
		t.Errorf("status: %+v; want function authz-simple with 2 cached answers", st)
	}
	before := invocations(t, h.simple, "")
	if code, body := h.get(t, "GET", "/simple", "", ""); code != 401 || body != `{"message":"Unauthorized"}` {
		t.Errorf("no token: %d %s, want 401 Unauthorized", code, body)
	}
	if n := invocations(t, h.simple, "") - before; n != 0 {
		t.Errorf("no token invoked the authorizer %d times, want none", n)
	}
	if code, body := h.get(t, "GET", "/simple", "Authorization", "deny-carol"); code != 403 || body != `{"message":"Forbidden"}` {
		t.Errorf("deny-carol: %d %s, want 403 Forbidden", code, body)
	}
	if code, body := h.get(t, "GET", "/simple", "Authorization", "garbage"); code != 500 || body != `{"message":"Internal Server Error"}` {
		t.Errorf("an answer that is not one: %d %s, want 500", code, body)
	}
	// An origin route: the origin sees only what was allowed.
	if code, _ := h.get(t, "GET", "/origin", "Authorization", "deny-carol"); code != 403 {
		t.Errorf("origin route, deny-carol: %d, want 403", code)
	}
	if code, _ := h.get(t, "GET", "/origin", "Authorization", "allow-alice"); code != 200 {
		t.Errorf("origin route, allow-alice: %d, want 200", code)
	}
	if seen := h.legacy.requests(); len(seen) != 1 {
		t.Errorf("the origin saw %v, want only the allowed request", seen)
	}
	for result, want := range map[string]float64{"allowed": 3, "unauthorized": 1, "denied": 1, "error": 1} {
		if got := testutil.ToFloat64(h.m.Auth.WithLabelValues("GET /simple", "simple", result)); got != want {
			t.Errorf("turnout_auth_total{route=GET /simple, result=%s} %v, want %v", result, got, want)
		}
	}
}

// TestLambdaAuthorizerPolicy: a 2.0 authorizer answering IAM policies. A
// policy allowing GET only lets GET through and denies POST for the same
// token, from one invocation: the cached policy is matched against each
// request's ARN. The context reaches the function as with simple responses.
func TestLambdaAuthorizerPolicy(t *testing.T) {
	h := newLambdaAuthHarness(t)
	code, body := h.get(t, "GET", "/policy/1", "Authorization", "get-dave")
	if code != 200 {
		t.Fatalf("get-dave, GET: %d %s", code, body)
	}
	if got, want := jsonOf(authorizerBlock(t, body)), `{"lambda":{"admin":false,"level":3,"user":"dave"}}`; got != want {
		t.Errorf("requestContext.authorizer %s, want %s", got, want)
	}
	if code, _ := h.get(t, "POST", "/policy/1", "Authorization", "get-dave"); code != 403 {
		t.Errorf("get-dave, POST: %d, want 403 (the policy allows GET only)", code)
	}
	if n := invocations(t, h.counts, "get-dave"); n != 1 {
		t.Errorf("the authorizer was invoked %d times, want 1: the policy is cached and matched per request", n)
	}
	if code, _ := h.get(t, "DELETE", "/policy/2", "Authorization", "allow-dave"); code != 200 {
		t.Errorf("allow-dave, DELETE: %d, want 200", code)
	}
	if code, _ := h.get(t, "GET", "/policy/2", "Authorization", "deny-dave"); code != 403 {
		t.Errorf("deny-dave: %d, want 403", code)
	}
}

// TestLambdaAuthorizerREST: a payload 1.0 REQUEST authorizer and a TOKEN
// authorizer in front of 1.0 routes. The event carries principalId,
// integrationLatency and the context's keys, their values as strings, as
// REST APIs deliver them; a TOKEN function failing with "Unauthorized" is
// 401.
func TestLambdaAuthorizerREST(t *testing.T) {
	h := newLambdaAuthHarness(t)
	for _, tc := range []struct{ path, header, token, user string }{
		{"/rest", "Authorization", "allow-erin", "erin"},
		{"/token", "X-Token", "allow-fay", "fay"},
	} {
		code, body := h.get(t, "GET", tc.path, tc.header, tc.token)
		if code != 200 {
			t.Fatalf("%s %s: %d %s", tc.path, tc.token, code, body)
		}
		a := authorizerBlock(t, body)
		if _, ok := a["integrationLatency"].(float64); !ok {
			t.Errorf("%s: integrationLatency %v, want a number", tc.path, a["integrationLatency"])
		}
		delete(a, "integrationLatency")
		if got, want := jsonOf(a), `{"admin":"true","level":"3","principalId":"`+tc.user+`","user":"`+tc.user+`"}`; got != want {
			t.Errorf("%s: requestContext.authorizer %s, want %s", tc.path, got, want)
		}
	}
	if code, _ := h.get(t, "GET", "/token", "X-Token", "unauthorized"); code != 401 {
		t.Errorf("TOKEN, unauthorized: %d, want 401", code)
	}
	if code, _ := h.get(t, "GET", "/token", "X-Token", "deny-gil"); code != 403 {
		t.Errorf("TOKEN, deny-gil: %d, want 403", code)
	}
	if code, _ := h.get(t, "GET", "/token", "Authorization", "allow-fay"); code != 401 {
		t.Errorf("TOKEN without its header: %d, want 401", code)
	}
	if code, _ := h.get(t, "GET", "/rest", "Authorization", "unauthorized"); code != 500 {
		t.Errorf("REQUEST, unauthorized: %d, want 500 (the convention is TOKEN's)", code)
	}
}

// TestLambdaAuthorizerFailures: an authorizer that crashes, exits or
// outlives its timeout is 500, never an allow, and the next request is
// served by a fresh instance. Without a cache (result_ttl 0s) every
// request invokes the function.
func TestLambdaAuthorizerFailures(t *testing.T) {
	h := newLambdaAuthHarness(t)
	for _, tok := range []string{"crash", "exit"} {
		if code, body := h.get(t, "GET", "/nocache", "Authorization", tok); code != 500 || body != `{"message":"Internal Server Error"}` {
			t.Errorf("%s: %d %s, want 500", tok, code, body)
		}
		if code, _ := h.get(t, "GET", "/nocache", "Authorization", "allow-hal"); code != 200 {
			t.Errorf("allow-hal after %s: %d, want 200", tok, code)
		}
	}
	if n := invocations(t, h.counts, "allow-hal"); n != 2 {
		t.Errorf("result_ttl 0s: allow-hal twice invoked the authorizer %d times, want 2", n)
	}
	if code, _ := h.get(t, "GET", "/quick", "Authorization", "sleep-2000"); code != 500 {
		t.Errorf("an authorizer past its 300ms timeout: %d, want 500", code)
	}
	// The status names the failure until the next invocation succeeds.
	st := authorizerStatusOf(t, h.gw, "quick")
	if st.Kind != "lambda" || st.Function == "" || !strings.Contains(st.LastError, "did not answer within") {
		t.Errorf("status after a timeout: %+v", st)
	}
	if code, _ := h.get(t, "GET", "/quick", "Authorization", "allow-ida"); code != 200 {
		t.Errorf("allow-ida after a timeout: %d, want 200", code)
	}
	if got := testutil.ToFloat64(h.m.Auth.WithLabelValues("GET /quick", "quick", "error")); got != 1 {
		t.Errorf("turnout_auth_total{route=GET /quick, result=error} %v, want 1", got)
	}
	if st := authorizerStatusOf(t, h.gw, "quick"); st.LastError != "" || st.Cached != 0 || !slices.Contains(st.Routes, "GET /quick") {
		t.Errorf("status after a success: %+v; want no error, no cache (result_ttl 0s), route GET /quick", st)
	}
}

// authorizerStatusOf returns the status of the authorizer named name.
func authorizerStatusOf(t *testing.T, gw *Gateway, name string) authz.Status {
	t.Helper()
	for _, a := range gw.Status().Authorizers {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no authorizer %s in the status", name)
	return authz.Status{}
}

// TestLambdaAuthorizerIdentitySources: two identity sources, a query
// parameter and a header: both must be there, and the pair keys the cache.
func TestLambdaAuthorizerIdentitySources(t *testing.T) {
	h := newLambdaAuthHarness(t)
	if code, _ := h.get(t, "GET", "/query?token=allow-jo", "", ""); code != 401 {
		t.Errorf("without X-Tenant: %d, want 401", code)
	}
	if code, _ := h.get(t, "GET", "/query", "X-Tenant", "a"); code != 401 {
		t.Errorf("without ?token: %d, want 401", code)
	}
	for _, tenant := range []string{"a", "a", "b"} {
		if code, _ := h.get(t, "GET", "/query?token=allow-jo", "X-Tenant", tenant); code != 200 {
			t.Errorf("tenant %s: %d, want 200", tenant, code)
		}
	}
	if n := invocations(t, h.simple, "allow-jo"); n != 2 {
		t.Errorf("three requests with two tenants invoked the authorizer %d times, want 2", n)
	}
}

// accessLog returns the access log's records for path, waiting for n.
func (h *lambdaAuthHarness) accessLog(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	var recs []map[string]any
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("%d access-log records for %s", n, path), func() bool {
		h.logMu.Lock()
		defer h.logMu.Unlock()
		recs = nil
		for _, line := range strings.Split(strings.TrimSpace(h.log.String()), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["path"] == path {
				recs = append(recs, rec)
			}
		}
		return len(recs) >= n
	})
	return recs
}

// TestLambdaAuthorizerAccessLog: the access log names the authorizer, its
// result, the principalId as subject and whether the answer was cached, and
// a failure's cause; never the token.
func TestLambdaAuthorizerAccessLog(t *testing.T) {
	h := newLambdaAuthHarness(t)
	for range 2 {
		if code, _ := h.get(t, "GET", "/policy/log", "Authorization", "allow-kim"); code != 200 {
			t.Fatalf("allow-kim: %d", code)
		}
	}
	recs := h.accessLog(t, "/policy/log", 2)
	for i, cached := range []bool{false, true} {
		r := recs[i]
		if r["authorizer"] != "policy" || r["auth"] != "allowed" || r["subject"] != "kim" || r["auth_cached"] != cached {
			t.Errorf("record %d: %v; want authorizer policy, auth allowed, subject kim, auth_cached %v", i, r, cached)
		}
	}
	if code, _ := h.get(t, "GET", "/nocache", "Authorization", "garbage"); code != 500 {
		t.Fatalf("garbage: %d", code)
	}
	r := h.accessLog(t, "/nocache", 1)[0]
	if msg, _ := r["error"].(string); r["auth"] != "error" || r["reason"] != "authorizer_error" || !strings.Contains(msg, "the authorizer failed: function authz answered") {
		t.Errorf("a failure's record: %v", r)
	}
	h.logMu.Lock()
	defer h.logMu.Unlock()
	if strings.Contains(h.log.String(), "allow-kim") {
		t.Errorf("the access log holds the token:\n%s", h.log.String())
	}
}
