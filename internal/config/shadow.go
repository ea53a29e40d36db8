package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/turnout/turnout"
	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"
)

// Shadow mirrors a sampled share of a route's requests to a second target
// and compares its answers with the primary's, which alone answer the
// client (docs/shadow.md). The mirror is asynchronous and bounded: the
// client's answer and latency do not depend on it.
//
// In a file, `shadow:` is a mapping of exactly the keys to, sample,
// methods, ignore, headers, marker, timeout, max_body_bytes, concurrency,
// queue, noise and redact; to is required. Parse fills in the defaults of
// the keys left out, so a parsed Shadow has Sample, Methods, Marker,
// Timeout, MaxBodyBytes, Concurrency, Queue and Noise set (Headers nil
// means the default set of headers, below). Config.WithDefaults fills in,
// for a Shadow built by hand, those whose zero is not a setting.
type Shadow struct {
	// To names the shadow target: a declared function or origin, other
	// than the route's own target. The route's canary's target is allowed:
	// mirroring to the function a rollout moves to is the usual case.
	// "function:NAME" or "origin:NAME" says which when a function and an
	// origin share the name, and is refused for a plain name then. Parse
	// resolves it into Function or Origin.
	To       string `yaml:"to" json:"to"`
	Function string `yaml:"-" json:"function,omitempty"`
	Origin   string `yaml:"-" json:"origin,omitempty"`
	// Sample is the percent of the route's requests (of the methods
	// mirrored) copied to the shadow, 0–100 to 0.01: `sample: 10%` or
	// `sample: 10` (a canary's weight takes no "%"; the shadow's percents
	// take either, as the issue writes them). Default 100; 0 mirrors
	// nothing.
	Sample float64 `yaml:"sample" json:"sample"`
	// Methods are the methods mirrored, case-sensitive (GET, not get),
	// each once; CONNECT is refused. Default [GET, HEAD]; a method that is
	// not idempotent (POST, PATCH, ...) is mirrored only when listed.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Ignore are JSON paths (ValidJSONPath) whose differences are not
	// counted: "$.generatedAt", "$.items[*].etag".
	Ignore []string `yaml:"ignore" json:"ignore,omitempty"`
	// Headers are the response headers compared, in canonical form
	// (textproto.CanonicalMIMEHeaderKey). Default (nil): Content-Type,
	// and every header both answers set, except Date, Server, the value of
	// Set-Cookie, and request ids (X-Request-Id, X-Amzn-RequestId,
	// X-Amz-Apigw-Id, X-Amzn-Trace-Id, Apigw-Requestid).
	Headers []string `yaml:"headers" json:"headers,omitempty"`
	// Marker is the header every shadow request carries, with value "1",
	// so that a target can skip side effects. Default X-Turnout-Shadow; a
	// header HTTP itself uses (Host, Content-Length, ...) is refused.
	Marker string `yaml:"marker" json:"marker,omitempty"`
	// Timeout bounds one shadow request. Default 10s.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// MaxBodyBytes is the largest request or response body mirrored and
	// compared; a request with a larger body is not mirrored, an answer
	// larger is compared by its status, headers and a hash. Default 1 MiB,
	// at most 64 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	// Concurrency is the most shadow requests of the route in flight, and
	// Queue the most waiting; a mirrored request past both is dropped and
	// counted. Defaults 8 (1–1024) and 64 (0–100000).
	Concurrency int `yaml:"concurrency" json:"concurrency,omitempty"`
	Queue       int `yaml:"queue" json:"queue"`
	// Noise is the percent of mirrored idempotent requests also sent a
	// second time to the primary, to learn which JSON paths differ
	// between two answers of the primary itself (noise), 0–100 to 0.01,
	// written as Sample is. Default 10; 0 learns no noise.
	Noise float64 `yaml:"noise" json:"noise"`
	// Redact are further header names (canonical) and JSON paths
	// (starting with "$", ValidJSONPath) whose values the report's
	// examples replace with "[redacted]". Authorization, Cookie,
	// Set-Cookie, Proxy-Authorization and X-Api-Key always are.
	Redact []string `yaml:"redact" json:"redact,omitempty"`
}

