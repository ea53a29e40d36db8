package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// shadowConfig is a file whose one route, on origin legacy, has the
// shadow written after "shadow: " on line 10 (its value starts at column
// 13). A function and an origin share the name "shared".
func shadowConfig(shadow string) string {
	return `origins:
  legacy: {url: http://127.0.0.1:9000}
  old-users: {url: http://127.0.0.1:9001}
  shared: {url: http://127.0.0.1:9002}
functions:
  users-v2: {handler: ./bin/users-v2}
  shared: {handler: ./bin/shared}
routes:
  - match: "GET /users/{id}"
    shadow: ` + shadow + `
    origin: legacy
`
}

// parseShadow parses shadowConfig(shadow) and returns the route's shadow.
func parseShadow(t *testing.T, shadow string) *Shadow {
	t.Helper()
	c, err := Parse("s.yaml", []byte(shadowConfig(shadow)))
	if err != nil {
		t.Fatalf("shadow: %s: %v", shadow, err)
	}
	if c.Routes[0].Shadow == nil {
		t.Fatalf("shadow: %s: none", shadow)
	}
	return c.Routes[0].Shadow
}

// defaultShadow is what Parse makes of a shadow that names its target
// alone.
func defaultShadow(to, function, origin string) Shadow {
	return Shadow{To: to, Function: function, Origin: origin, Sample: 100, Methods: []string{"GET", "HEAD"},
		Marker: "X-Turnout-Shadow", Timeout: Duration(10 * time.Second), MaxBodyBytes: 1 << 20, Concurrency: 8, Queue: 64, Noise: 10}
}

func TestShadowDefaults(t *testing.T) {
	with := func(f func(*Shadow)) Shadow {
		s := defaultShadow("users-v2", "users-v2", "")
		f(&s)
		return s
	}
	for _, tc := range []struct {
		shadow string
		want   Shadow
	}{
		{"{to: users-v2}", defaultShadow("users-v2", "users-v2", "")},
		// The issue's own example.
		{"{to: users-v2, sample: 10%, methods: [GET, HEAD]}", with(func(s *Shadow) { s.Sample = 10 })},
		// A percent with or without its sign; a 0 is kept, not the default.
		{"{to: users-v2, sample: 12.5, noise: 0.25%}", with(func(s *Shadow) { s.Sample, s.Noise = 12.5, 0.25 })},
		{"{to: users-v2, sample: 0, noise: 0%, queue: 0}", with(func(s *Shadow) { s.Sample, s.Noise, s.Queue = 0, 0, 0 })},
		{"{to: users-v2, sample: 100%, noise: 100}", with(func(s *Shadow) { s.Sample, s.Noise = 100, 100 })},
		{"{to: users-v2, methods: [POST, PURGE, GET]}", with(func(s *Shadow) { s.Methods = []string{"POST", "PURGE", "GET"} })},
		// Header names in canonical form.
		{"{to: users-v2, headers: [content-type, x-cache, ETag], marker: x-shadow}", with(func(s *Shadow) {
			s.Headers, s.Marker = []string{"Content-Type", "X-Cache", "Etag"}, "X-Shadow"
		})},
		{`{to: users-v2, ignore: ["$.generatedAt", "$.items[*].etag", '$["odd key"][0].*'], redact: [x-session, "$.user.email"]}`, with(func(s *Shadow) {
			s.Ignore, s.Redact = []string{"$.generatedAt", "$.items[*].etag", `$["odd key"][0].*`}, []string{"X-Session", "$.user.email"}
		})},
		{"{to: users-v2, ignore: [], redact: []}", with(func(s *Shadow) { s.Ignore, s.Redact = []string{}, []string{} })},
		{"{to: users-v2, timeout: 250ms, max_body_bytes: 67108864, concurrency: 1024, queue: 100000}", with(func(s *Shadow) {
			s.Timeout, s.MaxBodyBytes, s.Concurrency, s.Queue = Duration(250*time.Millisecond), 64<<20, 1024, 100000
		})},
		{"{to: users-v2, max_body_bytes: 1, concurrency: 1}", with(func(s *Shadow) { s.MaxBodyBytes, s.Concurrency = 1, 1 })},
		// A null value leaves the default.
		{"{to: users-v2, sample: , methods: }", defaultShadow("users-v2", "users-v2", "")},
	} {
		if got := parseShadow(t, tc.shadow); !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("shadow: %s\n got %+v\nwant %+v", tc.shadow, *got, tc.want)
		}
	}
}

