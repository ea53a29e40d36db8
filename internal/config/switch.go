package config

import (
	"strconv"
	"strings"

	"github.com/turnout/turnout"
)

// The two targets of a route, in the words `turnout status`, the admin API
// and the dashboard use (turnout.RouteStatus): an origin by its name
// ("legacy"), a function as turnout.FunctionTarget ("function:NAME").

// OnTarget names what serves r when it is on:
// turnout.FunctionTarget(r.Function) for a function route, else r.Origin.
func (r Route) OnTarget() string {
	if r.Function != "" {
		return turnout.FunctionTarget(r.Function)
	}
	return r.Origin
}

// OffTarget names the origin that serves r when it is switched off: its
// fallback, else legacy, the config's LegacyOrigin (which callers look up
// once for all routes); "" when neither is known.
func (r Route) OffTarget(legacy string) string {
	if r.Fallback != "" {
		return r.Fallback
	}
	return legacy
}

// CanSwitchOff reports whether switching r off sends it somewhere else.
// A route whose target is already where off would send it (the catch-all
// on the legacy origin, a route whose fallback is its own origin) has
// nowhere else to go, unless a canary serves a share of it: off sends that
// share back too.
func (r Route) CanSwitchOff(legacy string) bool {
	off := r.OffTarget(legacy)
	return off != "" && (off != r.OnTarget() || r.Canary != nil && r.Canary.Weight > 0)
}

// Status is r as `turnout status`, the admin API and the dashboard show it,
// from its configuration: where it goes now (Target) and when switched on
// or off. legacy is the config's LegacyOrigin. The serving node adds the
// breaker state, which only it knows.
func (r Route) Status(legacy string) turnout.RouteStatus {
	rs := turnout.RouteStatus{Match: r.Match, Target: r.OnTarget(), WhenOn: r.OnTarget(), WhenOff: r.OffTarget(legacy),
		Fallback: r.Fallback, Off: r.Off, CanSwitchOff: r.CanSwitchOff(legacy)}
	if r.Off {
		rs.Target = rs.WhenOff
	}
	if c := r.Canary; c != nil {
		rs.Canary, rs.CanaryWeight = c.Origin, c.Weight
		if c.Function != "" {
			rs.Canary = turnout.FunctionTarget(c.Function)
		}
	}
	switch {
	case !r.Off && r.Canary != nil && r.Canary.Weight > 0:
		rs.Stage = turnout.StageCanary + " " + strconv.FormatFloat(r.Canary.Weight, 'f', -1, 64) + "%"
	case !r.Off && r.Shadow != nil:
		rs.Stage = turnout.StageShadow
	case rs.Target == legacy || legacy == "" && !strings.HasPrefix(rs.Target, "function:"):
		rs.Stage = turnout.StageLegacy
	default:
		rs.Stage = turnout.StageMigrated
	}
	return rs
}
