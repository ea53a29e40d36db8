package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/turnout/turnout/internal/route"
)

// validate runs the checks that relate values to each other: references to
// origins, unique token names, listener clashes, timeout ordering and route
// patterns. Each value has already been checked on its own while decoding.
func (d *decoder) validate(c *Config) {
	origins := make(map[string]bool, len(c.Origins))
	for _, o := range c.Origins {
		origins[o.Name] = true
	}
	if len(c.Origins) == 0 {
		d.errorAt(d.originsAt, `no origins: declare the legacy service turnout forwards to, like origins: {legacy: {url: "http://10.0.0.5:8080"}}`)
	}
	if c.Legacy != "" && !origins[c.Legacy] {
		d.unknownOrigin(d.legacyPos, "legacy", c.Legacy, c)
	}

	// Token names are the actor in the audit trail; two tokens sharing one
	// would make it lie.
	names := map[string]Pos{}
	for i, t := range c.Admin.Tokens {
		if t.Name == "" {
			continue
		}
		p := d.tokens[i].name
		if first, dup := names[t.Name]; dup {
			d.errorAt(p, fmt.Sprintf("duplicate token name %q: already used at %s; each token needs its own name, the actor recorded in the audit trail", t.Name, first))
			continue
		}
		names[t.Name] = p
	}

	if c.Admin.Listen != "" && sameListener(c.Admin.Listen, orDefault(c.Listen, defaultListen)) {
		d.errorAt(d.adminPos, fmt.Sprintf("admin.listen %q is the public listener: the admin API needs its own address, like the default %q", c.Admin.Listen, defaultAdminListen))
	} else if c.Admin.Listen == "" && c.Listen != "" && sameListener(c.Listen, defaultAdminListen) {
		d.errorAt(d.listenPos, fmt.Sprintf("listen %q is the default admin address: set admin.listen to another address", c.Listen))
	}

	for i, o := range c.Origins {
		h, hp := o.HealthCheck, d.health[i]
		if h.Path == "" {
			continue
		}
		interval, timeout := orDefault(h.Interval, defaultHealthInterval), orDefault(h.Timeout, defaultHealthTimeout)
		if timeout > interval {
			p, what := hp.timeout, fmt.Sprintf("timeout %s is longer than interval %s", timeout, interval)
			switch {
			case hp.timeout == (Pos{}):
				p, what = hp.interval, fmt.Sprintf("interval %s is shorter than the default timeout %s", interval, timeout)
			case hp.interval == (Pos{}):
				what = fmt.Sprintf("timeout %s is longer than the default interval %s", timeout, interval)
			}
			d.errorAt(p, fmt.Sprintf("origins.%s.health_check: %s, so probes would overlap: make the timeout at most the interval", o.Name, what))
		}
	}

	d.validateEdge(c)
	d.validateRoutes(c, origins)
	d.validateFunctionRoutes(c)
	d.validateCanaries(c, origins)
	d.validateRollouts(c)
	d.validateAuth(c)
	d.validateAPIKeys(c)
	d.validateShadows(c, origins)
	for i, r := range c.Routes {
		if r.FallbackReserve > 0 && r.Timeout > 0 && r.FallbackReserve >= r.Timeout {
			d.errorAt(r.Pos, fmt.Sprintf("routes[%d].fallback_reserve %s leaves the primary no time within timeout %s: make it shorter", i, r.FallbackReserve, r.Timeout))
		}
		if r.RateLimit != nil && r.RateLimit.Over == "spillover" && r.Fallback == "" {
			d.errorAt(r.Pos, fmt.Sprintf("routes[%d].rate_limit.over is spillover but the route has no fallback: add fallback: <origin>, or use over: reject", i))
		}
	}

	// A switched-off route without a fallback goes to the legacy origin, so
	// then it must be known. (Unmatched requests without a catch-all are 404s
	// and need no legacy origin.)
	needLegacy := false
	for _, r := range c.Routes {
		needLegacy = needLegacy || (r.Off || r.AutoRollback != nil) && r.Fallback == ""
	}
	if needLegacy && len(c.Origins) > 1 && c.LegacyOrigin() == "" {
		names := make([]string, len(c.Origins))
		for i, o := range c.Origins {
			names[i] = o.Name
		}
		d.errorAt(d.originsAt, fmt.Sprintf("cannot tell which origin is the legacy service, where switched-off routes without a fallback go: set legacy: to one of %s, or add a catch-all route {match: /, origin: <name>}", nameList(names)))
	}
}

