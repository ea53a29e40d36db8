package authz_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/turnout/turnout/internal/apigw"
	"github.com/turnout/turnout/internal/authz"
)

// fixedFunction is an authorizer function that answers every invocation
// with answer (failed: as a function error), counting invocations and
// keeping the last event.
type fixedFunction struct {
	mu     sync.Mutex
	answer string
	failed bool
	calls  atomic.Int64
	last   []byte
}

func (f *fixedFunction) invoke(_ context.Context, _ string, event []byte) ([]byte, bool, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = append([]byte(nil), event...)
	return []byte(f.answer), f.failed, nil
}

func (f *fixedFunction) set(answer string) {
	f.mu.Lock()
	f.answer = answer
	f.mu.Unlock()
}

func lambdaConfig(mut func(*authz.LambdaConfig)) authz.LambdaConfig {
	c := authz.LambdaConfig{Function: "check", Type: authz.LambdaRequest, PayloadFormatVersion: "2.0",
		IdentitySource: []string{authz.DefaultIdentitySource}, ResultTTL: authz.DefaultLambdaTTL, Timeout: time.Second}
	if mut != nil {
		mut(&c)
	}
	return c
}

func newLambda(t testing.TB, cfg authz.LambdaConfig, invoke authz.LambdaInvoker) *authz.Lambda {
	t.Helper()
	l, err := authz.NewLambda(cfg, invoke)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// check runs l on METHOD path with an Authorization header of token (none
// when "").
func check(l *authz.Lambda, method, path, token string) (authz.Result, error) {
	r := httptest.NewRequest(method, "http://api.example.com"+path, nil)
	if token != "" {
		r.Header.Set("Authorization", token)
	}
	return l.Check(context.Background(), r, &apigw.Info{Route: method + " /orders/{id}", RequestID: "req-1"})
}

// policy is an IAM policy response with statements.
func policy(statements ...string) string {
	return `{"principalId": "user-1", "policyDocument": {"Version": "2012-10-17", "Statement": [` + strings.Join(statements, ",") + `]}, "context": {"tier": "gold", "n": 7}}`
}

func stmt(effect, action, resource string) string {
	return fmt.Sprintf(`{"Effect": %q, "Action": %s, "Resource": %s}`, effect, action, resource)
}

const arnPrefix = "arn:aws:execute-api:local:anonymous:turnout/$default/"

// TestLambdaAnswers: how each answer decides a request, as API Gateway
// evaluates it: simple responses by isAuthorized; policies by IAM's rules
// (an Allow of execute-api:Invoke on the request's ARN, wildcards, an
// explicit Deny winning); anything that is not an answer is a failure.
func TestLambdaAnswers(t *testing.T) {
	allowAll := stmt("Allow", `"execute-api:Invoke"`, `"*"`)
	for _, tc := range []struct {
		name         string
		simple, flat bool
		answer       string
		method, path string
		want         error
	}{
		{"simple yes", true, false, `{"isAuthorized": true, "context": {"a": [1, 2]}}`, "GET", "/orders/1", nil},
		{"simple no", true, false, `{"isAuthorized": false}`, "GET", "/orders/1", authz.ErrDenied},
		{"simple without isAuthorized", true, false, `{"context": {}}`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"simple isAuthorized a string", true, false, `{"isAuthorized": "true"}`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"simple with a policy", true, false, policy(allowAll), "GET", "/orders/1", authz.ErrAuthorizerFailed},

		{"allow *", false, false, policy(allowAll), "GET", "/orders/1", nil},
		{"allow this ARN", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `"`+arnPrefix+`GET/orders/1"`)), "GET", "/orders/1", nil},
		{"allow another ARN", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `"`+arnPrefix+`GET/orders/2"`)), "GET", "/orders/1", authz.ErrDenied},
		{"allow GET/*, GET", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `"`+arnPrefix+`GET/*"`)), "GET", "/orders/1", nil},
		{"allow GET/*, POST", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `"`+arnPrefix+`GET/*"`)), "POST", "/orders/1", authz.ErrDenied},
		{"allow with ?", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `"arn:aws:execute-api:*:*:turnout/$default/GET/orders/?"`)), "GET", "/orders/1", nil},
		{"allow with ?, two characters", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `"arn:aws:execute-api:*:*:turnout/$default/GET/orders/?"`)), "GET", "/orders/12", authz.ErrDenied},
		{"a * in the path is no wildcard's end", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `"`+arnPrefix+`GET/*"`)), "GET", "/*/orders", nil},
		{"ARNs are case-sensitive", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `"`+arnPrefix+`get/*"`)), "GET", "/orders/1", authz.ErrDenied},
		{"resource list", false, false, policy(stmt("Allow", `"execute-api:Invoke"`, `["`+arnPrefix+`POST/*", "`+arnPrefix+`GET/orders/*"]`)), "GET", "/orders/1", nil},
		{"explicit deny wins", false, false, policy(allowAll, stmt("Deny", `"execute-api:Invoke"`, `"`+arnPrefix+`DELETE/*"`)), "DELETE", "/orders/1", authz.ErrDenied},
		{"deny elsewhere", false, false, policy(allowAll, stmt("Deny", `"execute-api:Invoke"`, `"`+arnPrefix+`DELETE/*"`)), "GET", "/orders/1", nil},
		{"deny only", false, false, policy(stmt("Deny", `"execute-api:Invoke"`, `"*"`)), "GET", "/orders/1", authz.ErrDenied},
		{"no statements", false, false, policy(), "GET", "/orders/1", authz.ErrDenied},
		{"action wildcard", false, false, policy(stmt("Allow", `"execute-api:*"`, `"*"`)), "GET", "/orders/1", nil},
		{"action case", false, false, policy(stmt("Allow", `"Execute-API:invoke"`, `"*"`)), "GET", "/orders/1", nil},
		{"another action", false, false, policy(stmt("Allow", `["s3:GetObject"]`, `"*"`)), "GET", "/orders/1", authz.ErrDenied},
		{"one statement, not a list", false, false, `{"principalId": "u", "policyDocument": {"Statement": ` + allowAll + `}}`, "GET", "/orders/1", nil},
		{"effect in lower case", false, false, policy(stmt("allow", `"execute-api:Invoke"`, `"*"`)), "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"condition", false, false, policy(`{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}`), "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"not resource", false, false, policy(`{"Effect": "Deny", "Action": "execute-api:Invoke", "NotResource": "x"}`, allowAll), "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"no action", false, false, policy(`{"Effect": "Allow", "Resource": "*"}`), "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"no policyDocument", false, false, `{"principalId": "u"}`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"no Statement", false, false, `{"principalId": "u", "policyDocument": {"Version": "2012-10-17"}}`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"principalId a number", false, false, `{"principalId": 7, "policyDocument": {"Statement": [` + allowAll + `]}}`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"a nested context, 2.0", false, false, `{"policyDocument": {"Statement": [` + allowAll + `]}, "context": {"o": {"a": 1}}}`, "GET", "/orders/1", nil},
		{"a nested context, REST", false, true, `{"policyDocument": {"Statement": [` + allowAll + `]}, "context": {"o": {"a": 1}}}`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"an array in the context, REST", false, true, `{"policyDocument": {"Statement": [` + allowAll + `]}, "context": {"o": [1]}}`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"a flat context, REST", false, true, policy(allowAll), "GET", "/orders/1", nil},

		{"null", false, false, `null`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"a string", false, false, `"Allow"`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"a list", true, false, `[{"isAuthorized": true}]`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"empty", true, false, ``, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"data after the object", true, false, `{"isAuthorized": false} {"isAuthorized": true}`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
		{"cut short", true, false, `{"isAuthorized": true`, "GET", "/orders/1", authz.ErrAuthorizerFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fixedFunction{answer: tc.answer}
			l := newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) {
				c.SimpleResponses = tc.simple
				if tc.flat {
					c.PayloadFormatVersion = "1.0"
				}
			}), f.invoke)
			res, err := check(l, tc.method, tc.path, "tok")
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			if err == nil && (!res.Lambda || res.Cached) {
				t.Errorf("result %+v: want Lambda, not Cached", res)
			}
		})
	}
}

