package invoke

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/turnout/turnout/internal/invoke/invoketest"
	"github.com/turnout/turnout/internal/testkit"
)

// fakeInvoker behaves by function name; it records every request.
type fakeInvoker struct {
	mu      sync.Mutex
	reqs    []Request
	async   chan Request  // receives requests to "async"
	release chan struct{} // "block" waits for it
}

func newFakeInvoker() *fakeInvoker {
	return &fakeInvoker{async: make(chan Request, 8), release: make(chan struct{})}
}

var fakeFunctions = []string{"echo", "fail", "timeout", "throttled", "gone", "toolarge", "invalid", "bigresp", "initfail", "broken", "async", "block", "chatty"}

func (f *fakeInvoker) Invoke(ctx context.Context, req Request) (Response, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	version := req.Qualifier
	if version == "" {
		version = "$LATEST"
	}
	switch req.Function {
	case "echo":
		return Response{Payload: req.Payload, LogTail: "START\nhello from echo\nEND\n", ExecutedVersion: version}, nil
	case "chatty":
		return Response{Payload: []byte(`{}`), LogTail: strings.Repeat("a", 1000) + strings.Repeat("b", 4096)}, nil
	case "fail":
		return Response{Payload: []byte(`{"errorType":"Oops","errorMessage":"boom"}`), FunctionError: "Handled", LogTail: "oops\n"}, nil
	case "timeout":
		return Response{Payload: []byte(`{"errorType":"Sandbox.Timedout","errorMessage":"2026-01-01T00:00:00Z abc Task timed out after 1.00 seconds"}`), FunctionError: "Unhandled", TimedOut: true}, nil
	case "throttled":
		return Response{}, &Error{Kind: KindThrottled, Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", Msg: "Rate Exceeded."}
	case "gone":
		return Response{}, &Error{Kind: KindNotFound, Msg: "Function not found: gone"}
	case "toolarge":
		return Response{}, &Error{Kind: KindTooLarge, Msg: "too large"}
	case "invalid":
		return Response{}, &Error{Kind: KindInvalidRequest, Msg: "not json"}
	case "bigresp":
		return Response{}, &Error{Kind: KindResponseTooLarge, Msg: "response is 7000000 bytes, over 6291456"}
	case "initfail":
		return Response{}, &Error{Kind: KindInitFailed, Msg: "init exited with status 1"}
	case "broken":
		return Response{}, errors.New("instance died")
	case "async":
		f.async <- req
		return Response{Payload: []byte(`null`)}, nil
	case "block":
		select {
		case <-f.release:
		case <-ctx.Done():
		}
		return Response{Payload: []byte(`null`)}, nil
	}
	return Response{}, &Error{Kind: KindNotFound, Msg: "Function not found: " + req.Function}
}

func (f *fakeInvoker) last() Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func startServer(t *testing.T, opts ServerOptions) (*fakeInvoker, *httptest.Server) {
	t.Helper()
	inv := newFakeInvoker()
	opts.Invoker = inv
	if opts.Functions == nil {
		opts.Functions = func() []string { return fakeFunctions }
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(NewServer(opts))
	t.Cleanup(srv.Close)
	return inv, srv
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestServerRequestResponse(t *testing.T) {
	inv, srv := startServer(t, ServerOptions{})
	c, ctx := invoketest.Client(srv.URL), testCtx(t)

	out, err := c.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:  aws.String("echo"),
		Payload:       []byte(`{"id":[1,2],"q":"a;b"}`),
		LogType:       types.LogTypeTail,
		ClientContext: aws.String("eyJjdXN0b20iOnt9fQ=="),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || string(out.Payload) != `{"id":[1,2],"q":"a;b"}` || out.FunctionError != nil {
		t.Fatalf("got status %d payload %s function error %v", out.StatusCode, out.Payload, out.FunctionError)
	}
	if aws.ToString(out.ExecutedVersion) != "$LATEST" {
		t.Errorf("ExecutedVersion = %q", aws.ToString(out.ExecutedVersion))
	}
	tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil || string(tail) != "START\nhello from echo\nEND\n" {
		t.Errorf("LogResult = %q (%v)", tail, err)
	}
	req := inv.last()
	if !req.LogTail || req.ClientContext != "eyJjdXN0b20iOnt9fQ==" || req.RequestID == "" || req.Function != "echo" {
		t.Errorf("invoker got %+v", req)
	}
	if id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); id != req.RequestID {
		t.Errorf("SDK request id %q, invoker got %q", id, req.RequestID)
	}

	// No payload: the function gets {}; no LogType: no log.
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo")})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Payload) != "{}" || out.LogResult != nil || inv.last().LogTail {
		t.Errorf("empty invoke: payload %s log %v", out.Payload, out.LogResult)
	}

	// The log tail is the last 4 KB.
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("chatty"), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	tail, _ = base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if string(tail) != strings.Repeat("b", 4096) {
		t.Errorf("chatty log tail: %d bytes", len(tail))
	}
}

func TestServerFunctionError(t *testing.T) {
	_, srv := startServer(t, ServerOptions{})
	c, ctx := invoketest.Client(srv.URL), testCtx(t)
	for _, tc := range []struct{ fn, fe, payload string }{
		{"fail", "Handled", `{"errorType":"Oops","errorMessage":"boom"}`},
		{"timeout", "Unhandled", `Task timed out after 1.00 seconds`},
		{"bigresp", "Unhandled", `"errorType":"Function.ResponseSizeTooLarge"`},
	} {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(tc.fn)})
		if err != nil {
			t.Fatalf("%s: %v", tc.fn, err)
		}
		if out.StatusCode != 200 || aws.ToString(out.FunctionError) != tc.fe || !strings.Contains(string(out.Payload), tc.payload) {
			t.Errorf("%s: status %d FunctionError %q payload %s", tc.fn, out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
		}
	}
}

