package turnout

import "time"

// What a node reports about the table it serves: the gateway fills these
// from its active table, the admin API sends them as JSON (GET
// /api/v1/status), and `turnout status` and the dashboard read them. The
// JSON names are the admin API's; the dashboard's script reads them.

// RouteStatus is one route as served. Targets are origin names ("legacy")
// or "function:NAME" (FunctionTarget).
type RouteStatus struct {
	Match string `json:"match"`
	// Target is what serves the route now: WhenOff while it is off,
	// WhenOn otherwise.
	Target string `json:"target"`
	// WhenOn is what serves it switched on: where `route on` returns it
	// (config.Route.OnTarget).
	WhenOn string `json:"when_on"`
	// WhenOff is what serves it switched off: its fallback or the legacy
	// origin; "" when neither is known (config.Route.OffTarget).
	WhenOff  string `json:"when_off,omitempty"`
	Fallback string `json:"fallback,omitempty"`
	Off      bool   `json:"off,omitempty"`
	// Local is set on a route that is off on this node only, by `turnout
	// route off MATCH --local`, whatever the deployment says
	// (deploy.LocalSwitches).
	Local bool `json:"local,omitempty"`
	// CanSwitchOff is false for a route that has nowhere else to go: its
	// target is already where switching it off would send it
	// (config.Route.CanSwitchOff).
	CanSwitchOff bool `json:"can_switch_off"`
	// Breaker is the route's circuit breaker: closed, open or half-open;
	// "" without a fallback.
	Breaker string `json:"breaker,omitempty"`
	// Canary is the target that answers CanaryWeight percent of the
	// route's requests, "" without one.
	Canary       string  `json:"canary,omitempty"`
	CanaryWeight float64 `json:"canary_weight,omitempty"`
	// Stage is where the route is in its migration: StageLegacy,
	// StageShadow, StageCanary with its weight ("canary 5%"), or
	// StageMigrated.
	Stage string `json:"stage,omitempty"`
}

// A route's migration stage, as `turnout status` and the traffic table
// show it: still on the legacy origin (or back on it, switched off);
// answered by the legacy origin with a copy of its requests sent to the
// new target and compared (StageShadow); sending a share to a new target
// (StageCanary, followed by the share); or on its new target.
const (
	StageLegacy   = "legacy"
	StageShadow   = "shadow"
	StageCanary   = "canary"
	StageMigrated = "migrated"
)

// Targets describes where the route goes in both states, the current one
// first: "off → legacy; on → function:user". A route that has nowhere else
// to go and is on is described by its target alone.
func (r RouteStatus) Targets() string {
	switch {
	case r.Off:
		return "off → " + orNone(r.WhenOff) + "; on → " + r.WhenOn
	case r.CanSwitchOff:
		return "on → " + r.WhenOn + "; off → " + r.WhenOff
	}
	return r.Target
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// OriginStatus is one origin and the health of its instances.
type OriginStatus struct {
	Name      string           `json:"name"`
	Instances []InstanceStatus `json:"instances"`
}

// InstanceStatus is a snapshot of one origin instance.
type InstanceStatus struct {
	URL string `json:"url"`
	// Healthy is the active health-check verdict; always true without a
	// health check. Instances start healthy.
	Healthy bool `json:"healthy"`
	// Ejected is true while passive ejection skips the instance.
	Ejected bool `json:"ejected,omitempty"`
	// ConsecutiveFailures counts connect failures since the last successful
	// connection (the passive-ejection counter).
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
	// LastError is the most recent connect or health-check error, "" if none.
	LastError string `json:"last_error,omitempty"`
	// LastCheck is when the last active health check finished; zero without
	// one. The admin API does not send it.
	LastCheck time.Time `json:"-"`
}
