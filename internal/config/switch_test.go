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