// Target names the shadow's target as a route's is named: turnout's
// "function:NAME" for a function, the origin's name otherwise.
func (s Shadow) Target() string {
	return Route{Function: s.Function, Origin: s.Origin}.OnTarget()
}

// ShadowGate is a rollout plan's condition for its first canary step:
// the route's shadow comparison must have compared MinCompared requests
// at a match rate of at least MinMatchRate. In a file both keys are
// required, and the route must have a shadow.
type ShadowGate struct {
	// MinCompared is at least 1.
	MinCompared int `yaml:"min_compared" json:"min_compared"`
	// MinMatchRate is a percent, 0–100 to 0.01: `min_match_rate: 99.5%`
	// or `min_match_rate: 99.5`.
	MinMatchRate float64 `yaml:"min_match_rate" json:"min_match_rate"`
}

// The defaults Parse fills into a route's shadow.
const (
	DefaultShadowSample       = 100
	DefaultShadowNoise        = 10
	DefaultShadowMarker       = "X-Turnout-Shadow"
	DefaultShadowTimeout      = Duration(10 * time.Second)
	DefaultShadowMaxBodyBytes = 1 << 20
	DefaultShadowConcurrency  = 8
	DefaultShadowQueue        = 64
)

// The bounds of a shadow's sizes, which catch a slipped digit rather than
// size memory. A mirrored request waiting holds its body, one in flight
// its body and both answers' bodies, each up to MaxBodyBytes: at worst a
// route's shadow holds (Queue + 3 × Concurrency) × MaxBodyBytes, 88 MiB
// with the defaults.
const (
	maxShadowBodyBytes  = 64 << 20
	maxShadowConcurrent = 1024
	maxShadowQueue      = 100_000
)

// DefaultShadowMethods returns the methods a shadow mirrors when it lists
// none: the safe ones.
func DefaultShadowMethods() []string { return []string{http.MethodGet, http.MethodHead} }

var (
	shadowKeys     = []string{"to", "sample", "methods", "ignore", "headers", "marker", "timeout", "max_body_bytes", "concurrency", "queue", "noise", "redact"}
	shadowGateKeys = []string{"min_compared", "min_match_rate"}
)

const (
	shadowExample     = `shadow: {to: users-v2, sample: 10%, methods: [GET, HEAD]}`
	shadowGateExample = `shadow: {min_compared: 1000, min_match_rate: 99.5%}`
)

// The percents a shadow's keys hold, written 10% or 10.
var (
	samplePercent    = percentKind{sign: true, of: "the percent of the route's requests mirrored to the shadow", resolution: "0.01 %"}
	noisePercent     = percentKind{sign: true, of: "the percent of mirrored requests also sent a second time to the primary", resolution: "0.01 %"}
	matchRatePercent = percentKind{sign: true, of: "the percent of compared requests whose answers must match", resolution: "0.01 %"}
)

// knownMethods are the methods of RFC 9110, for the hint when one is
// written in lower case (methods are case-sensitive).
var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect}

// reservedMarkers are headers HTTP itself uses, which a marker would
// clobber.
var reservedMarkers = []string{"Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Authorization", "Cookie"}