// TestShadowTo: to names a function or an origin, resolved into Function
// or Origin; the prefixed forms say which when both have the name.
func TestShadowTo(t *testing.T) {
	for _, tc := range []struct {
		to, function, origin, target string
	}{
		{"users-v2", "users-v2", "", "function:users-v2"},
		{"function:users-v2", "users-v2", "", "function:users-v2"},
		{"old-users", "", "old-users", "old-users"},
		{"origin:old-users", "", "old-users", "old-users"},
		{"function:shared", "shared", "", "function:shared"},
		{"origin:shared", "", "shared", "shared"},
	} {
		s := parseShadow(t, "{to: "+tc.to+"}")
		if s.To != tc.to || s.Function != tc.function || s.Origin != tc.origin || s.Target() != tc.target {
			t.Errorf("to: %s resolves to %+v (target %q), want function %q, origin %q (target %q)", tc.to, *s, s.Target(), tc.function, tc.origin, tc.target)
		}
	}

	// The canary's target may be the shadow's: the usual case, before a
	// rollout moves the route to it.
	file := strings.Replace(shadowConfig("{to: users-v2}"), "    origin: legacy\n", "    origin: legacy\n    canary: {function: users-v2, weight: 5}\n", 1)
	if c, err := Parse("s.yaml", []byte(file)); err != nil || c.Routes[0].Shadow.Function != "users-v2" {
		t.Errorf("a shadow to the canary's target: %v", err)
	}
	// A function route mirrored to the legacy origin.
	file = strings.Replace(shadowConfig("{to: legacy}"), "origin: legacy\n", "function: users-v2\n", 1)
	if c, err := Parse("s.yaml", []byte(file)); err != nil || c.Routes[0].Shadow.Origin != "legacy" {
		t.Errorf("a function route's shadow to an origin: %v", err)
	}
	// The route's own target is not a second one.
	checkShadowErrors(t, strings.Replace(shadowConfig("{to: users-v2}"), "origin: legacy\n", "function: users-v2\n", 1),
		`10:18: routes[0].shadow.to "users-v2" is the route's own target: the shadow is compared with it; name another function or origin, or remove shadow`)
	// With no functions declared.
	file = strings.Replace(shadowConfig("{to: function:users-v3}"), "  users-v2: {handler: ./bin/users-v2}\n  shared: {handler: ./bin/shared}\n", "", 1)
	file = strings.Replace(file, "functions:\n", "", 1)
	checkErrors(t, file, `r.yaml:7:18: routes[0].shadow.to: unknown function "users-v3": no functions are declared; add it under functions:, like functions: {users: {handler: ./bin/users}}`)
	file = strings.Replace(file, "function:users-v3", "users-v3", 1)
	checkErrors(t, file, `r.yaml:7:18: routes[0].shadow.to names unknown target "users-v3" (declared functions: none; origins: legacy, old-users, shared)`)
}

// checkShadowErrors checks that shadowConfig-shaped file fails with
// exactly want, each "line:col: msg" after "r.yaml:".
func checkShadowErrors(t *testing.T, file string, want ...string) {
	t.Helper()
	for i := range want {
		want[i] = "r.yaml:" + want[i]
	}
	checkErrors(t, file, want...)
}

