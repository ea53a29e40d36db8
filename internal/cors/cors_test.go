package cors

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// The tests judge a policy's answers the way a browser does: fetchPreflight
// and corsCheck follow the Fetch standard's algorithms
// (https://fetch.spec.whatwg.org/#cors-preflight-fetch, #cors-check) step
// by step, so an answer passes here when it would pass in a browser.

// corsCheck is Fetch's "CORS check" of a response's headers h for a request
// from origin, with credentials mode "include" when credentials.
func corsCheck(h http.Header, origin string, credentials bool) bool {
	v := h.Values("Access-Control-Allow-Origin")
	if len(v) != 1 {
		return false // "null" (absent) or a list: failure
	}
	if !credentials && v[0] == "*" {
		return true
	}
	if v[0] != origin {
		return false
	}
	if !credentials {
		return true
	}
	return h.Get("Access-Control-Allow-Credentials") == "true"
}

// fetchPreflight is Fetch's "CORS-preflight fetch" of a request with
// method and the CORS-unsafe request-header names unsafe: the preflight is
// sent to p (Preflight answers into a fresh header map, as the gateway does)
// and its answer checked. It reports whether the browser goes on to send
// the actual request.
func fetchPreflight(t *testing.T, p *Policy, origin, method string, unsafe []string, credentials bool) bool {
	t.Helper()
	r, _ := http.NewRequest(http.MethodOptions, "https://api.example.com/x", nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", method)
	if len(unsafe) > 0 {
		// Lower case, sorted, comma-separated without spaces, as Fetch says.
		names := make([]string, len(unsafe))
		for i, n := range unsafe {
			names[i] = strings.ToLower(n)
		}
		slices.Sort(names)
		r.Header.Set("Access-Control-Request-Headers", strings.Join(names, ","))
	}
	m, ok := IsPreflight(r)
	if !ok || m != method {
		t.Fatalf("IsPreflight(%v) = %q, %v", r.Header, m, ok)
	}
	h := http.Header{}
	err := p.Preflight(h, r, method)
	if err != nil {
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("refused preflight (%v) carries %s", err, k)
			}
		}
		return false
	}
	if !corsCheck(h, origin, credentials) {
		return false
	}
	methods := list(h.Values("Access-Control-Allow-Methods"))
	names := list(h.Values("Access-Control-Allow-Headers"))
	if len(methods) == 0 {
		methods = []string{method}
	}
	if !slices.Contains(methods, method) && !safelistedMethod(method) && (credentials || !slices.Contains(methods, "*")) {
		return false
	}
	for _, n := range unsafe {
		if strings.EqualFold(n, "Authorization") && !containsFold(names, n) {
			return false // a CORS non-wildcard request-header name
		}
		if !containsFold(names, n) && (credentials || !slices.Contains(names, "*")) {
			return false
		}
	}
	return true
}