// MarshalYAML writes the shadow as a file says it, so that what Parse
// returns encodes back into a file Parse accepts with the same meaning:
// the keys left empty are left out, and sample, noise and queue, whose 0
// is a setting of its own, are always written.
func (s Shadow) MarshalYAML() (any, error) {
	type shadow struct {
		To           string   `yaml:"to"`
		Sample       float64  `yaml:"sample"`
		Methods      []string `yaml:"methods,omitempty,flow"`
		Ignore       []string `yaml:"ignore,omitempty,flow"`
		Headers      []string `yaml:"headers,omitempty,flow"`
		Marker       string   `yaml:"marker,omitempty"`
		Timeout      Duration `yaml:"timeout,omitempty"`
		MaxBodyBytes int64    `yaml:"max_body_bytes,omitempty"`
		Concurrency  int      `yaml:"concurrency,omitempty"`
		Queue        int      `yaml:"queue"`
		Noise        float64  `yaml:"noise"`
		Redact       []string `yaml:"redact,omitempty,flow"`
	}
	return shadow{s.To, s.Sample, s.Methods, s.Ignore, s.Headers, s.Marker, s.Timeout, s.MaxBodyBytes, s.Concurrency, s.Queue, s.Noise, s.Redact}, nil
}

// shadow decodes routes[i].shadow (what), noting its to's position in rp,
// and fills in the defaults of the keys left out.
func (d *decoder) shadow(v *yaml.Node, what string, rp *routePos) *Shadow {
	s := &Shadow{}
	// The keys written: a 0 is a setting of its own for sample, noise and
	// queue, so their defaults go by presence.
	set := map[string]bool{}
	ok := d.fields(v, what, shadowKeys, func(key string, _, v *yaml.Node) {
		set[key] = true
		w := what + "." + key
		switch key {
		case "to":
			rp.shadowTo = d.pos(v)
			if to, ok := d.name(v, w); ok {
				if err := checkShadowTo(to); err != nil {
					d.errorf(v, "%s %q %v", w, to, err)
					return
				}
				s.To = to
			}
		case "sample":
			s.Sample, _ = d.percentOf(v, w, "sample: %s%%", samplePercent)
		case "noise":
			s.Noise, _ = d.percentOf(v, w, "noise: %s%%", noisePercent)
		case "methods":
			s.Methods = d.shadowList(v, w, "[GET, HEAD]", "list the methods to mirror, like methods: [GET, HEAD], or omit it for those (sample: 0 mirrors nothing)", d.method)
		case "ignore":
			s.Ignore = d.shadowList(v, w, `["$.generatedAt", "$.items[*].etag"]`, "", d.jsonPath)
		case "headers":
			s.Headers = d.shadowList(v, w, "[Content-Type, Cache-Control]", "list the response headers to compare, like headers: [Content-Type, Cache-Control], or omit it for Content-Type and the headers both answers set", d.headerName)
		case "redact":
			s.Redact = d.shadowList(v, w, `[X-Session, "$.user.email"]`, "", func(v *yaml.Node, what string) (string, bool) {
				if strings.HasPrefix(v.Value, "$") {
					return d.jsonPath(v, what)
				}
				return d.headerName(v, what)
			})
		case "marker":
			if m, ok := d.headerName(v, w); ok {
				if slices.Contains(reservedMarkers, m) {
					d.errorf(v, "%s %s is a header HTTP itself uses: name a header of your own, like %s", w, m, DefaultShadowMarker)
					return
				}
				s.Marker = m
			}
		case "timeout":
			d.duration(v, w, &s.Timeout, "the default 10s")
		case "max_body_bytes":
			n, ok := d.integer(v, w, 64, 1, "omit it for the default 1 MiB")
			switch {
			case !ok:
			case n > maxShadowBodyBytes:
				d.errorf(v, "%s %d is more than 64 MiB (%d): each mirrored request holds its body and both answers' in memory; omit it for the default 1 MiB", w, n, maxShadowBodyBytes)
			default:
				s.MaxBodyBytes = n
			}
		case "concurrency":
			n, ok := d.integer(v, w, strconv.IntSize, 1, "omit it for the default 8")
			switch {
			case !ok:
			case n > maxShadowConcurrent:
				d.errorf(v, "%s %d is more than %d: it bounds the route's shadow requests in flight; omit it for the default 8", w, n, maxShadowConcurrent)
			default:
				s.Concurrency = int(n)
			}
		case "queue":
			n, ok := d.integer(v, w, strconv.IntSize, 0, "0 drops a mirrored request when concurrency shadow requests are in flight")
			switch {
			case !ok:
			case n > maxShadowQueue:
				d.errorf(v, "%s %d is more than %d: it bounds the mirrored requests waiting; omit it for the default 64", w, n, maxShadowQueue)
			default:
				s.Queue = int(n)
			}
		}
	})
	if !ok {
		return nil
	}
	if !set["to"] {
		d.errorf(v, "%s has no to: add to: with the function (or origin) the route's requests are mirrored to, like %s", what, shadowExample)
	}
	if !set["sample"] {
		s.Sample = DefaultShadowSample
	}
	if !set["noise"] {
		s.Noise = DefaultShadowNoise
	}
	if !set["queue"] {
		s.Queue = DefaultShadowQueue
	}
	if !set["methods"] {
		s.Methods = DefaultShadowMethods()
	}
	s.Marker = orDefault(s.Marker, DefaultShadowMarker)
	s.Timeout = orDefault(s.Timeout, DefaultShadowTimeout)
	s.MaxBodyBytes = orDefault(s.MaxBodyBytes, DefaultShadowMaxBodyBytes)
	s.Concurrency = orDefault(s.Concurrency, DefaultShadowConcurrency)
	return s
}