func TestShadowErrors(t *testing.T) {
	for _, tc := range []struct {
		shadow string
		want   []string // "line:col: msg", after "r.yaml:"
	}{
		// The shape.
		{"users-v2", []string{`10:13: routes[0].shadow must be a mapping of keys to values, got "users-v2"`}},
		{"{}", []string{`10:13: routes[0].shadow has no to: add to: with the function (or origin) the route's requests are mirrored to, like shadow: {to: users-v2, sample: 10%, methods: [GET, HEAD]}`}},
		{"{sample: 10%}", []string{`10:13: routes[0].shadow has no to: add to: with the function (or origin) the route's requests are mirrored to, like shadow: {to: users-v2, sample: 10%, methods: [GET, HEAD]}`}},
		{"{to: users-v2, function: users-v2}", []string{`10:28: unknown key "function" in routes[0].shadow (valid keys: to, sample, methods, ignore, headers, marker, timeout, max_body_bytes, concurrency, queue, noise, redact)`}},
		{"{to: users-v2, samples: 10}", []string{`10:28: unknown key "samples" in routes[0].shadow: did you mean "sample"? (valid keys: to, sample, methods, ignore, headers, marker, timeout, max_body_bytes, concurrency, queue, noise, redact)`}},

		// to.
		{"{to: ''}", []string{`10:18: routes[0].shadow.to is empty: write a value or remove the key`}},
		{"{to: [users-v2]}", []string{`10:18: routes[0].shadow.to must be a single value, got a list`}},
		{"{to: 'function:'}", []string{`10:18: routes[0].shadow.to "function:" names no function: write function:NAME, like function:users-v2`}},
		{"{to: 'origin:'}", []string{`10:18: routes[0].shadow.to "origin:" names no origin: write origin:NAME, like origin:users-v2`}},
		{"{to: 'lambda:users-v2'}", []string{`10:18: routes[0].shadow.to "lambda:users-v2" is not a target: write the name of a function or origin, or function:NAME or origin:NAME when a function and an origin share it`}},
		{"{to: shared}", []string{`10:18: routes[0].shadow.to "shared" names both a function and an origin: write function:shared or origin:shared`}},
		{"{to: users-v3}", []string{`10:18: routes[0].shadow.to names unknown target "users-v3": did you mean "users-v2"? (declared functions: users-v2, shared; origins: legacy, old-users, shared)`}},
		{"{to: nowhere}", []string{`10:18: routes[0].shadow.to names unknown target "nowhere" (declared functions: users-v2, shared; origins: legacy, old-users, shared)`}},
		{"{to: function:users-v3}", []string{`10:18: routes[0].shadow.to: unknown function "users-v3": declared functions are users-v2, shared`}},
		{"{to: function:old-users}", []string{`10:18: routes[0].shadow.to: unknown function "old-users": declared functions are users-v2, shared`}},
		{"{to: origin:users-v2}", []string{`10:18: routes[0].shadow.to names unknown origin "users-v2" (declared origins: legacy, old-users, shared)`}},
		{"{to: origin:legacy}", []string{`10:18: routes[0].shadow.to "origin:legacy" is the route's own target: the shadow is compared with it; name another function or origin, or remove shadow`}},
		{"{to: legacy}", []string{`10:18: routes[0].shadow.to "legacy" is the route's own target: the shadow is compared with it; name another function or origin, or remove shadow`}},

		// Percents.
		{"{to: users-v2, sample: 101%}", []string{`10:36: routes[0].shadow.sample 101% is outside 0-100: it is the percent of the route's requests mirrored to the shadow`}},
		{"{to: users-v2, sample: -1}", []string{`10:36: routes[0].shadow.sample -1 is outside 0-100: it is the percent of the route's requests mirrored to the shadow`}},
		{"{to: users-v2, sample: 0.001%}", []string{`10:36: routes[0].shadow.sample 0.001% is finer than 0.01 %: round it to two decimals`}},
		{"{to: users-v2, sample: ten}", []string{`10:36: routes[0].shadow.sample must be a percent from 0 to 100, like sample: 5%, got "ten"`}},
		{"{to: users-v2, sample: '10'}", []string{`10:36: routes[0].shadow.sample must be a percent from 0 to 100, like sample: 5%, got "10"`}},
		{"{to: users-v2, sample: 1e1%}", []string{`10:36: routes[0].shadow.sample must be a percent from 0 to 100, like sample: 5%, got "1e1%"`}},
		{"{to: users-v2, sample: '%'}", []string{`10:36: routes[0].shadow.sample must be a percent from 0 to 100, like sample: 5%, got "%"`}},
		{"{to: users-v2, sample: .nan}", []string{`10:36: routes[0].shadow.sample must be a percent from 0 to 100, like sample: 5%, got ".nan"`}},
		{"{to: users-v2, noise: 200}", []string{`10:35: routes[0].shadow.noise 200 is outside 0-100: it is the percent of mirrored requests also sent a second time to the primary`}},
		{"{to: users-v2, noise: [10]}", []string{`10:35: routes[0].shadow.noise must be a single value, got a list`}},

		// Methods.
		{"{to: users-v2, methods: []}", []string{`10:37: routes[0].shadow.methods is empty: list the methods to mirror, like methods: [GET, HEAD], or omit it for those (sample: 0 mirrors nothing)`}},
		{"{to: users-v2, methods: GET}", []string{`10:37: routes[0].shadow.methods must be a list, like [GET, HEAD], got "GET"`}},
		{"{to: users-v2, methods: [get, Post]}", []string{
			`10:38: routes[0].shadow.methods[0] "get": methods are case-sensitive; write GET`,
			`10:43: routes[0].shadow.methods[1] "Post": methods are case-sensitive; write POST`}},
		{"{to: users-v2, methods: [GET, 'GET /x']}", []string{`10:43: routes[0].shadow.methods[1] "GET /x" is not an HTTP method: a method is one word, like GET or PURGE`}},
		{"{to: users-v2, methods: [GET, HEAD, GET]}", []string{`10:49: routes[0].shadow.methods[2] GET is listed twice (also at r.yaml:10:38): remove one`}},
		{"{to: users-v2, methods: [CONNECT]}", []string{`10:38: routes[0].shadow.methods[0] CONNECT opens a tunnel, with no answer to compare: remove it`}},
		{"{to: users-v2, methods: [GET, '']}", []string{`10:43: routes[0].shadow.methods[1] is empty: write a value or remove the key`}},

		// JSON paths.
		{"{to: users-v2, ignore: [generatedAt]}", []string{`10:37: routes[0].shadow.ignore[0] "generatedAt" is not a JSON path: it starts with "$", the whole body, like $.items[*].etag`}},
		{"{to: users-v2, ignore: ['$..etag']}", []string{`10:37: routes[0].shadow.ignore[0] "$..etag" has ".." at character 2: recursive descent is not supported; write each step, with .* or [*] for any member or element`}},
		{"{to: users-v2, ignore: ['$.a', '$.a']}", []string{`10:44: routes[0].shadow.ignore[1] $.a is listed twice (also at r.yaml:10:37): remove one`}},
		{"{to: users-v2, ignore: '$.a'}", []string{`10:36: routes[0].shadow.ignore must be a list, like ["$.generatedAt", "$.items[*].etag"], got "$.a"`}},
		{"{to: users-v2, redact: ['$.user.e-mail']}", []string{`10:37: routes[0].shadow.redact[0] "$.user.e-mail" has "-" at character 9, which a .name cannot hold: write ["e-mail"]`}},

		// Headers.
		{"{to: users-v2, headers: []}", []string{`10:37: routes[0].shadow.headers is empty: list the response headers to compare, like headers: [Content-Type, Cache-Control], or omit it for Content-Type and the headers both answers set`}},
		{"{to: users-v2, headers: ['Content Type']}", []string{`10:38: routes[0].shadow.headers[0] "Content Type" is not a header name: use letters, digits and '-', like X-Request-Id`}},
		{"{to: users-v2, headers: [etag, ETag]}", []string{`10:44: routes[0].shadow.headers[1] Etag is listed twice (also at r.yaml:10:38): remove one`}},
		{"{to: users-v2, redact: ['x-secret:']}", []string{`10:37: routes[0].shadow.redact[0] "x-secret:" is not a header name: use letters, digits and '-', like X-Request-Id`}},
		{"{to: users-v2, marker: 'X Shadow'}", []string{`10:36: routes[0].shadow.marker "X Shadow" is not a header name: use letters, digits and '-', like X-Request-Id`}},
		{"{to: users-v2, marker: host}", []string{`10:36: routes[0].shadow.marker Host is a header HTTP itself uses: name a header of your own, like X-Turnout-Shadow`}},
		{"{to: users-v2, marker: ''}", []string{`10:36: routes[0].shadow.marker is empty: write a value or remove the key`}},

		// Sizes and times.
		{"{to: users-v2, timeout: 0s}", []string{`10:37: routes[0].shadow.timeout must be longer than 0; omit it for the default 10s`}},
		{"{to: users-v2, timeout: 10}", []string{`10:37: routes[0].shadow.timeout 10 has no unit: use a Go duration like "10s" or "10ms"`}},
		{"{to: users-v2, max_body_bytes: 0}", []string{`10:44: routes[0].shadow.max_body_bytes must be at least 1, got 0; omit it for the default 1 MiB`}},
		{"{to: users-v2, max_body_bytes: 67108865}", []string{`10:44: routes[0].shadow.max_body_bytes 67108865 is more than 64 MiB (67108864): each mirrored request holds its body and both answers' in memory; omit it for the default 1 MiB`}},
		{"{to: users-v2, max_body_bytes: 1MiB}", []string{`10:44: routes[0].shadow.max_body_bytes must be a whole number, got "1MiB"`}},
		{"{to: users-v2, concurrency: 0}", []string{`10:41: routes[0].shadow.concurrency must be at least 1, got 0; omit it for the default 8`}},
		{"{to: users-v2, concurrency: 1025}", []string{`10:41: routes[0].shadow.concurrency 1025 is more than 1024: it bounds the route's shadow requests in flight; omit it for the default 8`}},
		{"{to: users-v2, queue: -1}", []string{`10:35: routes[0].shadow.queue must be at least 0, got -1; 0 drops a mirrored request when concurrency shadow requests are in flight`}},
		{"{to: users-v2, queue: 100001}", []string{`10:35: routes[0].shadow.queue 100001 is more than 100000: it bounds the mirrored requests waiting; omit it for the default 64`}},

		// Several problems, each reported.
		{"{to: users-v3, sample: 10 %%, methods: [post]}", []string{
			`10:18: routes[0].shadow.to names unknown target "users-v3": did you mean "users-v2"? (declared functions: users-v2, shared; origins: legacy, old-users, shared)`,
			`10:36: routes[0].shadow.sample must be a percent from 0 to 100, like sample: 5%, got "10 %%"`,
			`10:53: routes[0].shadow.methods[0] "post": methods are case-sensitive; write POST`}},
	} {
		checkShadowErrors(t, shadowConfig(tc.shadow), tc.want...)
	}
}