func TestServerNamesAndQualifiers(t *testing.T) {
	inv, srv := startServer(t, ServerOptions{})
	c, ctx := invoketest.Client(srv.URL), testCtx(t)
	for _, tc := range []struct {
		name, qualifier string
		wantQualifier   string
	}{
		{"echo", "", ""},
		{"echo:v2", "", "v2"},
		{"echo", "live", "live"},
		{"echo:$LATEST", "$LATEST", "$LATEST"},
		{"123456789012:function:echo", "", ""},
		{"123456789012:function:echo:7", "", "7"},
		{"arn:aws:lambda:us-east-1:123456789012:function:echo", "", ""},
		{"arn:aws:lambda:eu-west-1:123456789012:function:echo:prod", "", "prod"},
		{"arn:aws-cn:lambda:cn-north-1:123456789012:function:echo", "v1", "v1"},
	} {
		in := &lambda.InvokeInput{FunctionName: aws.String(tc.name), Payload: []byte(`1`)}
		if tc.qualifier != "" {
			in.Qualifier = aws.String(tc.qualifier)
		}
		out, err := c.Invoke(ctx, in)
		if err != nil {
			t.Errorf("%s (Qualifier %q): %v", tc.name, tc.qualifier, err)
			continue
		}
		req := inv.last()
		if req.Function != "echo" || req.Qualifier != tc.wantQualifier {
			t.Errorf("%s (Qualifier %q): invoker got function %q qualifier %q", tc.name, tc.qualifier, req.Function, req.Qualifier)
		}
		want := tc.wantQualifier
		if want == "" {
			want = "$LATEST"
		}
		if v := aws.ToString(out.ExecutedVersion); v != want {
			t.Errorf("%s: ExecutedVersion %q, want %q", tc.name, v, want)
		}
	}

	// Conflicting qualifiers and malformed names are refused.
	for _, tc := range []struct{ name, qualifier string }{
		{"echo:v2", "v3"},
		{"echo:a:b", ""},
		{"bad name", ""},
		{"arn:aws:lambda:us-east-1:123456789012:function:", ""},
	} {
		in := &lambda.InvokeInput{FunctionName: aws.String(tc.name)}
		if tc.qualifier != "" {
			in.Qualifier = aws.String(tc.qualifier)
		}
		_, err := c.Invoke(ctx, in)
		var ipv *types.InvalidParameterValueException
		if !errors.As(err, &ipv) {
			t.Errorf("%s (Qualifier %q): got %v, want InvalidParameterValueException", tc.name, tc.qualifier, err)
		}
	}
}