// checkShadowTo checks the form of a shadow's to: NAME, function:NAME or
// origin:NAME. Whether the name is declared is checked once every function
// and origin is known (validateShadows).
func checkShadowTo(to string) error {
	kind, name := splitShadowTo(to)
	switch {
	case kind != "" && name == "":
		return fmt.Errorf("names no %s: write %s:NAME, like %s:users-v2", kind, kind, kind)
	case kind == "" && strings.Contains(to, ":"):
		return fmt.Errorf("is not a target: write the name of a function or origin, or function:NAME or origin:NAME when a function and an origin share it")
	}
	return nil
}

// splitShadowTo returns "function" or "origin" and the name for the
// prefixed forms of a shadow's to, "" and to itself for a plain name.
func splitShadowTo(to string) (kind, name string) {
	if n, ok := strings.CutPrefix(to, turnout.FunctionTarget("")); ok {
		return "function", n
	}
	if n, ok := strings.CutPrefix(to, turnout.OriginTarget("")); ok {
		return "origin", n
	}
	return "", to
}

// shadowList decodes a list of strings (what), each by one, refusing one
// listed twice. A list written empty is refused with the hint ifEmpty, or
// returned empty (not nil) when ifEmpty is "".
func (d *decoder) shadowList(v *yaml.Node, what, example, ifEmpty string, one func(v *yaml.Node, what string) (string, bool)) []string {
	items, ok := d.list(v, what, example)
	if !ok {
		return nil
	}
	if len(items) == 0 && ifEmpty != "" {
		d.errorf(v, "%s is empty: %s", what, ifEmpty)
		return nil
	}
	out := make([]string, 0, len(items))
	seen := make(map[string]Pos, len(items))
	for j, it := range items {
		w := fmt.Sprintf("%s[%d]", what, j)
		s, ok := one(deref(it), w)
		if !ok {
			continue
		}
		if p, dup := seen[s]; dup {
			d.errorf(it, "%s %s is listed twice (also at %s): remove one", w, s, p)
			continue
		}
		seen[s] = d.pos(it)
		out = append(out, s)
	}
	return out
}