// gateConfig is rolloutConfig with the plan's shadow gate written after
// "shadow: " on line 9 (its value starts at column 39), and the route's
// shadow after it when withShadow.
func gateConfig(gate string, withShadow bool) string {
	file := rolloutConfig("{steps: [5, 50], shadow: " + gate + "}")
	if withShadow {
		file += "    shadow: {to: users-v2}\n"
	}
	return file
}

// TestShadowGate: a rollout's shadow gate, its two keys required, and the
// route's shadow it waits for.
func TestShadowGate(t *testing.T) {
	for _, tc := range []struct {
		gate string
		want ShadowGate
	}{
		{"{min_compared: 1000, min_match_rate: 99.5%}", ShadowGate{MinCompared: 1000, MinMatchRate: 99.5}},
		{"{min_match_rate: 100, min_compared: 1}", ShadowGate{MinCompared: 1, MinMatchRate: 100}},
		{"{min_compared: 10, min_match_rate: 0}", ShadowGate{MinCompared: 10, MinMatchRate: 0}},
		// A fraction is a valid, if low, percent.
		{"{min_compared: 10, min_match_rate: 0.5}", ShadowGate{MinCompared: 10, MinMatchRate: 0.5}},
	} {
		c, err := Parse("r.yaml", []byte(gateConfig(tc.gate, true)))
		if err != nil {
			t.Errorf("shadow: %s: %v", tc.gate, err)
			continue
		}
		if g := c.Routes[0].Rollout.Shadow; g == nil || *g != tc.want {
			t.Errorf("shadow: %s parses to %+v, want %+v", tc.gate, g, tc.want)
		}
	}

	// Its route must have a shadow; a shadow written but wrong is reported
	// on its own.
	checkErrors(t, gateConfig("{min_compared: 1000, min_match_rate: 99.5%}", false),
		`r.yaml:9:31: routes[0].rollout.shadow waits for the route's shadow comparison, and the route has none: add shadow: with the canary's target, like shadow: {to: users-v2, sample: 10%, methods: [GET, HEAD]}, or remove the rollout's shadow`)
	checkErrors(t, gateConfig("{min_compared: 1000, min_match_rate: 99.5%}", false)+"    shadow: {sample: 10}\n",
		`r.yaml:10:13: routes[0].shadow has no to: add to: with the function (or origin) the route's requests are mirrored to, like shadow: {to: users-v2, sample: 10%, methods: [GET, HEAD]}`)

	// A shadow that mirrors nothing would hold the rollout for ever.
	checkErrors(t, gateConfig("{min_compared: 1000, min_match_rate: 99.5%}", false)+"    shadow: {to: users-v2, sample: 0%}\n",
		`r.yaml:9:31: routes[0].rollout.shadow waits for a comparison the route's shadow never makes, with sample: 0: give the shadow a sample above 0, or remove the rollout's shadow`)

	for _, tc := range []struct {
		gate string
		want []string // "line:col: msg", after "r.yaml:"
	}{
		{"{}", []string{
			`9:39: routes[0].rollout.shadow has no min_compared: add the requests the shadow must have compared, like shadow: {min_compared: 1000, min_match_rate: 99.5%}`,
			`9:39: routes[0].rollout.shadow has no min_match_rate: add the percent of them whose answers must match, like shadow: {min_compared: 1000, min_match_rate: 99.5%}`}},
		{"{min_compared: 1000}", []string{`9:39: routes[0].rollout.shadow has no min_match_rate: add the percent of them whose answers must match, like shadow: {min_compared: 1000, min_match_rate: 99.5%}`}},
		{"99.5%", []string{`9:39: routes[0].rollout.shadow must be a mapping of keys to values, got "99.5%"`}},
		{"{min_compared: 0, min_match_rate: 99.5%}", []string{`9:54: routes[0].rollout.shadow.min_compared must be at least 1, got 0; it counts the requests compared before the first step`}},
		{"{min_compared: 1e3, min_match_rate: 99.5%}", []string{`9:54: routes[0].rollout.shadow.min_compared must be a whole number, got "1e3"`}},
		{"{min_compared: 1000, min_match_rate: 99.999}", []string{`9:76: routes[0].rollout.shadow.min_match_rate 99.999 is finer than 0.01 %: round it to two decimals`}},
		{"{min_compared: 1000, min_match_rate: 101%}", []string{`9:76: routes[0].rollout.shadow.min_match_rate 101% is outside 0-100: it is the percent of compared requests whose answers must match`}},
		{"{min_compared: 1000, min_match_rate: high}", []string{`9:76: routes[0].rollout.shadow.min_match_rate must be a percent from 0 to 100, like min_match_rate: 5%, got "high"`}},
		{"{min_compared: 1000, min_match_rate: 99.5%, min_requests: 5}", []string{`9:83: unknown key "min_requests" in routes[0].rollout.shadow (valid keys: min_compared, min_match_rate)`}},
	} {
		want := make([]string, len(tc.want))
		for i, w := range tc.want {
			want[i] = "r.yaml:" + w
		}
		checkErrors(t, gateConfig(tc.gate, true), want...)
	}
}

