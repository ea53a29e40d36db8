package turnout

import (
	"encoding/json"
	"testing"
	"time"
)

// The admin API sends these types and the dashboard's script reads them:
// their JSON must not change shape.
func TestStatusJSON(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{RouteStatus{Match: "GET /user/{id}", Target: "legacy", WhenOn: "function:user", WhenOff: "legacy", Fallback: "legacy", Off: true, CanSwitchOff: true, Breaker: "half-open"},
			`{"match":"GET /user/{id}","target":"legacy","when_on":"function:user","when_off":"legacy","fallback":"legacy","off":true,"can_switch_off":true,"breaker":"half-open"}`},
		{RouteStatus{Match: "/", Target: "legacy", WhenOn: "legacy"},
			`{"match":"/","target":"legacy","when_on":"legacy","can_switch_off":false}`},
		{RouteStatus{Match: "/api/", Target: "legacy", WhenOn: "legacy", Canary: "function:api", CanaryWeight: 5, Stage: "canary 5%"},
			`{"match":"/api/","target":"legacy","when_on":"legacy","can_switch_off":false,"canary":"function:api","canary_weight":5,"stage":"canary 5%"}`},
		{OriginStatus{Name: "legacy", Instances: []InstanceStatus{
			{URL: "http://a", Healthy: true, LastCheck: time.Unix(1, 0)},
			{URL: "http://b", Ejected: true, ConsecutiveFailures: 5, LastError: "refused"},
		}}, `{"name":"legacy","instances":[{"url":"http://a","healthy":true},{"url":"http://b","healthy":false,"ejected":true,"consecutive_failures":5,"last_error":"refused"}]}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.v)
		if err != nil || string(b) != tt.want {
			t.Errorf("json(%+v) = %s, %v\nwant %s", tt.v, b, err, tt.want)
		}
	}
}

func TestRouteStatusTargets(t *testing.T) {
	tests := []struct {
		r    RouteStatus
		want string
	}{
		{RouteStatus{Target: "users", WhenOn: "users", WhenOff: "legacy", CanSwitchOff: true}, "on → users; off → legacy"},
		{RouteStatus{Target: "legacy", WhenOn: "function:user", WhenOff: "legacy", Off: true, CanSwitchOff: true}, "off → legacy; on → function:user"},
		{RouteStatus{Target: "", WhenOn: "function:user", Off: true}, "off → (none); on → function:user"},
		{RouteStatus{Target: "legacy", WhenOn: "legacy", WhenOff: "legacy"}, "legacy"},
	}
	for _, tt := range tests {
		if got := tt.r.Targets(); got != tt.want {
			t.Errorf("%+v.Targets() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

// The outcome names are metric label values, access-log and observation
// fields, and what dashboards and alerts select on.
func TestOutcomeNames(t *testing.T) {
	want := []string{"served", "fallback", "throttled", "breaker_open", "rejected", "error", "client_closed"}
	if NumOutcomes != len(want) {
		t.Fatalf("NumOutcomes = %d, want %d", NumOutcomes, len(want))
	}
	for i, w := range want {
		if got := Outcome(i).String(); got != w {
			t.Errorf("Outcome(%d) = %q, want %q", i, got, w)
		}
	}
	if got := Outcome(NumOutcomes).String(); got != "error" {
		t.Errorf("out of range = %q, want error", got)
	}
}

func TestTargetNames(t *testing.T) {
	if got := OriginTarget("legacy"); got != "origin:legacy" {
		t.Errorf("OriginTarget = %q", got)
	}
	if got := FunctionTarget("user"); got != "function:user" {
		t.Errorf("FunctionTarget = %q", got)
	}
}

// Reasons shared with outcomes are spelled the same.
func TestReasonNames(t *testing.T) {
	if ReasonBreakerOpen != BreakerOpen.String() || ReasonThrottled != Throttled.String() || ReasonClientClosed != ClientClosed.String() {
		t.Error("a reason named after an outcome is spelled differently")
	}
	if got := OriginReason("connect"); got != "origin_connect" {
		t.Errorf("OriginReason = %q", got)
	}
}