// method decodes an HTTP method: a token, case-sensitive, so that "get"
// is refused rather than taken for a method no client sends.
func (d *decoder) method(v *yaml.Node, what string) (string, bool) {
	m, ok := d.name(v, what)
	switch up := strings.ToUpper(m); {
	case !ok:
	case !httpguts.ValidHeaderFieldName(m):
		d.errorf(v, "%s %q is not an HTTP method: a method is one word, like GET or PURGE", what, m)
	case m != up && slices.Contains(knownMethods, up):
		d.errorf(v, "%s %q: methods are case-sensitive; write %s", what, m, up)
	case m == http.MethodConnect:
		d.errorf(v, "%s CONNECT opens a tunnel, with no answer to compare: remove it", what)
	default:
		return m, true
	}
	return "", false
}

// headerName decodes a header name, in its canonical form
// (textproto.CanonicalMIMEHeaderKey: content-type is Content-Type).
func (d *decoder) headerName(v *yaml.Node, what string) (string, bool) {
	h, ok := d.name(v, what)
	if !ok {
		return "", false
	}
	if !httpguts.ValidHeaderFieldName(h) {
		d.errorf(v, "%s %q is not a header name: use letters, digits and '-', like X-Request-Id", what, h)
		return "", false
	}
	return textproto.CanonicalMIMEHeaderKey(h), true
}

// jsonPath decodes a JSON path (ValidJSONPath).
func (d *decoder) jsonPath(v *yaml.Node, what string) (string, bool) {
	p, ok := d.name(v, what)
	if !ok {
		return "", false
	}
	if err := ValidJSONPath(p); err != nil {
		d.errorf(v, "%s %q %v", what, p, err)
		return "", false
	}
	return p, true
}

// shadowGate decodes routes[i].rollout.shadow (what).
func (d *decoder) shadowGate(v *yaml.Node, what string) *ShadowGate {
	g := &ShadowGate{}
	var compared, rate bool
	ok := d.fields(v, what, shadowGateKeys, func(key string, _, v *yaml.Node) {
		w := what + "." + key
		switch key {
		case "min_compared":
			compared = true
			d.intField(v, w, &g.MinCompared, 1, "it counts the requests compared before the first step")
		case "min_match_rate":
			rate = true
			g.MinMatchRate, _ = d.percentOf(v, w, "min_match_rate: %s%%", matchRatePercent)
		}
	})
	if !ok {
		return nil
	}
	for _, k := range []struct {
		set  bool
		key  string
		mean string
	}{
		{compared, "min_compared", "the requests the shadow must have compared"},
		{rate, "min_match_rate", "the percent of them whose answers must match"},
	} {
		if !k.set {
			d.errorf(v, "%s has no %s: add %s, like %s", what, k.key, k.mean, shadowGateExample)
		}
	}
	return g
}

// validateShadows resolves each shadow's to into its Function or Origin,
// and checks that a rollout's shadow gate has a shadow to wait for.
func (d *decoder) validateShadows(c *Config, origins map[string]bool) {
	fns := make(map[string]bool, len(c.Functions))
	fnNames := make([]string, 0, len(c.Functions))
	for _, f := range c.Functions {
		fns[f.Name] = true
		fnNames = append(fnNames, f.Name)
	}
	for i, r := range c.Routes {
		rp := d.routes[i]
		if r.Rollout != nil && r.Rollout.Shadow != nil && r.Shadow == nil && rp.shadow == (Pos{}) {
			d.errorAt(rp.rolloutShadow, fmt.Sprintf("routes[%d].rollout.shadow waits for the route's shadow comparison, and the route has none: add shadow: with the canary's target, like %s, or remove the rollout's shadow", i, shadowExample))
		}
		s := r.Shadow
		if r.Rollout != nil && r.Rollout.Shadow != nil && s != nil && s.Sample == 0 {
			d.errorAt(rp.rolloutShadow, fmt.Sprintf("routes[%d].rollout.shadow waits for a comparison the route's shadow never makes, with sample: 0: give the shadow a sample above 0, or remove the rollout's shadow", i))
		}
		if s == nil || s.To == "" {
			continue
		}
		w := "routes[" + strconv.Itoa(i) + "].shadow.to"
		switch kind, name := splitShadowTo(s.To); {
		case kind == "function" && fns[name], kind == "" && fns[name] && !origins[name]:
			s.Function = name
		case kind == "origin" && origins[name], kind == "" && origins[name] && !fns[name]:
			s.Origin = name
		case kind == "":
			if fns[name] { // and origins[name]
				d.errorAt(rp.shadowTo, fmt.Sprintf("%s %q names both a function and an origin: write function:%s or origin:%s", w, name, name, name))
				continue
			}
			d.unknownShadowTarget(rp.shadowTo, w, name, fnNames, c)
			continue
		case kind == "origin":
			d.unknownOrigin(rp.shadowTo, w, name, c)
			continue
		case len(fnNames) == 0:
			d.errorAt(rp.shadowTo, fmt.Sprintf("%s: unknown function %q: no functions are declared; add it under functions:, like %s", w, name, functionExampleHosted))
			continue
		default:
			d.errorAt(rp.shadowTo, fmt.Sprintf("%s: unknown function %q: declared functions are %s", w, name, nameList(fnNames)))
			continue
		}
		if s.Function != "" && s.Function == r.Function || s.Origin != "" && s.Origin == r.Origin {
			d.errorAt(rp.shadowTo, fmt.Sprintf("%s %q is the route's own target: the shadow is compared with it; name another function or origin, or remove shadow", w, s.To))
		}
	}
}