// TestShadowRoundTrip: a parsed shadow and a rollout's shadow gate,
// encoded as YAML, are what Parse reads back the same.
func TestShadowRoundTrip(t *testing.T) {
	for _, shadow := range []string{
		"{to: users-v2}",
		"{to: origin:old-users, sample: 0, noise: 0, queue: 0}",
		`{to: function:shared, sample: 12.5%, methods: [GET, POST], ignore: ["$.a", '$["b c"][*]'], headers: [etag], marker: x-shadow, timeout: 2s, max_body_bytes: 4096, concurrency: 2, queue: 3, noise: 50, redact: [x-token, "$.secret"]}`,
	} {
		first := parseShadow(t, shadow)
		out, err := yaml.Marshal(first)
		if err != nil {
			t.Fatal(err)
		}
		flow := "\n      " + strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "\n      ")
		if second := parseShadow(t, flow); !reflect.DeepEqual(first, second) {
			t.Errorf("shadow: %s\nencodes as\n%s\nwhich parses to %+v, not %+v", shadow, out, *second, *first)
		}
	}

	file := gateConfig("{min_compared: 1000, min_match_rate: 99.5%}", true)
	c, err := Parse("r.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c.Routes[0].Rollout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "shadow: {min_compared: 1000, min_match_rate: 99.5}") {
		t.Errorf("the plan encodes as\n%s", out)
	}
	file = strings.Replace(file, "rollout: {steps: [5, 50], shadow: {min_compared: 1000, min_match_rate: 99.5%}}", "rollout:\n      "+strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "\n      "), 1)
	if again, err := Parse("r.yaml", []byte(file)); err != nil || !reflect.DeepEqual(again.Routes[0].Rollout, c.Routes[0].Rollout) {
		t.Errorf("the plan encoded as\n%s\nparses to %+v, %v; want %+v", out, again, err, c.Routes[0].Rollout)
	}
}