func (d *decoder) validateRoutes(c *Config, origins map[string]bool) {
	patterns := make([]string, 0, len(c.Routes))
	index := make([]int, 0, len(c.Routes)) // patterns[j] is c.Routes[index[j]].Match
	for i, r := range c.Routes {
		rp := d.routes[i]
		if r.Origin != "" && !origins[r.Origin] {
			d.unknownOrigin(rp.origin, "routes["+strconv.Itoa(i)+"].origin", r.Origin, c)
		}
		if r.Fallback != "" && !origins[r.Fallback] {
			d.unknownOrigin(rp.fallback, "routes["+strconv.Itoa(i)+"].fallback", r.Fallback, c)
		}
		if r.Match != "" {
			patterns = append(patterns, r.Match)
			index = append(index, i)
		}
	}
	// Compile once: the table is kept on the Config so that serving it does
	// not register 10,000 patterns a second time.
	var perrs []*route.PatternError
	tab, err := c.RouteOptions().Compile(patterns)
	var ce *route.CompileError
	switch {
	case errors.As(err, &ce):
		perrs = ce.Errs
	case err == nil && len(patterns) == len(c.Routes):
		c.table = tab
	}
	for _, pe := range perrs {
		if pe.Index < 0 || pe.Index >= len(index) {
			continue
		}
		r := c.Routes[index[pe.Index]]
		if pe.Other < 0 || pe.Other >= len(index) {
			d.errorAt(r.MatchPos, oneLine(pe.Msg)+`; write [METHOD ][HOST]/path, like "GET /users/{id}" or "api.example.com/"`)
			continue
		}
		// Report at the later route, naming the earlier one.
		later, earlier := pe.Index, pe.Other
		if later < earlier {
			later, earlier = earlier, later
		}
		lr, er := c.Routes[index[later]], c.Routes[index[earlier]]
		if pe.CaseOnly {
			ci := fmt.Sprintf("once case is ignored (routing.case_insensitive is true at %s)", d.caseInsensitivePos)
			if _, why, ok := strings.Cut(pe.Msg, " once case is ignored: "); ok {
				d.errorAt(lr.MatchPos, fmt.Sprintf("conflicts with %q at %s %s: %s; remove one, or make one pattern more specific than the other", er.Match, er.MatchPos, ci, strings.TrimSuffix(oneLine(why), ".")))
			} else {
				d.errorAt(lr.MatchPos, fmt.Sprintf("route %q matches the same requests as %q at %s %s; remove one of them", lr.Match, er.Match, er.MatchPos, ci))
			}
			continue
		}
		if strings.HasPrefix(pe.Msg, "duplicate route") {
			if lr.Match != er.Match { // equal once canonical: "{p+}", host case
				d.errorAt(lr.MatchPos, fmt.Sprintf("duplicate route %q: the same pattern as %q at %s; remove one of them", lr.Match, er.Match, er.MatchPos))
			} else {
				d.errorAt(lr.MatchPos, fmt.Sprintf("duplicate route %q: already declared at %s; remove one of them", lr.Match, er.MatchPos))
			}
			continue
		}
		d.errorAt(lr.MatchPos, fmt.Sprintf("conflicts with %q at %s: %s; remove one, or make one pattern more specific than the other", er.Match, er.MatchPos, conflictReason(pe.Msg, patterns[pe.Index])))
	}
}

// conflictReason extracts ServeMux's explanation from route's
// `route "A" conflicts with "B": why`, falling back to the whole message.
func conflictReason(msg, pattern string) string {
	if rest, ok := strings.CutPrefix(msg, "route "+strconv.Quote(pattern)+" conflicts with "); ok {
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			if why, ok := strings.CutPrefix(rest[len(q):], ": "); ok {
				msg = why
			}
		}
	}
	return strings.TrimSuffix(oneLine(msg), ".")
}

// oneLine joins a multi-line message so that each error stays one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func (d *decoder) unknownOrigin(p Pos, what, name string, c *Config) {
	if len(c.Origins) == 0 {
		d.errorAt(p, fmt.Sprintf("%s names unknown origin %q: no origins are declared; declare it under origins", what, name))
		return
	}
	names := make([]string, len(c.Origins))
	for i, o := range c.Origins {
		names[i] = o.Name
	}
	msg := fmt.Sprintf("%s names unknown origin %q", what, name)
	if s := closest(name, names); s != "" {
		msg += fmt.Sprintf(": did you mean %q?", s)
	}
	d.errorAt(p, msg+" (declared origins: "+nameList(names)+")")
}

// nameList joins names for a message, eliding past ten.
func nameList(names []string) string {
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// sameListener reports whether two listen addresses would bind the same
// port on overlapping interfaces.
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}