// unknownShadowTarget reports a shadow's to that names neither a function
// nor an origin.
func (d *decoder) unknownShadowTarget(p Pos, what, name string, fnNames []string, c *Config) {
	originNames := make([]string, len(c.Origins))
	for i, o := range c.Origins {
		originNames[i] = o.Name
	}
	msg := fmt.Sprintf("%s names unknown target %q", what, name)
	if s := closest(name, append(slices.Clone(fnNames), originNames...)); s != "" {
		msg += fmt.Sprintf(": did you mean %q?", s)
	}
	fnList := "none"
	if len(fnNames) > 0 {
		fnList = nameList(fnNames)
	}
	d.errorAt(p, msg+fmt.Sprintf(" (declared functions: %s; origins: %s)", fnList, nameList(originNames)))
}

// maxJSONPathSteps bounds a JSON path's steps: the comparison walks no
// deeper than that.
const maxJSONPathSteps = 64

// ValidJSONPath reports why p is not a JSON path as a shadow's ignore and
// redact rules write them, nil when it is; the error reads after the path
// (`"$..a" has ".." at character 2: ...`). A path is "$" (the whole body)
// followed by steps, each one of
//
//	.name       a member whose name is letters, digits and '_', not starting
//	            with a digit (RFC 9535's member-name-shorthand)
//	["key"]     a member of any name, written as a JSON string
//	[3]         an array element, by index from 0
//	.* or [*]   any member or any element
//
// at most 64 steps: "$.items[*].etag", `$.meta["generated-at"]`. The rest of
// JSONPath (.., filters, slices, negative indexes) is refused, since a
// comparison's differences are reported at single paths that these forms
// match. The comparison (internal/shadow/diff) reports differences at
// paths of this form, so that one copied from the report is a valid rule;
// the grammar is exported here so that the comparison's reading of the
// rules can be checked against it (or replaced by it).
func ValidJSONPath(p string) error {
	if !strings.HasPrefix(p, "$") {
		return errors.New(`is not a JSON path: it starts with "$", the whole body, like $.items[*].etag`)
	}
	// at is the 1-based character position of byte i, for messages.
	at := func(i int) int { return utf8.RuneCountInString(p[:i]) + 1 }
	steps := 0
	for i := 1; i < len(p); {
		if steps++; steps > maxJSONPathSteps {
			return fmt.Errorf("has more than %d steps: the comparison looks %d levels deep at most", maxJSONPathSteps, maxJSONPathSteps)
		}
		switch p[i] {
		case '.':
			i++
			if i < len(p) && p[i] == '.' {
				return fmt.Errorf(`has ".." at character %d: recursive descent is not supported; write each step, with .* or [*] for any member or element`, at(i-1))
			}
			if i < len(p) && p[i] == '*' {
				i++
				continue
			}
			start := i
			for i < len(p) {
				r, n := utf8.DecodeRuneInString(p[i:])
				if !(r == '_' || unicode.IsLetter(r) || i > start && unicode.IsDigit(r)) {
					break
				}
				i += n
			}
			if i < len(p) && p[i] != '.' && p[i] != '[' || i == start {
				end := start + strings.IndexAny(p[start:]+".", ".[")
				if end == start {
					return fmt.Errorf(`has no name after "." at character %d: write .name, .* or ["key"]`, at(start-1))
				}
				key, _ := json.Marshal(p[start:end])
				return fmt.Errorf(`has %q at character %d, which a .name cannot hold: write [%s]`, p[i:i+1], at(i), key)
			}
		case '[':
			open := i
			i++
			switch {
			case i < len(p) && p[i] == '*':
				i++
			case i < len(p) && p[i] == '"':
				j := i + 1
				for j < len(p) && p[j] != '"' {
					if p[j] == '\\' {
						j++
					}
					j++
				}
				if j >= len(p) {
					return fmt.Errorf(`has an unclosed quote at character %d: end the key with "]`, at(i))
				}
				var key string
				if err := json.Unmarshal([]byte(p[i:j+1]), &key); err != nil {
					return fmt.Errorf("has a key at character %d that is not a JSON string: escape \" and \\ with a \\", at(i))
				}
				i = j + 1
			case i < len(p) && p[i] >= '0' && p[i] <= '9':
				j := i
				for j < len(p) && p[j] >= '0' && p[j] <= '9' {
					j++
				}
				if _, err := strconv.Atoi(p[i:j]); err != nil || p[i] == '0' && j-i > 1 {
					return fmt.Errorf("has index %s at character %d: write an index from 0, without leading zeros", p[i:j], at(i))
				}
				i = j
			case i < len(p) && p[i] == '\'':
				return fmt.Errorf(`has a key in single quotes at character %d: write it in double quotes, like ["key"]`, at(i))
			case i < len(p) && p[i] == '-':
				return fmt.Errorf("has a negative index at character %d: write an index from 0, or [*] for any element", at(i))
			default:
				return fmt.Errorf(`has "[" at character %d without an index, * or "key": write [3], [*] or ["key"]`, at(open))
			}
			if i >= len(p) || p[i] != ']' {
				return fmt.Errorf(`has "[" at character %d without its "]"`, at(open))
			}
			i++
		default:
			return fmt.Errorf(`has %q at character %d where a step starts: a step is .name, ["key"], [3], .* or [*]`, p[i:i+1], at(i))
		}
	}
	return nil
}

// withDefaults returns a copy of s, sharing no slice with it, with the
// defaults filled in whose zero is not a setting: Parse has filled them
// all, so this is for a Shadow built by hand. Sample, Noise and Queue are
// kept as they are, since their 0 means something (mirror nothing, learn
// no noise, queue nothing).
func (s *Shadow) withDefaults() *Shadow {
	out := *s
	out.Methods = slices.Clone(s.Methods)
	if out.Methods == nil {
		out.Methods = DefaultShadowMethods()
	}
	out.Ignore = slices.Clone(s.Ignore)
	out.Headers = slices.Clone(s.Headers)
	out.Redact = slices.Clone(s.Redact)
	out.Marker = orDefault(out.Marker, DefaultShadowMarker)
	out.Timeout = orDefault(out.Timeout, DefaultShadowTimeout)
	out.MaxBodyBytes = orDefault(out.MaxBodyBytes, DefaultShadowMaxBodyBytes)
	out.Concurrency = orDefault(out.Concurrency, DefaultShadowConcurrency)
	return &out
}