func list(vs []string) []string {
	var out []string
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

func containsFold(vs []string, s string) bool {
	return slices.ContainsFunc(vs, func(v string) bool { return strings.EqualFold(v, s) })
}

func mustNew(t *testing.T, c Config) *Policy {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return p
}

// TestPreflightAgainstFetch: which preflights a browser passes, by policy.
func TestPreflightAgainstFetch(t *testing.T) {
	app := "https://app.example.com"
	exact := Config{AllowOrigins: []string{app, "http://127.0.0.1:5173"}, AllowMethods: []string{"PUT", "DELETE"},
		AllowHeaders: []string{"Content-Type", "X-Trace", "Authorization"}, MaxAge: 600}
	creds := exact
	creds.AllowCredentials = true
	star := Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}}
	starCreds := Config{AllowOrigins: []string{app, "https://*.example.org"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, AllowCredentials: true}
	for _, c := range []struct {
		name        string
		cfg         Config
		origin      string
		method      string
		headers     []string
		credentials bool
		want        bool
	}{
		{"listed origin and method", exact, app, "PUT", nil, false, true},
		{"listed headers, any case", exact, app, "PUT", []string{"content-type", "X-TRACE"}, false, true},
		{"authorization listed", exact, app, "DELETE", []string{"Authorization"}, false, true},
		{"second origin with port", exact, "http://127.0.0.1:5173", "PUT", nil, false, true},
		{"safelisted method needs no listing", exact, app, "POST", []string{"X-Trace"}, false, true},
		{"other origin", exact, "https://evil.example.com", "PUT", nil, false, false},
		{"origin differs by port", exact, "http://127.0.0.1:5174", "PUT", nil, false, false},
		{"origin differs by scheme", exact, "http://app.example.com", "PUT", nil, false, false},
		{"null origin", exact, "null", "PUT", nil, false, false},
		{"method not listed", exact, app, "PATCH", nil, false, false},
		{"method case matters", exact, app, "put", nil, false, false},
		{"header not listed", exact, app, "PUT", []string{"X-Other"}, false, false},
		{"credentials without allow_credentials", exact, app, "PUT", nil, true, false},
		{"credentials", creds, app, "PUT", []string{"X-Trace"}, true, true},
		{"star: any origin", star, "https://anyone.example", "PATCH", []string{"X-Anything"}, false, true},
		{"star: null origin", star, "null", "PUT", nil, false, true},
		{"star headers cover authorization too", star, app, "GET", []string{"Authorization", "X-A"}, false, true},
		{"star with credentials echoes", starCreds, app, "PATCH", []string{"Authorization", "X-A"}, true, true},
		{"wildcard subdomain", starCreds, "https://a.b.example.org", "PUT", nil, true, true},
		{"wildcard is not the domain itself", starCreds, "https://example.org", "PUT", nil, true, false},
		{"wildcard scheme", starCreds, "http://a.example.org", "PUT", nil, true, false},
		{"wildcard port", starCreds, "https://a.example.org:8443", "PUT", nil, true, false},
		{"wildcard suffix trick", starCreds, "https://a.evilexample.org", "PUT", nil, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustNew(t, c.cfg)
			if got := fetchPreflight(t, p, c.origin, c.method, c.headers, c.credentials); got != c.want {
				t.Errorf("browser sends the request: %v, want %v", got, c.want)
			}
		})
	}
}

// TestPreflightHeaders: what an allowed preflight's answer says exactly.
func TestPreflightHeaders(t *testing.T) {
	p := mustNew(t, Config{AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"PUT", "DELETE"},
		AllowHeaders: []string{"X-Trace", "Content-Type"}, ExposeHeaders: []string{"X-Total"}, MaxAge: 3600, AllowCredentials: true})
	r, _ := http.NewRequest(http.MethodOptions, "/x", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "PUT")
	r.Header.Set("Access-Control-Request-Headers", "x-trace")
	h := http.Header{"Vary": {"Accept-Encoding"}}
	if err := p.Preflight(h, r, "PUT"); err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Access-Control-Allow-Origin":      {"https://app.example.com"},
		"Access-Control-Allow-Credentials": {"true"},
		"Access-Control-Allow-Methods":     {"PUT, DELETE"},
		"Access-Control-Allow-Headers":     {"x-trace, content-type"},
		"Access-Control-Max-Age":           {"3600"},
		"Vary":                             {"Accept-Encoding", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
	}
	for k, v := range want {
		if !slices.Equal(h[k], v) {
			t.Errorf("%s: %q, want %q", k, h[k], v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("headers %v, want only %v", h, want)
	}

	// Refused: Vary still, nothing else.
	r.Header.Set("Origin", "https://other.example.com")
	h = http.Header{}
	if err := p.Preflight(h, r, "PUT"); err == nil || !strings.Contains(err.Error(), "origin https://other.example.com") {
		t.Errorf("refusal: %v", err)
	}
	if len(h) != 1 || h.Get("Vary") == "" {
		t.Errorf("refused preflight headers %v, want Vary only", h)
	}

	// "*" origins without credentials: the answer does not depend on Origin.
	p = mustNew(t, Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}})
	r.Header.Set("Access-Control-Request-Method", "PATCH")
	r.Header.Del("Access-Control-Request-Headers")
	h = http.Header{}
	if err := p.Preflight(h, r, "PATCH"); err != nil {
		t.Fatal(err)
	}
	if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Methods") != "PATCH" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("star answer %v", h)
	}
	if v := h.Get("Vary"); strings.Contains(v, "Origin,") || h.Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("star answer %v: no Vary: Origin, no Allow-Headers when none were asked", h)
	}
}