// TestLambdaResult: what an allowed request carries: the principalId as
// Subject, the context with its numbers as written, the invocation's time.
func TestLambdaResult(t *testing.T) {
	f := &fixedFunction{answer: policy(stmt("Allow", `"execute-api:Invoke"`, `"*"`))}
	l := newLambda(t, lambdaConfig(nil), f.invoke)
	res, err := check(l, "GET", "/orders/1", "tok")
	if err != nil {
		t.Fatal(err)
	}
	if res.Subject != "user-1" || res.Context["tier"] != "gold" || res.Context["n"] != json.Number("7") || res.Latency <= 0 {
		t.Errorf("result %+v", res)
	}
	// Without the gateway's Info, the event is derived from the request.
	r := httptest.NewRequest("GET", "http://api.example.com/orders/1", nil)
	r.Header.Set("Authorization", "other")
	if _, err := l.Check(context.Background(), r, nil); err != nil {
		t.Errorf("Check without Info: %v", err)
	}
}

// TestLambdaEvents: the events the function gets, read with aws-lambda-go's
// own types as a function would.
func TestLambdaEvents(t *testing.T) {
	f := &fixedFunction{answer: `{"isAuthorized": true}`}
	r := httptest.NewRequest("GET", "http://api.example.com/orders/7?tenant=a&tenant=b", nil)
	r.Header.Set("Authorization", "Bearer t0k")
	r.Header.Set("X-Other", "o")
	in := &apigw.Info{Route: "GET /orders/{id}", RequestID: "req-9", PathParams: map[string]string{"id": "7"}}
	const arn = arnPrefix + "GET/orders/7"
	sources := []string{"$request.header.Authorization", "$request.querystring.tenant", "$context.httpMethod"}

	l := newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses, c.IdentitySource = true, sources }), f.invoke)
	if _, err := l.Check(context.Background(), r, in); err != nil {
		t.Fatal(err)
	}
	var v2 events.APIGatewayV2CustomAuthorizerV2Request
	if err := json.Unmarshal(f.last, &v2); err != nil {
		t.Fatal(err)
	}
	if v2.Version != "2.0" || v2.Type != "REQUEST" || v2.RouteArn != arn || strings.Join(v2.IdentitySource, "|") != "Bearer t0k|a,b|GET" ||
		v2.RouteKey != "GET /orders/{id}" || v2.RawPath != "/orders/7" || v2.RawQueryString != "tenant=a&tenant=b" ||
		v2.Headers["x-other"] != "o" || v2.QueryStringParameters["tenant"] != "a,b" || v2.PathParameters["id"] != "7" ||
		v2.RequestContext.RequestID != "req-9" || v2.RequestContext.HTTP.Method != "GET" {
		t.Errorf("2.0 event: %s", f.last)
	}

	f.set(policy(stmt("Allow", `"execute-api:Invoke"`, `"*"`)))
	l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.PayloadFormatVersion, c.IdentitySource = "1.0", sources }), f.invoke)
	if _, err := l.Check(context.Background(), r, in); err != nil {
		t.Fatal(err)
	}
	var v1 events.APIGatewayV2CustomAuthorizerV1Request
	var rest events.APIGatewayCustomAuthorizerRequestTypeRequest
	if err := json.Unmarshal(f.last, &v1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(f.last, &rest); err != nil {
		t.Fatal(err)
	}
	if v1.Version != "1.0" || v1.Type != "REQUEST" || v1.MethodArn != arn || v1.IdentitySource != "Bearer t0k,a,b,GET" || v1.AuthorizationToken != v1.IdentitySource ||
		v1.Resource != "/orders/{id}" || v1.Path != "/orders/7" || v1.HTTPMethod != "GET" || v1.PathParameters["id"] != "7" || v1.RequestContext.RequestID != "req-9" {
		t.Errorf("1.0 event as HTTP APIs send it: %s", f.last)
	}
	if rest.MethodArn != arn || rest.MultiValueHeaders["X-Other"][0] != "o" || strings.Join(rest.MultiValueQueryStringParameters["tenant"], ",") != "a,b" {
		t.Errorf("1.0 event as REST APIs send it: %s", f.last)
	}

	l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.Type, c.PayloadFormatVersion = authz.LambdaToken, "" }), f.invoke)
	if _, err := l.Check(context.Background(), r, in); err != nil {
		t.Fatal(err)
	}
	var tok events.APIGatewayCustomAuthorizerRequest
	if err := json.Unmarshal(f.last, &tok); err != nil {
		t.Fatal(err)
	}
	if tok.Type != "TOKEN" || tok.AuthorizationToken != "Bearer t0k" || tok.MethodArn != arn {
		t.Errorf("TOKEN event: %s", f.last)
	}
}