// TestShadowWithDefaults: WithDefaults fills in, for a shadow built by
// hand, the defaults whose zero is not a setting, and copies its slices.
func TestShadowWithDefaults(t *testing.T) {
	in := &Config{
		Origins:   []Origin{{Name: "legacy", URLs: []string{"http://127.0.0.1:9000"}}},
		Functions: []Function{{Name: "users-v2", Handler: "./bin/users-v2"}},
		Routes: []Route{
			{Match: "/a", Origin: "legacy", Shadow: &Shadow{To: "users-v2", Function: "users-v2"},
				Rollout: &Rollout{Steps: []float64{5}, Shadow: &ShadowGate{MinCompared: 10, MinMatchRate: 99}}},
			{Match: "/b", Origin: "legacy", Shadow: &Shadow{To: "users-v2", Function: "users-v2", Sample: 5, Methods: []string{"POST"},
				Ignore: []string{"$.a"}, Headers: []string{"Etag"}, Redact: []string{"X-Token"}, Marker: "X-Mirror", Timeout: Duration(time.Second),
				MaxBodyBytes: 10, Concurrency: 2, Queue: 3, Noise: 4}},
		},
	}
	out := in.WithDefaults()
	want := defaultShadow("users-v2", "users-v2", "")
	want.Sample, want.Queue, want.Noise = 0, 0, 0 // a 0 of these is a setting
	if got := out.Routes[0].Shadow; !reflect.DeepEqual(*got, want) {
		t.Errorf("WithDefaults: shadow %+v, want %+v", *got, want)
	}
	if out.Routes[0].Payload != "2.0" {
		t.Errorf("an origin route with a function shadow has payload %q, want the default 2.0", out.Routes[0].Payload)
	}
	if got, want := out.Routes[1].Shadow, in.Routes[1].Shadow; !reflect.DeepEqual(got, want) {
		t.Errorf("WithDefaults changed a shadow with every key set: %+v, want %+v", *got, *want)
	}
	// Nothing is shared with the input.
	out.Routes[1].Shadow.Methods[0], out.Routes[1].Shadow.Ignore[0] = "PUT", "$.b"
	out.Routes[1].Shadow.Headers[0], out.Routes[1].Shadow.Redact[0] = "X-B", "X-C"
	out.Routes[0].Rollout.Shadow.MinCompared = 1
	if s := in.Routes[1].Shadow; s.Methods[0] != "POST" || s.Ignore[0] != "$.a" || s.Headers[0] != "Etag" || s.Redact[0] != "X-Token" {
		t.Errorf("WithDefaults shares a shadow's slices: %+v", *s)
	}
	if in.Routes[0].Shadow.Methods != nil || in.Routes[0].Rollout.Shadow.MinCompared != 10 {
		t.Error("WithDefaults changed its input")
	}
}

