package config

import "testing"

func TestRouteTargets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		r         Route
		legacy    string
		on, off   string
		canSwitch bool
	}{
		{"function with fallback", Route{Function: "user", Fallback: "old"}, "legacy", "function:user", "old", true},
		{"function to legacy", Route{Function: "user"}, "legacy", "function:user", "legacy", true},
		{"new origin to legacy", Route{Origin: "users"}, "legacy", "users", "legacy", true},
		{"catch-all on legacy", Route{Match: "/", Origin: "legacy"}, "legacy", "legacy", "legacy", false},
		{"legacy with a canary's share", Route{Origin: "legacy", Canary: &Canary{Function: "user", Weight: 5}}, "legacy", "legacy", "legacy", true},
		{"legacy with a canary at 0", Route{Origin: "legacy", Canary: &Canary{Function: "user"}}, "legacy", "legacy", "legacy", false},
		{"fallback is its own origin", Route{Origin: "users", Fallback: "users"}, "legacy", "users", "users", false},
		{"no legacy known", Route{Origin: "users"}, "", "users", "", false},
	} {
		if got := tc.r.OnTarget(); got != tc.on {
			t.Errorf("%s: OnTarget = %q, want %q", tc.name, got, tc.on)
		}
		if got := tc.r.OffTarget(tc.legacy); got != tc.off {
			t.Errorf("%s: OffTarget = %q, want %q", tc.name, got, tc.off)
		}
		if got := tc.r.CanSwitchOff(tc.legacy); got != tc.canSwitch {
			t.Errorf("%s: CanSwitchOff = %v, want %v", tc.name, got, tc.canSwitch)
		}
	}
}

// TestRouteStage: where each route is in its migration, as status shows it.
func TestRouteStage(t *testing.T) {
	for _, tc := range []struct {
		name         string
		r            Route
		stage        string
		canary       string
		canaryWeight float64
	}{
		{"on the legacy origin", Route{Match: "/", Origin: "legacy"}, "legacy", "", 0},
		{"on a function", Route{Function: "user", Fallback: "legacy"}, "migrated", "", 0},
		{"on a new origin", Route{Origin: "users"}, "migrated", "", 0},
		{"a function switched off", Route{Function: "user", Off: true}, "legacy", "", 0},
		{"legacy with a canary function", Route{Origin: "legacy", Canary: &Canary{Function: "user", Weight: 5}}, "canary 5%", "function:user", 5},
		{"half a percent", Route{Origin: "legacy", Canary: &Canary{Origin: "users", Weight: 0.5}}, "canary 0.5%", "users", 0.5},
		{"a canary at 0", Route{Origin: "legacy", Canary: &Canary{Function: "user"}}, "legacy", "function:user", 0},
		{"a canary switched off with its route", Route{Function: "user", Off: true, Canary: &Canary{Function: "user2", Weight: 50}}, "legacy", "function:user2", 50},
		{"legacy with a shadow", Route{Origin: "legacy", Shadow: &Shadow{Function: "user"}}, "shadow", "", 0},
		{"a shadow and a canary at 0 (a gated rollout)", Route{Origin: "legacy", Shadow: &Shadow{Function: "user"}, Canary: &Canary{Function: "user"}}, "shadow", "function:user", 0},
		{"a shadow and a canary at 5%", Route{Origin: "legacy", Shadow: &Shadow{Function: "user"}, Canary: &Canary{Function: "user", Weight: 5}}, "canary 5%", "function:user", 5},
		{"a shadow on a route switched off", Route{Function: "user", Off: true, Shadow: &Shadow{Function: "user2"}}, "legacy", "", 0},
	} {
		rs := tc.r.Status("legacy")
		if rs.Stage != tc.stage || rs.Canary != tc.canary || rs.CanaryWeight != tc.canaryWeight {
			t.Errorf("%s: stage %q, canary %q at %v; want %q, %q at %v", tc.name, rs.Stage, rs.Canary, rs.CanaryWeight, tc.stage, tc.canary, tc.canaryWeight)
		}
	}
}
