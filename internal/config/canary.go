package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Canary is a route's second target: it serves Weight percent of the
// route's requests, the route's own target (the baseline) the rest. Which
// side a request goes to is decided per request from a hash of its sticky
// key against the weight, so a client keeps its side while the weight stays
// and, as the weight grows, only ever moves into the canary
// (docs/rollouts.md).
//
// The canary gets the route's guards: its payload format when it is a
// function, its timeout, its rate limit (which counts the route's requests
// on both sides) and its fallback, when the route has one that is not the
// canary itself. The route's circuit breaker and auto-rollback window
// judge the baseline only; the canary's outcomes are counted apart, per
// side (turnout_canary_requests_total), for the comparison a rollout makes.
// A route switched off sends everything to its fallback or the legacy
// origin, canary share included.
type Canary struct {
	// Function or Origin names the canary's target: exactly one, a
	// declared function or origin other than the route's own target.
	Function string `yaml:"function" json:"function,omitempty"`
	Origin   string `yaml:"origin" json:"origin,omitempty"`
	// Weight is the percent of the route's requests the canary serves,
	// 0–100 in steps of 0.01 (the split's resolution: 10,000 buckets of
	// client keys), written as a plain number of percent: weight: 5 is
	// 5 %, weight: 0.5 half a percent, without a "%" sign: "5%" is refused
	// with that hint (only a shadow's percents, written as the issue that
	// brought them writes sample: 10%, take one). (An error rate such as
	// auto_rollback.max_error_rate is a 0–1 fraction; a share of traffic is
	// written in percent, as rollout steps are.) 0 keeps every request on
	// the baseline.
	Weight float64 `yaml:"weight" json:"weight"`
	// Sticky is what keeps a client on its side: "ip" (the client's
	// address, the default), "header:NAME" (a request header, such as
	// header:X-User-Id) or "cookie:NAME". A request without the header or
	// cookie is placed by its address.
	Sticky string `yaml:"sticky" json:"sticky,omitempty"`
}

// The kinds of sticky key (Canary.StickyKey).
const (
	StickyIP     = "ip"
	StickyHeader = "header"
	StickyCookie = "cookie"
)

var canaryKeys = []string{"function", "origin", "weight", "sticky"}

const canaryExample = `canary: {function: users-v2, weight: 5, sticky: "header:X-User-Id"}`

// Target names the canary's target as a route's is named
// (Route.OnTarget): turnout.FunctionTarget(Function), else Origin.
func (c Canary) Target() string {
	return Route{Function: c.Function, Origin: c.Origin}.OnTarget()
}

// StickyKey returns what Sticky names: kind StickyIP (name ""),
// StickyHeader or StickyCookie with the header's or cookie's name. An
// empty Sticky is StickyIP.
func (c Canary) StickyKey() (kind, name string) {
	kind, name, err := parseSticky(c.Sticky)
	if err != nil { // Parse rejects it; hand-built values fall back to the address
		return StickyIP, ""
	}
	return kind, name
}

// parseSticky parses "ip", "header:NAME" or "cookie:NAME"; "" is "ip".
func parseSticky(s string) (kind, name string, err error) {
	if s == "" || s == StickyIP {
		return StickyIP, "", nil
	}
	kind, name, ok := strings.Cut(s, ":")
	switch {
	case !ok || kind != StickyHeader && kind != StickyCookie:
		return "", "", fmt.Errorf("must be ip, header:NAME or cookie:NAME, like header:X-User-Id")
	case name == "":
		return "", "", fmt.Errorf("names no %s: write %s:NAME, like header:X-User-Id or cookie:session", kind, kind)
	case kind == StickyHeader && !isHeaderName(name):
		return "", "", fmt.Errorf("is not a header name: use letters, digits and '-', like header:X-User-Id")
	case kind == StickyCookie && !isCookieName(name):
		return "", "", fmt.Errorf("is not a cookie name: use letters, digits and !#$%%&'*+-.^_`|~, like cookie:session")
	}
	return kind, name, nil
}

// isCookieName reports whether s is an RFC 6265 cookie name (an RFC 7230
// token).
func isCookieName(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return s != ""
}

// canary decodes routes[i].canary (what), noting its target's position in rp.
func (d *decoder) canary(v *yaml.Node, what string, rp *routePos) *Canary {
	c := &Canary{}
	ok := d.fields(v, what, canaryKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "function":
			rp.canaryFunction = d.pos(v)
			c.Function, _ = d.name(v, what+".function")
		case "origin":
			rp.canaryOrigin = d.pos(v)
			c.Origin, _ = d.name(v, what+".origin")
		case "weight":
			rp.canaryWeight = d.pos(v)
			if w, ok := d.percent(v, what+".weight", "weight: %s"); ok {
				c.Weight = w
			}
		case "sticky":
			if s, ok := d.str(v, what+".sticky"); ok {
				if _, _, err := parseSticky(s); err != nil {
					d.errorf(v, "%s %q %v", what+".sticky", s, err)
					return
				}
				c.Sticky = s
			}
		}
	})
	if !ok {
		return nil
	}
	switch {
	case rp.canaryFunction == (Pos{}) && rp.canaryOrigin == (Pos{}):
		d.errorf(v, "%s has no target: add function: (or origin:) with the name of what serves the canary's share, like %s", what, canaryExample)
	case rp.canaryFunction != (Pos{}) && rp.canaryOrigin != (Pos{}):
		later := rp.canaryOrigin
		if before(rp.canaryOrigin, rp.canaryFunction) {
			later = rp.canaryFunction
		}
		d.errorAt(later, what+" sets both function and origin: a canary has one target, keep one")
	}
	return c
}

