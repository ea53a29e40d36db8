package awsimport

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// globRegexp is the reference reading of a CloudFront pattern: "*" any
// run of characters, "?" one character, the rest literal, the whole path.
func globRegexp(g string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^`)
	for _, c := range []byte(g) {
		switch c {
		case '*':
			b.WriteString(`(?s:.*)`)
		case '?':
			b.WriteString(`(?s:.)`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		glob, path string
		want       bool
	}{
		{"/api/*", "/api/", true},
		{"/api/*", "/api/a/b/c", true}, // * spans "/"
		{"/api/*", "/api", false},
		{"/api/*", "/API/x", false}, // case-sensitive
		{"/api*", "/apiv2/x", true}, // * mid-segment
		{"/api*", "/api", true},
		{"/images/*.jpg", "/images/a/b.jpg", true},
		{"/images/*.jpg", "/images/a.jpeg", false},
		{"/images/*.jpg", "/images/.jpg", true},
		{"/v?/users", "/v1/users", true},
		{"/v?/users", "/v10/users", false}, // ? is one character
		{"/v?/users", "/v/users", false},
		{"/v?/users", "/v//users", true}, // ... any character
		{"/docs/", "/docs/", true},
		{"/docs/", "/docs", false},
		{"/*", "/", true},
		{"/a*b*c", "/abxbxc", true},
		{"/a*b*c", "/abxbx", false},
	} {
		if got := globMatch(tc.glob, tc.path); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.glob, tc.path, got, tc.want)
		}
		if got := globRegexp(tc.glob).MatchString(tc.path); got != tc.want {
			t.Errorf("reference(%q, %q) = %v, want %v: the table is wrong", tc.glob, tc.path, got, tc.want)
		}
	}
}

func FuzzGlobMatch(f *testing.F) {
	f.Add("/api/*", "/api/x")
	f.Add("/a*b?c*", "/aXbYcZ")
	f.Add("/images/*.jpg", "/images/a/b.jpg")
	f.Add("/v?/users", "/v1/users")
	f.Fuzz(func(t *testing.T, glob, path string) {
		if len(glob) > 64 || len(path) > 128 || !ascii(glob) || !ascii(path) {
			return // a path on the wire is ASCII: other bytes arrive percent-encoded
		}
		g := globPath(glob)
		want := globRegexp(g).MatchString(path)
		if got := globMatch(g, path); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, regexp says %v", g, path, got, want)
		}
		if got := globMatcher(g).accepts(path); got != want {
			t.Fatalf("automaton(%q, %q) = %v, regexp says %v", g, path, got, want)
		}
	})
}

// TestCloudFrontRouting is the table of request → target for CloudFront's
// path-pattern semantics (Source) and for the imported config (Turnout),
// on testdata/glob-semantics.json.
func TestCloudFrontRouting(t *testing.T) {
	res := importFile(t, "testdata/glob-semantics.json", Options{})
	tr := Turnout{C: res.Parsed}
	for _, tc := range []struct {
		method, path string
		source       string // target, or a status
		turnout      string
	}{
		// ? is exactly one character.
		{"GET", "/api/v1/status", "origin:api", "origin:api"},
		{"GET", "/api/v10/status", "origin:api", "origin:api"}, // falls to api/*
		{"POST", "/api/v1/status", "403", "origin:api"},        // api/v?/status allows GET, HEAD only: 403, no fall through
		{"POST", "/api/v10/status", "origin:api", "origin:api"},
		// First match wins: api/admin/* comes after api/* and is never reached.
		{"GET", "/api/admin/users", "origin:api", "origin:api"},
		{"DELETE", "/api/admin/users", "origin:api", "origin:api"},
		// /live vs live/*.
		{"GET", "/live", "origin:legacy", "origin:legacy"},
		{"GET", "/live/", "origin:live", "origin:live"},
		{"GET", "/live/a/b", "origin:live", "origin:live"},
		{"HEAD", "/live/a", "origin:live", "origin:live"},
		{"POST", "/live/a", "403", "origin:legacy"}, // turnout cannot answer 403: a MUST-WARN
		// Case-sensitive.
		{"GET", "/LIVE/a", "origin:legacy", "origin:legacy"},
		{"GET", "/Api/x", "origin:legacy", "origin:legacy"},
		// * inside a segment and across segments.
		{"GET", "/images/a.jpg", "origin:images", "origin:images"},
		{"GET", "/images/2024/a.jpg", "origin:images", "origin:images"},
		{"GET", "/images/a.png", "origin:legacy", "origin:images"}, // turnout takes all of /images/
		{"GET", "/thumb", "origin:images", "origin:images"},
		{"GET", "/thumb/x", "origin:images", "origin:images"},
		{"GET", "/thumbnails", "origin:images", "origin:legacy"}, // "/thumb*" mid-segment
		{"OPTIONS", "/thumb", "origin:images", "origin:images"},
		{"PUT", "/thumb", "403", "origin:legacy"},
		// A suffix pattern at the root has no turnout route.
		{"GET", "/site.css", "origin:images", "origin:legacy"},
		{"GET", "/live/site.css", "origin:live", "origin:live"}, // live/* comes first
		// Trailing slash: "docs/" is exactly /docs/.
		{"GET", "/docs/", "origin:live", "origin:live"},
		{"GET", "/docs", "origin:legacy", "origin:legacy"},
		{"GET", "/docs/x", "origin:legacy", "origin:legacy"},
		// The query string never takes part.
		{"GET", "/live/a?x=/api/", "origin:live", "origin:live"},
	} {
		out := Check(res.Setup.Source, tr, []Request{{tc.method, tc.path}})[0]
		if got := name(out.Source); got != tc.source {
			t.Errorf("%s %s: CloudFront → %s, want %s", tc.method, tc.path, out.Source, tc.source)
		}
		if got := name(out.Turnout); got != tc.turnout {
			t.Errorf("%s %s: turnout → %s, want %s", tc.method, tc.path, out.Turnout, tc.turnout)
		}
	}
}

func name(d Decision) string {
	if d.Target != "" {
		return d.Target
	}
	return strings.TrimSpace(strings.Split(d.String(), " ")[0])
}

func importFile(t testing.TB, file string, opt Options) *Result {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ImportCloudFront(file, data, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Setup.Placeholders) > 0 {
		t.Fatalf("placeholders without values: %v", res.Setup.Placeholders)
	}
	return res
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestAPIGatewayRouting is the table of request → target for API
// Gateway's path semantics (greedy variables never take their parent path;
// literal before {name} before {name+}; REST's 403 for a missing method;
// HTTP API's $default) and for the imported config.
func TestAPIGatewayRouting(t *testing.T) {
	for _, tc := range []struct {
		file         string
		set          map[string]string
		method, path string
		source       string
		turnout      string
	}{
		// REST (openapi3-rest.yaml): /users, /users/{id}, /users/me, /files/{path+} (ANY and GET).
		{"openapi3-rest.yaml", nil, "GET", "/users/me", "function:me", "function:me"},
		{"openapi3-rest.yaml", nil, "GET", "/users/42", "function:users-live", "function:users-live"},
		{"openapi3-rest.yaml", nil, "GET", "/users/42/x", "403", "404"},
		{"openapi3-rest.yaml", nil, "POST", "/users", "403", "404"},            // the resource lacks POST: 403, no fall through
		{"openapi3-rest.yaml", nil, "HEAD", "/users", "403", "function:users"}, // HEAD is a method of its own in API Gateway
		{"openapi3-rest.yaml", nil, "GET", "/files/a/b/c", "function:files-read", "function:files-read"},
		{"openapi3-rest.yaml", nil, "PUT", "/files/a/b", "function:files", "function:files"},
		{"openapi3-rest.yaml", nil, "GET", "/files", "403", "404"},
		{"openapi3-rest.yaml", nil, "GET", "/files/", "403", "function:files-read"}, // {path+} never takes its parent
		{"openapi3-rest.yaml", nil, "GET", "/Users/me", "403", "404"},
		// HTTP API (openapi3-http.json): method routes, ANY, greedy, $default.
		{"openapi3-http.json", nil, "GET", "/orders", "function:orders-list", "function:orders-list"},
		{"openapi3-http.json", nil, "POST", "/orders", "function:orders-create-live", "function:orders-create-live"},
		{"openapi3-http.json", nil, "DELETE", "/orders", "origin:monolith", "origin:monolith"}, // to $default
		{"openapi3-http.json", nil, "GET", "/orders/7", "function:orders-get", "function:orders-get"},
		{"openapi3-http.json", nil, "POST", "/legacy/a/b", "origin:monolith", "origin:monolith"},
		{"openapi3-http.json", nil, "GET", "/elsewhere", "origin:monolith", "origin:monolith"},
	} {
		data, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		set := map[string]string{"legacy": "http://10.0.0.5:8080", "stageVariables.alias": "live"}
		res, err := ImportAPIGateway(tc.file, data, APIOptions{Values: Values{Set: set}})
		if err != nil {
			t.Fatal(err)
		}
		out := Check(res.Setup.Source, Turnout{C: res.Parsed}, []Request{{tc.method, tc.path}})[0]
		if got := name(out.Source); got != tc.source {
			t.Errorf("%s: %s %s: API Gateway → %s, want %s", tc.file, tc.method, tc.path, out.Source, tc.source)
		}
		if got := name(out.Turnout); got != tc.turnout {
			t.Errorf("%s: %s %s: turnout → %s, want %s", tc.file, tc.method, tc.path, out.Turnout, tc.turnout)
		}
	}
}

// TestTranslate is docs/import.md's translation table.
func TestTranslate(t *testing.T) {
	for _, tc := range []struct {
		glob  string
		paths []string
		exact bool
	}{
		{"/health", []string{"/health"}, true},
		{"/docs/", []string{"/docs/{$}"}, true},
		{"/api/*", []string{"/api/"}, true},
		{"/*", []string{"/"}, true},
		{"/api*", []string{"/api", "/api/"}, false},
		{"/images/*.jpg", []string{"/images/"}, false},
		{"/api/v?/status", []string{"/api/"}, false},
		{"/*.css", nil, false},
		{"/img?.png", nil, false},
		{"/a//b", nil, false},
		{"/a/../b/*", nil, false},
	} {
		got := translate(tc.glob)
		if !slices.Equal(got.paths, tc.paths) || got.exact != tc.exact {
			t.Errorf("translate(%q) = %q exact %v, want %q exact %v", tc.glob, got.paths, got.exact, tc.paths, tc.exact)
		}
		if !got.exact && got.note == "" {
			t.Errorf("translate(%q): not exact, and no note says how", tc.glob)
		}
	}
}