// TestLambdaFailures: a missing identity source is 401 without invoking;
// a function error is 500, except a TOKEN function's "Unauthorized",
// which is 401; a function past the timeout is 500; none is cached.
func TestLambdaFailures(t *testing.T) {
	f := &fixedFunction{answer: `{"isAuthorized": true}`}
	l := newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses = true }), f.invoke)
	if _, err := check(l, "GET", "/orders/1", ""); !errors.Is(err, authz.ErrNoToken) || f.calls.Load() != 0 {
		t.Errorf("no identity: %v after %d invocations, want ErrNoToken without one", err, f.calls.Load())
	}

	failing := &fixedFunction{answer: `{"errorMessage": "Unauthorized", "errorType": "errorString"}`, failed: true}
	l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses = true }), failing.invoke)
	for range 2 {
		if _, err := check(l, "GET", "/orders/1", "tok"); !errors.Is(err, authz.ErrAuthorizerFailed) {
			t.Errorf("REQUEST, a function error: %v, want ErrAuthorizerFailed", err)
		}
	}
	if n := failing.calls.Load(); n != 2 {
		t.Errorf("two failures invoked %d times, want 2: failures are not cached", n)
	}
	l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.Type, c.PayloadFormatVersion = authz.LambdaToken, "" }), failing.invoke)
	if _, err := check(l, "GET", "/orders/1", "tok"); !errors.Is(err, authz.ErrLambdaUnauthorized) {
		t.Errorf("TOKEN, Unauthorized: %v, want ErrLambdaUnauthorized", err)
	}
	failing.set(`{"errorMessage": "boom"}`)
	if _, err := check(l, "GET", "/orders/1", "tok2"); !errors.Is(err, authz.ErrAuthorizerFailed) {
		t.Errorf("TOKEN, another error: %v, want ErrAuthorizerFailed", err)
	}

	slow := func(ctx context.Context, _ string, _ []byte) ([]byte, bool, error) {
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	for _, ttl := range []time.Duration{0, time.Minute} {
		l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.Timeout, c.ResultTTL = 20*time.Millisecond, ttl }), slow)
		if _, err := check(l, "GET", "/orders/1", "tok"); !errors.Is(err, authz.ErrAuthorizerFailed) || !strings.Contains(err.Error(), "did not answer within 20ms") {
			t.Errorf("ttl %s, past the timeout: %v, want ErrAuthorizerFailed", ttl, err)
		}
	}
	broken := func(context.Context, string, []byte) ([]byte, bool, error) {
		return nil, false, errors.New("the instance died")
	}
	l = newLambda(t, lambdaConfig(nil), broken)
	if _, err := check(l, "GET", "/orders/1", "tok"); !errors.Is(err, authz.ErrAuthorizerFailed) {
		t.Errorf("an invocation that did not complete: %v, want ErrAuthorizerFailed", err)
	}
}