// TestIsPreflight: Fetch's CORS-preflight request is OPTIONS with Origin
// and Access-Control-Request-Method; anything else is an ordinary request.
func TestIsPreflight(t *testing.T) {
	for _, c := range []struct {
		method string
		h      http.Header
		want   bool
	}{
		{"OPTIONS", http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"PUT"}}, true},
		{"OPTIONS", http.Header{"Access-Control-Request-Method": {"PUT"}}, false},
		{"OPTIONS", http.Header{"Origin": {"https://a.example"}}, false},
		{"GET", http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"PUT"}}, false},
		{"OPTIONS", http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"P UT"}}, false},
		{"OPTIONS", http.Header{"Origin": {"https://a.example", "https://b.example"}, "Access-Control-Request-Method": {"PUT"}}, false},
	} {
		r := &http.Request{Method: c.method, Header: c.h}
		if _, got := IsPreflight(r); got != c.want {
			t.Errorf("IsPreflight(%s %v) = %v, want %v", c.method, c.h, got, c.want)
		}
	}
}

// TestDecorate: an actual response to an allowed origin passes the CORS
// check; to another it carries no CORS header; the backend's own CORS
// headers never survive; Vary: Origin is added, not substituted.
func TestDecorate(t *testing.T) {
	app := "https://app.example.com"
	p := mustNew(t, Config{AllowOrigins: []string{app}, ExposeHeaders: []string{"X-Total"}, AllowCredentials: true})
	backend := func() http.Header {
		return http.Header{"Content-Type": {"application/json"}, "Vary": {"Accept-Encoding"},
			"Access-Control-Allow-Origin": {"*"}, "Access-Control-Allow-Methods": {"GET"}, "Access-Control-Max-Age": {"9"}}
	}
	h := backend()
	p.Decorate(h, app)
	if !corsCheck(h, app, true) {
		t.Errorf("decorated response fails the CORS check: %v", h)
	}
	if h.Get("Access-Control-Expose-Headers") != "x-total" || h.Get("Access-Control-Allow-Methods") != "" || h.Get("Access-Control-Max-Age") != "" {
		t.Errorf("decorated %v", h)
	}
	if !slices.Equal(h["Vary"], []string{"Accept-Encoding", "Origin"}) {
		t.Errorf("Vary %q", h["Vary"])
	}

	for _, origin := range []string{"https://evil.example.com", ""} {
		h = backend()
		p.Decorate(h, origin)
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("origin %q: response carries %s: %v", origin, k, h)
			}
		}
		if !slices.Equal(h["Vary"], []string{"Accept-Encoding", "Origin"}) {
			t.Errorf("origin %q: Vary %q (a shared cache must keep answers apart)", origin, h["Vary"])
		}
	}

	// Vary: * or one that lists Origin already is left alone.
	for _, v := range []string{"*", "accept, origin"} {
		h = http.Header{"Vary": {v}}
		p.Decorate(h, app)
		if !slices.Equal(h["Vary"], []string{v}) {
			t.Errorf("Vary %q became %q", v, h["Vary"])
		}
	}

	// "*" exposes everything without credentials; with them "*" is
	// literal, so the response's own header names are listed.
	h = http.Header{"X-Total": {"3"}, "Content-Type": {"text/plain"}}
	mustNew(t, Config{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"*"}}).Decorate(h, app)
	if h.Get("Access-Control-Expose-Headers") != "*" || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Vary") != "" {
		t.Errorf("star expose %v", h)
	}
	h = http.Header{"X-Total": {"3"}, "Content-Type": {"text/plain"}}
	mustNew(t, Config{AllowOrigins: []string{app}, ExposeHeaders: []string{"*"}, AllowCredentials: true}).Decorate(h, app)
	if got := h.Get("Access-Control-Expose-Headers"); got != "Content-Type, X-Total" {
		t.Errorf("star expose with credentials: %q", got)
	}
}

