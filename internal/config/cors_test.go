package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/cors"
)

// TestCORS: the top-level policy, a route's own replacing it, and
// `cors: off`, as parsed; origins kept as browsers send them.
func TestCORS(t *testing.T) {
	c, err := Parse("c.yaml", []byte(authOrigins+`cors:
  allow_origins: ["https://App.example.com:443", "https://*.example.org"]
  allow_methods: [GET, PUT, "*"]
  allow_headers: [authorization, X-Trace, "*"]
  expose_headers: [x-total]
  max_age: 600
  allow_credentials: true
routes:
  - {match: /a/, origin: legacy}
  - {match: /b/, origin: legacy, cors: {allow_origins: ["*"]}}
  - {match: /c/, origin: legacy, cors: off}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := c.RouteCORS(0)
	if g == nil || g != c.CORS || !slices.Equal(g.AllowOrigins, []string{"https://app.example.com", "https://*.example.org"}) ||
		!slices.Equal(g.AllowMethods, []string{"GET", "PUT", "*"}) || !slices.Equal(g.AllowHeaders, []string{"Authorization", "X-Trace", "*"}) ||
		!slices.Equal(g.ExposeHeaders, []string{"X-Total"}) || g.MaxAge != 600 || !g.AllowCredentials {
		t.Errorf("top-level cors: %+v", g)
	}
	if b := c.RouteCORS(1); b == nil || !slices.Equal(b.AllowOrigins, []string{"*"}) || b.AllowCredentials {
		t.Errorf("route b's own cors: %+v", b)
	}
	if off := c.RouteCORS(2); off != nil {
		t.Errorf("route c: cors: off gave %+v", off)
	}
	for i := range c.Routes {
		if p := c.RouteCORS(i); p != nil {
			if _, err := cors.New(p.Policy()); err != nil {
				t.Errorf("route %d: a parsed policy does not compile: %v", i, err)
			}
		}
	}
}

// TestCORSErrors: each refusal at the value's file:line:column.
func TestCORSErrors(t *testing.T) {
	routes := "routes:\n  - {match: /, origin: legacy}\n"
	for _, tc := range []struct {
		cors string // the top-level cors:, on line 2
		want string // "line:col: msg", after "r.yaml:"
	}{
		{`{allow_origins: ["*"], allow_credentials: true}`,
			`2:49: cors.allow_credentials is true with "*" in allow_origins: browsers refuse credentials from "*" (and API Gateway refuses the configuration); list the origins instead`},
		{`{allow_origins: ["*", "https://a.example.com"]}`,
			`2:24: cors.allow_origins has "*" and other origins: "*" allows every origin; keep it alone, or list the origins`},
		{`{allow_origins: [app.example.com]}`,
			`2:24: cors.allow_origins[0]: allow_origins: "app.example.com" is not an origin: no scheme; write scheme://host[:port], like https://app.example.com, or https://*.example.com for its subdomains`},
		{`{allow_origins: ["https://a.example.com/app"]}`,
			`2:24: cors.allow_origins[0]: allow_origins: "https://a.example.com/app" is not an origin: an origin has no path, query, fragment or user; write scheme://host[:port], like https://app.example.com, or https://*.example.com for its subdomains`},
		{`{allow_origins: ["https://*.com"]}`,
			`2:24: cors.allow_origins[0]: allow_origins: "https://*.com" is not an origin: a wildcard covers the subdomains of a domain of two labels or more, like *.example.com; write scheme://host[:port], like https://app.example.com, or https://*.example.com for its subdomains`},
		{`{allow_origins: []}`,
			`2:23: cors.allow_origins is empty: list the origins pages may call from, like [https://app.example.com]`},
		{`{allow_methods: [GET]}`,
			`2:7: cors has no allow_origins: list the origins pages may call from, like cors: {allow_origins: [https://app.example.com], allow_methods: [GET, PUT], allow_headers: [Authorization]}`},
		{`{allow_origins: ["*"], allow_methods: [get]}`,
			`2:46: cors.allow_methods[0] "get": methods are case-sensitive; write GET`},
		{`{allow_origins: ["*"], allow_headers: ["X Trace"]}`,
			`2:46: cors.allow_headers[0] "X Trace" is not a header name: use letters, digits and '-', like X-Request-Id`},
		{`{allow_origins: ["*"], max_age: 86401}`,
			`2:39: cors.max_age 86401 is over a day: use at most 86400 seconds (browsers cap it lower still)`},
		{`{allow_origins: ["*"], max_age: -1}`,
			`2:39: cors.max_age must be at least 0, got -1; 0 sends none (the browser's default)`},
		{`{allow_origins: ["*"], allow_origin: ["*"]}`,
			`2:30: unknown key "allow_origin" in cors: did you mean "allow_origins"? (valid keys: allow_origins, allow_methods, allow_headers, expose_headers, max_age, allow_credentials)`},
		{`off`, `2:7: cors must be a mapping of keys to values, got "off"`},
	} {
		t.Run(tc.cors, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(authOrigins+"cors: "+tc.cors+"\n"+routes))
			if err == nil || !strings.Contains(err.Error(), "r.yaml:"+tc.want) {
				t.Errorf("cors: %s\n got %v\nwant r.yaml:%s", tc.cors, err, tc.want)
			}
		})
	}
	// On a route: off, or a mapping.
	checkErrors(t, authOrigins+"routes:\n  - {match: /, origin: legacy, cors: none}\n",
		`r.yaml:3:38: routes[0].cors must be off (no CORS on this route) or a mapping like cors: {allow_origins: [https://app.example.com], allow_methods: [GET, PUT], allow_headers: [Authorization]}, got "none"`)
}