// TestLambdaCache: answers are cached per identity value for the TTL;
// ResultTTL 0 invokes every time; concurrent misses for one value share an
// invocation; the cache holds at most LambdaCacheEntries values, the least
// recently used going first.
func TestLambdaCache(t *testing.T) {
	f := &fixedFunction{answer: `{"isAuthorized": true}`}
	l := newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses = true }), f.invoke)
	if res, err := check(l, "GET", "/orders/1", "a"); err != nil || res.Cached {
		t.Fatalf("first: %+v %v", res, err)
	}
	if res, err := check(l, "POST", "/orders/2", "a"); err != nil || !res.Cached || res.Latency != 0 {
		t.Fatalf("second: %+v %v, want Cached with no latency", res, err)
	}
	if _, err := check(l, "GET", "/orders/1", "b"); err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("a, a, b: %d invocations, want 2", n)
	}

	f = &fixedFunction{answer: `{"isAuthorized": false}`}
	l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses, c.ResultTTL = true, 0 }), f.invoke)
	for range 3 {
		if _, err := check(l, "GET", "/orders/1", "a"); !errors.Is(err, authz.ErrDenied) {
			t.Fatal(err)
		}
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("ResultTTL 0: %d invocations for 3 requests, want 3", n)
	}

	f = &fixedFunction{answer: `{"isAuthorized": true}`}
	l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses, c.ResultTTL = true, 10*time.Millisecond }), f.invoke)
	check(l, "GET", "/orders/1", "a")
	time.Sleep(30 * time.Millisecond)
	if res, _ := check(l, "GET", "/orders/1", "a"); res.Cached || f.calls.Load() != 2 {
		t.Errorf("after the TTL: cached %v after %d invocations, want a fresh one", res.Cached, f.calls.Load())
	}

	// Concurrent misses: the function holds its answer until released;
	// whoever arrives after it answered finds the cache.
	var calls atomic.Int64
	release := make(chan struct{})
	held := func(ctx context.Context, _ string, _ []byte) ([]byte, bool, error) {
		calls.Add(1)
		<-release
		return []byte(`{"isAuthorized": true}`), false, nil
	}
	l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses = true }), held)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := check(l, "GET", "/orders/1", "same")
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("20 concurrent requests with one token: %d invocations, want 1", n)
	}

	// The bound.
	f = &fixedFunction{answer: `{"isAuthorized": true}`}
	l = newLambda(t, lambdaConfig(func(c *authz.LambdaConfig) { c.SimpleResponses = true }), f.invoke)
	for i := range authz.LambdaCacheEntries + 1 {
		if _, err := check(l, "GET", "/orders/1", fmt.Sprint("tok-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if res, _ := check(l, "GET", "/orders/1", fmt.Sprint("tok-", authz.LambdaCacheEntries)); !res.Cached {
		t.Error("the newest token is not cached")
	}
	if res, _ := check(l, "GET", "/orders/1", "tok-0"); res.Cached {
		t.Errorf("the oldest of %d tokens is still cached; the bound is %d", authz.LambdaCacheEntries+1, authz.LambdaCacheEntries)
	}
}

// TestLambdaClose: Close ends an invocation under way, which fails.
func TestLambdaClose(t *testing.T) {
	started := make(chan struct{})
	held := func(ctx context.Context, _ string, _ []byte) ([]byte, bool, error) {
		close(started)
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	l, err := authz.NewLambda(lambdaConfig(func(c *authz.LambdaConfig) { c.Timeout = authz.MaxLambdaTimeout }), held)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := check(l, "GET", "/orders/1", "tok")
		done <- err
	}()
	<-started
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, authz.ErrAuthorizerFailed) {
			t.Errorf("Check after Close: %v, want ErrAuthorizerFailed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Check did not return after Close")
	}
	if _, err := check(l, "GET", "/orders/1", "other"); !errors.Is(err, authz.ErrAuthorizerFailed) {
		t.Errorf("Check after Close: %v, want ErrAuthorizerFailed", err)
	}
}

