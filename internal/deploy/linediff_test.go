package deploy

import (
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