func TestServerErrors(t *testing.T) {
	_, srv := startServer(t, ServerOptions{MaxRequestBytes: 1024})
	c, ctx := invoketest.Client(srv.URL), testCtx(t)
	for _, tc := range []struct {
		fn      string
		payload string
		check   func(error) bool
		want    string
	}{
		{"ghost", "", func(err error) bool { var e *types.ResourceNotFoundException; return errors.As(err, &e) }, "ResourceNotFoundException (unknown to Functions)"},
		{"gone", "", func(err error) bool { var e *types.ResourceNotFoundException; return errors.As(err, &e) }, "ResourceNotFoundException (from the invoker)"},
		{"throttled", "", func(err error) bool {
			var e *types.TooManyRequestsException
			return errors.As(err, &e) && e.Reason == types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded &&
				aws.ToString(e.RetryAfterSeconds) == "1" && aws.ToString(e.Type) == "User" && e.ErrorMessage() == "Rate Exceeded."
		}, "TooManyRequestsException with Reason and Retry-After"},
		{"echo", `"` + strings.Repeat("x", 1100) + `"`, func(err error) bool { var e *types.RequestTooLargeException; return errors.As(err, &e) }, "RequestTooLargeException (body over the limit)"},
		{"toolarge", "", func(err error) bool { var e *types.RequestTooLargeException; return errors.As(err, &e) }, "RequestTooLargeException (from the invoker)"},
		{"echo", `{"a":`, func(err error) bool { var e *types.InvalidRequestContentException; return errors.As(err, &e) }, "InvalidRequestContentException (bad JSON)"},
		{"invalid", "", func(err error) bool { var e *types.InvalidRequestContentException; return errors.As(err, &e) }, "InvalidRequestContentException (from the invoker)"},
		{"initfail", "", func(err error) bool {
			var e *types.ResourceNotReadyException
			return errors.As(err, &e) && aws.ToString(e.Type) == "Service"
		}, "ResourceNotReadyException"},
		{"broken", "", func(err error) bool {
			var e *types.ServiceException
			return errors.As(err, &e) && strings.Contains(e.ErrorMessage(), "instance died")
		}, "ServiceException"},
	} {
		in := &lambda.InvokeInput{FunctionName: aws.String(tc.fn)}
		if tc.payload != "" {
			in.Payload = []byte(tc.payload)
		}
		_, err := c.Invoke(ctx, in)
		if !tc.check(err) {
			t.Errorf("%s: got %v (%T), want %s", tc.fn, err, errors.Unwrap(err), tc.want)
		}
	}
}

