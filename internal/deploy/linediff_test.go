package deploy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	lines := func(n int, edit map[int]string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			if s, ok := edit[i]; ok {
				b.WriteString(s)
				continue
			}
			b.WriteString("line ")
			b.WriteString(string(rune('a' + i - 1)))
			b.WriteString("\n")
		}
		return b.String()
	}
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{"equal", "x\n", "x\n", ""},
		{"from empty", "", "a\nb\n", "--- A\n+++ B\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"to empty", "a\n", "", "--- A\n+++ B\n@@ -1 +0,0 @@\n-a\n"},
		{
			"one change in the middle",
			lines(10, nil),
			lines(10, map[int]string{5: "changed\n"}),
			"--- A\n+++ B\n@@ -2,7 +2,7 @@\n line b\n line c\n line d\n-line e\n+changed\n line f\n line g\n line h\n",
		},
		{
			"two far apart changes make two hunks",
			lines(20, nil),
			lines(20, map[int]string{2: "", 18: "line r\nnew\n"}),
			"--- A\n+++ B\n@@ -1,5 +1,4 @@\n line a\n-line b\n line c\n line d\n line e\n" +
				"@@ -16,5 +15,6 @@\n line p\n line q\n line r\n+new\n line s\n line t\n",
		},
		{
			"close changes merge",
			lines(12, nil),
			lines(12, map[int]string{3: "X\n", 8: "Y\n"}),
			"--- A\n+++ B\n@@ -1,11 +1,11 @@\n line a\n line b\n-line c\n+X\n line d\n line e\n line f\n line g\n-line h\n+Y\n line i\n line j\n line k\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnifiedDiff("A", "B", tt.a, tt.b); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// BenchmarkUnifiedDiff diffs two 2,000-line configs that differ in a line
// every 50, the size the issue that replaced the LCS table named (#14).
func BenchmarkUnifiedDiff(b *testing.B) {
	var x, y strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&x, "  - path: /api/v1/resource%d\n", i)
		if i%50 == 25 {
			fmt.Fprintf(&y, "  - path: /api/v2/resource%d\n", i)
			continue
		}
		fmt.Fprintf(&y, "  - path: /api/v1/resource%d\n", i)
	}
	a, c := x.String(), y.String()
	b.ReportAllocs()
	for b.Loop() {
		UnifiedDiff("a", "b", a, c)
	}
}

// TestDiffLinesRoundTrip checks that the edit script, whatever equal-cost
// alignment the Myers diff picks, rebuilds both sides and keeps every line
// the two sides share at the start and end as context.
func TestDiffLinesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	words := []string{"", "a", "b", "c", "  x: 1", "  y: 2"}
	side := func() []string {
		s := make([]string, rng.IntN(40))
		for i := range s {
			s[i] = words[rng.IntN(len(words))]
		}
		return s
	}
	for range 500 {
		a, b := side(), side()
		var gotA, gotB []string
		for _, op := range diffLines(a, b) {
			if op.kind != '+' {
				gotA = append(gotA, op.text)
			}
			if op.kind != '-' {
				gotB = append(gotB, op.text)
			}
		}
		if !slices.Equal(gotA, a) || !slices.Equal(gotB, b) {
			t.Fatalf("diffLines(%q, %q) rebuilds %q, %q", a, b, gotA, gotB)
		}
	}
}
