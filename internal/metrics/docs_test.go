package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestObservabilityDoc keeps the metrics table in docs/observability.md in
// step with the metrics this package defines: one row per family, with its
// labels, and no row for a family that does not exist.
func TestObservabilityDoc(t *testing.T) {
	raw, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(turnout_[a-z_]+)` \\| [a-z]+ \\| ([^|]*) \\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	documented := map[string][]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			var ls []string
			for _, l := range label.FindAllStringSubmatch(m[2], -1) {
				ls = append(ls, l[1])
			}
			documented[m[1]] = ls
		}
	}
	defined := map[string]bool{}
	for _, f := range slices.Concat(Families(), EdgeFamilies(), NodeFamilies()) {
		defined[f.Name] = true
		ls, ok := documented[f.Name]
		if !ok {
			t.Errorf("docs/observability.md has no row for %s: add it to the metrics table", f.Name)
			continue
		}
		want := slices.Sorted(slices.Values(f.Labels))
		if got := slices.Sorted(slices.Values(ls)); !slices.Equal(got, want) {
			t.Errorf("docs/observability.md: %s has labels %v, the metric %v", f.Name, got, want)
		}
	}
	for name := range documented {
		if !defined[name] {
			t.Errorf("docs/observability.md documents %s, which this package does not define", name)
		}
	}
}