func TestValidJSONPath(t *testing.T) {
	for _, p := range []string{
		"$", "$.a", "$.generatedAt", "$.items[*].etag", "$.*", "$[*]", "$[0]", "$[12].x", "$._id", "$.a1_b2",
		`$["odd key"]`, `$["a.b"]["c\"d"]`, `$[""]`, `$["\u00e9"]`, "$.é", "$.日付", `$.a[*][3].*["x y"].z`,
		"$" + strings.Repeat(".a", 64),
	} {
		if err := ValidJSONPath(p); err != nil {
			t.Errorf("ValidJSONPath(%q) = %v, want nil", p, err)
		}
	}
	for _, tc := range []struct{ path, err string }{
		{"", `is not a JSON path: it starts with "$", the whole body, like $.items[*].etag`},
		{"a.b", `is not a JSON path: it starts with "$", the whole body, like $.items[*].etag`},
		{"$a", `has "a" at character 2 where a step starts: a step is .name, ["key"], [3], .* or [*]`},
		{"$.", `has no name after "." at character 2: write .name, .* or ["key"]`},
		{"$.a.", `has no name after "." at character 4: write .name, .* or ["key"]`},
		{"$.a..b", `has ".." at character 4: recursive descent is not supported; write each step, with .* or [*] for any member or element`},
		{"$.1a", `has "1" at character 3, which a .name cannot hold: write ["1a"]`},
		{"$.a-b.c", `has "-" at character 4, which a .name cannot hold: write ["a-b"]`},
		{"$.a b", `has " " at character 4, which a .name cannot hold: write ["a b"]`},
		{"$.*x", `has "x" at character 4 where a step starts: a step is .name, ["key"], [3], .* or [*]`},
		{"$[", `has "[" at character 2 without an index, * or "key": write [3], [*] or ["key"]`},
		{"$[]", `has "[" at character 2 without an index, * or "key": write [3], [*] or ["key"]`},
		{"$[*", `has "[" at character 2 without its "]"`},
		{"$[3", `has "[" at character 2 without its "]"`},
		{"$[3a]", `has "[" at character 2 without its "]"`},
		{"$[01]", `has index 01 at character 3: write an index from 0, without leading zeros`},
		{"$[99999999999999999999]", `has index 99999999999999999999 at character 3: write an index from 0, without leading zeros`},
		{"$[-1]", `has a negative index at character 3: write an index from 0, or [*] for any element`},
		{"$['a']", `has a key in single quotes at character 3: write it in double quotes, like ["key"]`},
		{`$["a]`, `has an unclosed quote at character 3: end the key with "]`},
		{`$["a\"]`, `has an unclosed quote at character 3: end the key with "]`},
		{`$["a"`, `has "[" at character 2 without its "]"`},
		{`$["\x"]`, `has a key at character 3 that is not a JSON string: escape " and \ with a \`},
		{"$[\"a\tb\"]", `has a key at character 3 that is not a JSON string: escape " and \ with a \`},
		{"$[?(@.a)]", `has "[" at character 2 without an index, * or "key": write [3], [*] or ["key"]`},
		{"$[1:3]", `has "[" at character 2 without its "]"`},
		{"$.é-x", `has "-" at character 4, which a .name cannot hold: write ["é-x"]`},
		{"$" + strings.Repeat(".a", 65), `has more than 64 steps: the comparison looks 64 levels deep at most`},
	} {
		err := ValidJSONPath(tc.path)
		if err == nil || err.Error() != tc.err {
			t.Errorf("ValidJSONPath(%q) = %v, want %s", tc.path, err, tc.err)
		}
	}
}

// FuzzValidJSONPath: no input panics, and a path it accepts is one.
func FuzzValidJSONPath(f *testing.F) {
	for _, p := range []string{"$", "$.items[*].etag", `$["a.b"][0].*`, "$..a", "$[01]", `$["\u00e9"]`} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidJSONPath(p) == nil && !strings.HasPrefix(p, "$") {
			t.Fatalf("ValidJSONPath(%q) accepts a path without $", p)
		}
	})
}

// TestShadowDocExample parses the shadow docs/shadow.md shows under
// "## Configuration".
func TestShadowDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/shadow.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin = "## Configuration\n\n```yaml\n"
	_, example, ok := strings.Cut(string(doc), begin)
	example, _, ok2 := strings.Cut(example, "```")
	if !ok || !ok2 {
		t.Fatalf("docs/shadow.md has no yaml block after %q", begin)
	}
	c, err := Parse("shadow.md", []byte(example))
	if err != nil {
		t.Fatalf("docs/shadow.md's example: %v", err)
	}
	r := c.Routes[0]
	if s := r.Shadow; s == nil || s.Function != "users-v2" || s.Sample != 10 || len(s.Ignore) == 0 {
		t.Errorf("docs/shadow.md's example parses to shadow %+v", s)
	}
	if r.Rollout == nil || r.Rollout.Shadow == nil || r.Rollout.Shadow.MinMatchRate != 99.5 {
		t.Errorf("docs/shadow.md's example parses to rollout %+v", r.Rollout)
	}
}
