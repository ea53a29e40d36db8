package invoke

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzInvokeRequest sends arbitrary Invoke API requests (path, Qualifier,
// invocation and log type headers, payload) to the server. It must never
// panic, every refusal must be a Lambda-shaped JSON error, and the Invoker
// only ever sees a valid function name and qualifier.
func FuzzInvokeRequest(f *testing.F) {
	f.Add("echo", "", "", "", `{"a":1}`)
	f.Add("arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho%3Aprod", "", "RequestResponse", "Tail", `{}`)
	f.Add("echo", "$LATEST", "DryRun", "None", ``)
	f.Add("echo%3Av1", "v2", "Event", "", `null`)
	f.Add("%zz", "", "", "", ``)
	f.Add("fail", "", "RequestResponse", "Tail", `not json`)
	f.Add("..%2Fetc", "", "", "", ``)
	inv := newFakeInvoker()
	// "block" and "async" wait on the test; the rest answer at once.
	safe := []string{"echo", "fail", "timeout", "throttled", "gone", "toolarge", "invalid", "bigresp", "initfail", "broken", "chatty"}
	h := NewServer(ServerOptions{Invoker: inv, Functions: func() []string { return safe }, Logger: slog.New(slog.DiscardHandler), MaxRequestBytes: 1 << 10})
	f.Fuzz(func(t *testing.T, name, qualifier, invType, logType, payload string) {
		if strings.ContainsAny(name, "?#") || strings.ContainsAny(invType+logType, "\r\n\x00") {
			return // not a path segment; not a header value
		}
		target := invocationsPrefix + name + "/invocations"
		if qualifier != "" {
			target += "?Qualifier=" + qualifier
		}
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/", strings.NewReader(payload))
		u, err := req.URL.Parse(target)
		if err != nil {
			return
		}
		req.URL, req.RequestURI = u, target
		if invType != "" {
			req.Header.Set("X-Amz-Invocation-Type", invType)
		}
		if logType != "" {
			req.Header.Set("X-Amz-Log-Type", logType)
		}
		inv.mu.Lock()
		before := len(inv.reqs)
		inv.mu.Unlock()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 400 {
			var e struct{ Type, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Header().Get("X-Amzn-ErrorType") == "" && e.Type == "" {
				t.Fatalf("status %d without a Lambda error document: %q", w.Code, w.Body.String())
			}
		}
		inv.mu.Lock()
		seen := append([]Request(nil), inv.reqs[before:]...)
		inv.mu.Unlock()
		for _, r := range seen {
			if !validName(r.Function, false) || r.Qualifier != "" && !validName(r.Qualifier, true) {
				t.Fatalf("the invoker got function %q qualifier %q", r.Function, r.Qualifier)
			}
		}
	})
}

// FuzzParseFunctionName: an accepted name is valid, and writing it back as
// NAME[:QUALIFIER] parses to the same thing.
func FuzzParseFunctionName(f *testing.F) {
	for _, s := range []string{"echo", "echo:prod", "echo:$LATEST", "123456789012:function:echo", "arn:aws:lambda:us-east-1:123456789012:function:echo:7", "a:b:c", ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, q, err := ParseFunctionName(s)
		if err != nil {
			return
		}
		if !validName(name, false) || q != "" && !validName(q, true) {
			t.Fatalf("%q: accepted name %q qualifier %q", s, name, q)
		}
		back := name
		if q != "" {
			back += ":" + q
		}
		n2, q2, err := ParseFunctionName(back)
		if err != nil || n2 != name || q2 != q {
			t.Fatalf("%q → %q %q → %q → %q %q %v", s, name, q, back, n2, q2, err)
		}
	})
}
