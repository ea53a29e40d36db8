package invoke

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
)

// isolateAWSEnv gives the default credential chain static keys and nothing
// else to find (no shared files, no instance metadata).
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "AKID",
		"AWS_SECRET_ACCESS_KEY":       "SECRET",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_LAMBDA":     "",
	} {
		t.Setenv(k, v)
	}
}

func newTestAWS(t *testing.T, endpoint string) *AWS {
	t.Helper()
	isolateAWSEnv(t)
	fn := func(name, function, region string) config.Function {
		return config.Function{Name: name, AWS: &config.AWSFunction{Function: function, Region: region, Endpoint: endpoint}}
	}
	fns := []config.Function{
		{Name: "hosted", Handler: "./bootstrap"},
		fn("echo", "echo", "us-east-1"),
		fn("echo-v2", "echo:v2", "us-east-1"),
		fn("echo-arn", "arn:aws:lambda:eu-west-1:123456789012:function:echo:prod", ""),
		fn("renamed", "fail", "us-east-1"),
	}
	for _, name := range []string{"timeout", "throttled", "gone", "toolarge", "invalid", "bigresp", "initfail", "broken", "block", "ghost"} {
		fns = append(fns, fn(name, name, "us-east-1"))
	}
	a, err := NewAWS(context.Background(), fns)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.fns) != len(fns)-1 {
		t.Fatalf("NewAWS kept %d functions, want %d", len(a.fns), len(fns)-1)
	}
	return a
}

func TestAWSRoundTrip(t *testing.T) {
	inv, srv := startServer(t, ServerOptions{MaxRequestBytes: 1024})
	a := newTestAWS(t, srv.URL)
	ctx := testCtx(t)

	resp, err := a.Invoke(ctx, Request{Function: "echo", Payload: []byte(`{"hello":"world"}`), LogTail: true, ClientContext: "e30=", TraceID: "Root=1-5759e988-bd862e3fe1be46a994272793"})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Payload) != `{"hello":"world"}` || resp.FunctionError != "" || resp.ExecutedVersion != "$LATEST" || resp.LogTail != "START\nhello from echo\nEND\n" {
		t.Errorf("echo: %+v", resp)
	}
	if got := inv.last(); got.ClientContext != "e30=" || got.TraceID != "Root=1-5759e988-bd862e3fe1be46a994272793" || !got.LogTail || got.Function != "echo" {
		t.Errorf("server's invoker got %+v", got)
	}
	resp, err = a.Invoke(ctx, Request{Function: "echo", Payload: []byte(`1`)})
	if err != nil || resp.LogTail != "" || inv.last().LogTail {
		t.Errorf("echo without log: %+v %v", resp, err)
	}

	// Qualifiers: from the config, overridden by the request.
	for _, tc := range []struct{ fn, qualifier, want string }{
		{"echo-v2", "", "v2"},
		{"echo-v2", "v3", "v3"},
		{"echo", "live", "live"},
		{"echo-arn", "", "prod"},
	} {
		resp, err := a.Invoke(ctx, Request{Function: tc.fn, Qualifier: tc.qualifier, Payload: []byte(`{}`)})
		if err != nil {
			t.Errorf("%s: %v", tc.fn, err)
			continue
		}
		if got := inv.last(); got.Function != "echo" || got.Qualifier != tc.want || resp.ExecutedVersion != tc.want {
			t.Errorf("%s (qualifier %q): server got %q:%q, executed %q; want echo:%s", tc.fn, tc.qualifier, got.Function, got.Qualifier, resp.ExecutedVersion, tc.want)
		}
	}

	// Function errors are responses.
	resp, err = a.Invoke(ctx, Request{Function: "renamed", Payload: []byte(`{}`), LogTail: true})
	if err != nil || resp.FunctionError != "Handled" || !strings.Contains(string(resp.Payload), `"boom"`) || resp.LogTail != "oops\n" {
		t.Errorf("function error: %+v %v", resp, err)
	}
	resp, err = a.Invoke(ctx, Request{Function: "timeout", Payload: []byte(`{}`)})
	if err != nil || resp.FunctionError != "Unhandled" || !resp.TimedOut {
		t.Errorf("timeout: %+v %v", resp, err)
	}
}

func TestAWSErrors(t *testing.T) {
	_, srv := startServer(t, ServerOptions{MaxRequestBytes: 1024})
	a := newTestAWS(t, srv.URL)
	ctx := testCtx(t)
	for _, tc := range []struct {
		fn, payload string
		kind        ErrorKind
		reason      string
	}{
		{"not-in-config", `{}`, KindNotFound, ""},
		{"hosted", `{}`, KindNotFound, ""},
		{"ghost", `{}`, KindNotFound, ""},
		{"gone", `{}`, KindNotFound, ""},
		{"throttled", `{}`, KindThrottled, "ReservedFunctionConcurrentInvocationLimitExceeded"},
		{"echo", `"` + strings.Repeat("x", 2000) + `"`, KindTooLarge, ""},
		{"toolarge", `{}`, KindTooLarge, ""},
		{"echo", `{"a":`, KindInvalidRequest, ""},
		{"invalid", `{}`, KindInvalidRequest, ""},
		{"bigresp", `{}`, KindResponseTooLarge, ""},
		{"initfail", `{}`, KindInitFailed, ""},
		{"broken", `{}`, KindService, ""},
	} {
		_, err := a.Invoke(ctx, Request{Function: tc.fn, Payload: []byte(tc.payload)})
		var e *Error
		if !errors.As(err, &e) || e.Kind != tc.kind || e.Reason != tc.reason {
			t.Errorf("%s: got %v (kind %v), want kind %v reason %q", tc.fn, err, KindOf(err), tc.kind, tc.reason)
		}
	}

	// A deadline is a service error that still says what happened.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := a.Invoke(short, Request{Function: "block", Payload: []byte(`{}`)})
	if KindOf(err) != KindService || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: got %v", err)
	}
}

func TestNewAWSRegion(t *testing.T) {
	isolateAWSEnv(t)
	_, err := NewAWS(context.Background(), []config.Function{{Name: "f", AWS: &config.AWSFunction{Function: "f"}}})
	if err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("no region: got %v", err)
	}
	t.Setenv("AWS_REGION", "ap-south-1")
	if _, err := NewAWS(context.Background(), []config.Function{{Name: "f", AWS: &config.AWSFunction{Function: "f"}}}); err != nil {
		t.Errorf("region from env: %v", err)
	}
}

func TestSplitQualifier(t *testing.T) {
	for _, tc := range []struct{ in, fn, q string }{
		{"f", "f", ""},
		{"f:1", "f", "1"},
		{"123456789012:function:f", "123456789012:function:f", ""},
		{"123456789012:function:f:al", "123456789012:function:f", "al"},
		{"arn:aws:lambda:us-east-1:123456789012:function:f", "arn:aws:lambda:us-east-1:123456789012:function:f", ""},
		{"arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST", "arn:aws:lambda:us-east-1:123456789012:function:f", "$LATEST"},
	} {
		if fn, q := splitQualifier(tc.in); fn != tc.fn || q != tc.q {
			t.Errorf("splitQualifier(%q) = %q, %q", tc.in, fn, q)
		}
	}
}
