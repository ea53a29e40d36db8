package gateway

import (
	"regexp"
	"testing"
)

// A new request id is 32 lowercase hex digits, different each time, and
// costs one allocation with the header slice that carries it.
func TestNewRequestID(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for range 1000 {
		v := newRequestID()
		if len(v) != 1 || !hex32.MatchString(v[0]) || seen[v[0]] {
			t.Fatalf("newRequestID() = %q (seen before: %v)", v, seen[v[0]])
		}
		seen[v[0]] = true
	}
	var keep []string
	if n := testing.AllocsPerRun(100, func() { keep = newRequestID() }); n != 1 {
		t.Errorf("newRequestID allocates %v times, want 1", n)
	}
	_ = keep
}