// percent decodes a share of a route's requests, a canary's weight or a
// rollout's step: a percent from 0 to 100, to 0.01, written as a plain
// number. like formats an example from a number ("weight: %s").
func (d *decoder) percent(v *yaml.Node, what, like string) (float64, bool) {
	return d.percentOf(v, what, like, splitPercent)
}

// A percentKind says how a percent is written and what it is a percent
// of, for percentOf's messages.
type percentKind struct {
	// sign accepts a trailing "%" ("10%" as well as 10): the shadow's
	// keys take it, as the issue writes sample: 10%; a canary's weight and
	// a rollout's steps do not.
	sign bool
	// of ends "it is ..." when the value is outside 0-100; resolution ends
	// "is finer than ..." when it has more than two decimals.
	of, resolution string
}

var splitPercent = percentKind{of: "the percent of the route's requests the canary serves", resolution: "the split's resolution of 0.01 %"}

// percentOf decodes a percent from 0 to 100, to 0.01, of kind k.
func (d *decoder) percentOf(v *yaml.Node, what, like string, k percentKind) (float64, bool) {
	s, ok := d.str(v, what)
	if !ok {
		return 0, false
	}
	n, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	n = strings.TrimSpace(n)
	if pct && !k.sign {
		d.errorf(v, "%s %q: write the percent as a plain number, without %%, like %s", what, s, fmt.Sprintf(like, n))
		return 0, false
	}
	f, err := strconv.ParseFloat(n, 64)
	number := v.Tag == "!!int" || v.Tag == "!!float" || pct && strings.Trim(n, "+-0123456789.") == ""
	switch {
	case err != nil || !number || math.IsNaN(f) || math.IsInf(f, 0):
		d.errorf(v, "%s must be a percent from 0 to 100, like %s, got %s", what, fmt.Sprintf(like, "5"), describe(v))
	case f < 0 || f > 100:
		d.errorf(v, "%s %s is outside 0-100: it is %s", what, s, k.of)
	case math.Abs(f*100-math.Round(f*100)) > 1e-6:
		d.errorf(v, "%s %s is finer than %s: round it to two decimals", what, s, k.resolution)
	default:
		return f, true
	}
	return 0, false
}

// validateCanaries checks that canaries name declared targets other than
// their route's own, and have a weight unless a rollout sets it.
func (d *decoder) validateCanaries(c *Config, origins map[string]bool) {
	fns := make(map[string]bool, len(c.Functions))
	names := make([]string, 0, len(c.Functions))
	for _, f := range c.Functions {
		fns[f.Name] = true
		names = append(names, f.Name)
	}
	for i, r := range c.Routes {
		cn, rp := r.Canary, d.routes[i]
		if cn == nil {
			continue
		}
		what := "routes[" + strconv.Itoa(i) + "].canary"
		if rp.canaryWeight == (Pos{}) && r.Rollout == nil {
			d.errorAt(rp.canary, fmt.Sprintf("%s has no weight: add the percent of the route's requests the canary serves, like %s (or add rollout: to move it step by step)", what, canaryExample))
		}
		switch {
		case cn.Origin != "" && !origins[cn.Origin]:
			d.unknownOrigin(rp.canaryOrigin, what+".origin", cn.Origin, c)
		case cn.Function != "" && !fns[cn.Function] && len(names) == 0:
			d.errorAt(rp.canaryFunction, fmt.Sprintf("%s.function: unknown function %q: no functions are declared; add it under functions:, like %s", what, cn.Function, functionExampleHosted))
		case cn.Function != "" && !fns[cn.Function]:
			d.errorAt(rp.canaryFunction, fmt.Sprintf("%s.function: unknown function %q: declared functions are %s", what, cn.Function, nameList(names)))
		case cn.Origin != "" && cn.Origin == r.Origin:
			d.errorAt(rp.canaryOrigin, fmt.Sprintf("%s.origin %q is the route's own target: a canary is a second target; name another origin or function, or remove canary", what, cn.Origin))
		case cn.Function != "" && cn.Function == r.Function:
			d.errorAt(rp.canaryFunction, fmt.Sprintf("%s.function %q is the route's own target: a canary is a second target (a new version is a new function); name another function or origin, or remove canary", what, cn.Function))
		}
	}
}