// TestNewRefuses: each invalid setting is refused with what to write.
func TestNewRefuses(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "allow_origins is empty"},
		{Config{AllowOrigins: []string{"*"}, AllowCredentials: true}, "allow_credentials is true"},
		{Config{AllowOrigins: []string{"*", "https://a.example"}}, `"*" and other origins`},
		{Config{AllowOrigins: []string{"app.example.com"}}, "no scheme"},
		{Config{AllowOrigins: []string{"https://app.example.com/"}}, "no path"},
		{Config{AllowOrigins: []string{"https://app.example.com:0"}}, "port"},
		{Config{AllowOrigins: []string{"https://app.example.com:99999"}}, "port"},
		{Config{AllowOrigins: []string{"https://*.com"}}, "two labels"},
		{Config{AllowOrigins: []string{"https://a.*.example.com"}}, "first label"},
		{Config{AllowOrigins: []string{"https://*"}}, "first label"},
		{Config{AllowOrigins: []string{"https://a"}, AllowMethods: []string{"GE T"}}, "not a method"},
		{Config{AllowOrigins: []string{"https://a"}, AllowHeaders: []string{"X:Y"}}, "not a header name"},
		{Config{AllowOrigins: []string{"https://a"}, ExposeHeaders: []string{""}}, "not a header name"},
		{Config{AllowOrigins: []string{"https://a"}, MaxAge: 86401}, "max_age"},
		{Config{AllowOrigins: []string{"https://a"}, MaxAge: -1}, "max_age"},
	} {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", c.cfg, err, c.want)
		}
	}
}

// TestParseOrigin: origins are kept as a browser serializes them.
func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com":     "https://app.example.com",
		"HTTPS://app.example.com:443": "https://app.example.com",
		"http://127.0.0.1:80":         "http://127.0.0.1",
		"http://127.0.0.1:8080":       "http://127.0.0.1:8080",
		"https://[::1]:8443":          "https://[::1]:8443",
		"http://[::1]":                "http://[::1]",
		"capacitor://localhost":       "capacitor://localhost",
		"https://*.Example.com:8443":  "https://*.example.com:8443",
	} {
		got, _, err := ParseOrigin(in)
		if err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// FuzzPreflight: whatever a client puts in Origin and the preflight's
// headers, the policy does not panic, a refusal carries no CORS header, and
// an answer it allows passes the browser's CORS check for that origin.
func FuzzPreflight(f *testing.F) {
	f.Add("https://app.example.com", "PUT", "x-trace,authorization")
	f.Add("https://a.b.example.org", "PATCH", "")
	f.Add("null", "GET", " , ,x")
	f.Add("https://app.example.com.evil", "put", "x-trace\t,X-TRACE")
	policies := []*Policy{
		mustNewF(f, Config{AllowOrigins: []string{"https://app.example.com", "https://*.example.org"}, AllowMethods: []string{"PUT"},
			AllowHeaders: []string{"X-Trace", "Authorization"}, ExposeHeaders: []string{"*"}, AllowCredentials: true}),
		mustNewF(f, Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, MaxAge: 60}),
	}
	f.Fuzz(func(t *testing.T, origin, method, headers string) {
		r := &http.Request{Method: http.MethodOptions, Header: http.Header{
			"Origin": {origin}, "Access-Control-Request-Method": {method}, "Access-Control-Request-Headers": {headers}}}
		m, ok := IsPreflight(r)
		for _, p := range policies {
			if ok {
				h := http.Header{}
				err := p.Preflight(h, r, m)
				for k := range h {
					if err != nil && strings.HasPrefix(k, "Access-Control-") {
						t.Errorf("refused (%v) yet carries %s", err, k)
					}
				}
				if err == nil && !corsCheck(h, origin, p.credentials) {
					t.Errorf("allowed answer fails the CORS check: %v", h)
				}
			}
			h := http.Header{"X-A": {"1"}}
			p.Decorate(h, origin)
			if v := h.Get("Access-Control-Allow-Origin"); v != "" && !corsCheck(h, origin, p.credentials) {
				t.Errorf("decorated answer fails the CORS check: %v", h)
			}
		}
	})
}

func mustNewF(f *testing.F, c Config) *Policy {
	p, err := New(c)
	if err != nil {
		f.Fatal(err)
	}
	return p
}
