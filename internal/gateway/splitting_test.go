package gateway

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/testkit"
)

// TestResponseSplitting has an origin (raw bytes) and a real function process
// (examples/functions/splitter, an unmodified aws-lambda-go binary) answer
// with header values that carry CR, LF, NUL or a fold, and checks on the raw
// bytes the client receives that no injected "Set-Cookie: evil" ever appears
// as a header line. The documented outcome: an origin header value with a
// bare CR or NUL is dropped (the rest of the response is served); a head
// that a bare LF or a fold would split is refused with 502; a function
// response with any such header or cookie is malformed, so 502.
func TestResponseSplitting(t *testing.T) {
	bin := filepath.Join(testkit.BuildFunctions(t, "splitter"), "splitter")

	origins := map[string]*rawOrigin{}
	originCases := []struct{ name, head string }{
		{"bare CR", "HTTP/1.1 200 OK\r\nX-Split: a\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"},
		{"bare LF", "HTTP/1.1 200 OK\r\nX-Split: a\nSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"},
		{"NUL", "HTTP/1.1 200 OK\r\nX-Split: a\x00Set-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-Split: a\r\n Set-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"},
		{"CR LF CR", "HTTP/1.1 200 OK\r\nX-Split: a\r\n\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"},
		{"bare CR in name", "HTTP/1.1 200 OK\r\nX-Split\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"},
		{"clean", "HTTP/1.1 200 OK\r\nX-Split: clean\r\nContent-Length: 2\r\n\r\nok"},
	}
	var yaml strings.Builder
	yaml.WriteString("origins:\n")
	for i, oc := range originCases {
		o := newRawOrigin(t, oc.head)
		origins[oc.name] = o
		fmt.Fprintf(&yaml, "  o%d: {url: %s}\n", i, o.url())
	}
	fmt.Fprintf(&yaml, "functions:\n  splitter: {handler: %s, timeout: 10s}\n  splitter1: {handler: %s, timeout: 10s}\nroutes:\n", bin, bin)
	for i := range originCases {
		fmt.Fprintf(&yaml, "  - {match: /o%d, origin: o%d}\n", i, i)
	}
	yaml.WriteString("  - {match: GET /fn, function: splitter}\n  - {match: GET /fn1, function: splitter1, payload: \"1.0\"}\n")

	host, err := fnhost.New(fnhost.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	gw := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Functions: &invoke.Router{Hosted: host}})
	h := &harness{gw: gw}
	h.apply(t, 1, yaml.String())
	t.Cleanup(func() { gw.Close() })
	addr := serveEdge(t, gw)

	check := func(t *testing.T, path string, want ...int) {
		t.Helper()
		resp, _ := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 15*time.Second)
		head, _, found := strings.Cut(resp, "\r\n\r\n")
		if !found {
			t.Fatalf("no complete response head: %q", resp)
		}
		t.Logf("client got head %q", head)
		for _, line := range strings.Split(head, "\r\n") {
			// Any line (whatever a client takes for a line end) that starts
			// with the injected field is a split response.
			for _, l := range strings.FieldsFunc(line, func(r rune) bool { return r == '\r' || r == '\n' }) {
				if strings.HasPrefix(strings.ToLower(strings.TrimLeft(l, " \t")), "set-cookie: evil") {
					t.Fatalf("client received the injected header line %q in:\n%q", l, head)
				}
			}
		}
		if strings.ContainsAny(head, "\x00") || strings.Count(head, "\r") != strings.Count(head, "\r\n") || strings.Count(head, "\n") != strings.Count(head, "\r\n") {
			t.Fatalf("head carries a bare CR, LF or NUL: %q", head)
		}
		if strings.Contains(strings.ToLower(head), "evil") {
			t.Fatalf("injected text reached the client's head: %q", head)
		}
		code := status(resp)
		for _, w := range want {
			if code == w {
				return
			}
		}
		t.Fatalf("status %d, want one of %v: %q", code, want, resp)
	}

	for i, oc := range originCases {
		t.Run("origin "+oc.name, func(t *testing.T) {
			want := []int{200, 502}
			if oc.name == "clean" {
				want = []int{200}
			}
			check(t, fmt.Sprintf("/o%d", i), want...)
		})
	}
	for _, mode := range []string{"header-crlf", "header-lf", "header-cr", "header-nul", "cookie-crlf", "name-crlf", "clean"} {
		t.Run("function "+mode, func(t *testing.T) {
			want := 502
			if mode == "clean" {
				want = 200
			}
			check(t, "/fn?mode="+mode, want)
		})
	}
	for _, mode := range []string{"header-crlf", "multi-crlf", "clean"} {
		t.Run("function 1.0 "+mode, func(t *testing.T) {
			want := 502
			if mode == "clean" {
				want = 200
			}
			check(t, "/fn1?mode="+mode, want)
		})
	}

	// The clean answers did come through, so the checks above saw real
	// responses, not an empty pipe.
	resp, _ := rawExchange(t, addr, "GET /fn?mode=clean HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 15*time.Second)
	if !strings.Contains(resp, "X-Split: clean") || !bytes.HasSuffix([]byte(resp), []byte("split")) {
		t.Fatalf("clean function answer lost its header or body: %q", resp)
	}
}