// TestLambdaWriteError: the answers a client gets, in API Gateway's words.
func TestLambdaWriteError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		body string
	}{
		{authz.ErrDenied, 403, `{"message":"Forbidden"}`},
		{fmt.Errorf("%w: function x failed", authz.ErrAuthorizerFailed), 500, `{"message":"Internal Server Error"}`},
		{authz.ErrLambdaUnauthorized, 401, `{"message":"Unauthorized"}`},
	} {
		w := httptest.NewRecorder()
		authz.WriteError(w, tc.err, nil)
		if w.Code != tc.code || w.Body.String() != tc.body {
			t.Errorf("%v: %d %s, want %d %s", tc.err, w.Code, w.Body, tc.code, tc.body)
		}
	}
}

// BenchmarkLambdaCheck: a Lambda authorizer's own cost per request, the
// function answering in-process: a cache hit (identity, key, lookup,
// policy match) and a miss (the event built and the answer parsed too).
func BenchmarkLambdaCheck(b *testing.B) {
	f := &fixedFunction{answer: policy(stmt("Allow", `"execute-api:Invoke"`, `"`+arnPrefix+`GET/*"`))}
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", time.Hour}, {"uncached", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			l := newLambda(b, lambdaConfig(func(c *authz.LambdaConfig) { c.ResultTTL = tc.ttl }), f.invoke)
			r := httptest.NewRequest("GET", "http://api.example.com/orders/1", nil)
			r.Header.Set("Authorization", "Bearer abc")
			in := &apigw.Info{Route: "GET /orders/{id}", RequestID: "req-1"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Check(context.Background(), r, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