func TestServerEventAndDryRun(t *testing.T) {
	inv, srv := startServer(t, ServerOptions{MaxAsyncInvocations: 1})
	c, ctx := invoketest.Client(srv.URL), testCtx(t)

	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("async"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"k":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Errorf("Event: status %d payload %q", out.StatusCode, out.Payload)
	}
	select {
	case req := <-inv.async:
		if string(req.Payload) != `{"k":1}` {
			t.Errorf("async invoker got %s", req.Payload)
		}
	case <-ctx.Done():
		t.Fatal("Event invocation never ran")
	}

	// Over MaxAsyncInvocations: 429. The slot of "async" is freed just after
	// it sent its request, so wait for it.
	testkit.Eventually(t, time.Second, "condition", func() bool {
		out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("block"), InvocationType: types.InvocationTypeEvent})
		return err == nil
	})
	if out.StatusCode != 202 {
		t.Errorf("Event block: status %d", out.StatusCode)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("block"), InvocationType: types.InvocationTypeEvent})
	var tmr *types.TooManyRequestsException
	if !errors.As(err, &tmr) || tmr.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded {
		t.Errorf("second Event over the bound: got %v, want TooManyRequestsException", err)
	}
	close(inv.release)

	// Event for an unknown function: 404 at once.
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ghost"), InvocationType: types.InvocationTypeEvent})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("Event ghost: got %v", err)
	}

	// DryRun: 204 without invoking; 404 for an unknown function.
	inv.mu.Lock()
	n := len(inv.reqs)
	inv.mu.Unlock()
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || out.StatusCode != 204 {
		t.Errorf("DryRun: %v status %v", err, out)
	}
	inv.mu.Lock()
	if len(inv.reqs) != n {
		t.Errorf("DryRun invoked the function")
	}
	inv.mu.Unlock()
	if _, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ghost"), InvocationType: types.InvocationTypeDryRun}); !errors.As(err, &rnf) {
		t.Errorf("DryRun ghost: got %v", err)
	}
}

// TestServerWire checks what is not visible through the SDK: the error
// shape, 405, unknown paths.
func TestServerWire(t *testing.T) {
	_, srv := startServer(t, ServerOptions{})
	for _, tc := range []struct {
		method, path string
		header       map[string]string
		status       int
		errType      string
	}{
		{"GET", "/2015-03-31/functions/echo/invocations", nil, 405, "MethodNotAllowedException"},
		{"POST", "/2015-03-31/functions/ghost/invocations", nil, 404, "ResourceNotFoundException"},
		{"POST", "/2015-03-31/functions/echo/configuration", nil, 404, "UnknownOperationException"},
		{"POST", "/2015-03-31/functions/echo/invocations", map[string]string{"X-Amz-Invocation-Type": "Sometimes"}, 400, "InvalidParameterValueException"},
		{"POST", "/2015-03-31/functions/echo/invocations", map[string]string{"X-Amz-Log-Type": "All"}, 400, "InvalidParameterValueException"},
		{"POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho/invocations", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, 200, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{}`))
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("X-Amzn-RequestId") == "" {
			t.Errorf("%s %s: status %d request id %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("X-Amzn-RequestId"))
		}
		if tc.errType == "" {
			continue
		}
		var doc struct{ Type, Message string }
		if resp.Header.Get("X-Amzn-ErrorType") != tc.errType || json.Unmarshal(body, &doc) != nil || doc.Type != "User" || doc.Message == "" {
			t.Errorf("%s %s: X-Amzn-ErrorType %q body %s", tc.method, tc.path, resp.Header.Get("X-Amzn-ErrorType"), body)
		}
	}
}

func TestParseFunctionName(t *testing.T) {
	for _, tc := range []struct{ in, name, qualifier string }{
		{"f", "f", ""},
		{"my.fn_1-x", "my.fn_1-x", ""},
		{"f:1", "f", "1"},
		{"f:$LATEST", "f", "$LATEST"},
		{"123456789012:function:f:al", "f", "al"},
		{"arn:aws:lambda:us-east-1:123456789012:function:f", "f", ""},
		{"arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f:3", "f", "3"},
	} {
		name, q, err := ParseFunctionName(tc.in)
		if err != nil || name != tc.name || q != tc.qualifier {
			t.Errorf("ParseFunctionName(%q) = %q, %q, %v", tc.in, name, q, err)
		}
	}
	for _, in := range []string{"", ":", "f:", "f:a:b", "a b", "f:$NOPE", "arn:aws:lambda:r:a:function:f:q:x"} {
		if _, _, err := ParseFunctionName(in); err == nil {
			t.Errorf("ParseFunctionName(%q): no error", in)
		}
	}
}
