package route

import (
	"fmt"
	"testing"
)

// routes10k is a realistic large table: 2,500 resources with a collection,
// an item, a sub-collection and a write route each, plus a catch-all.
func routes10k() []string {
	ps := make([]string, 0, 10001)
	for i := 0; i < 2500; i++ {
		ps = append(ps,
			fmt.Sprintf("GET /svc%d/items", i),
			fmt.Sprintf("GET /svc%d/items/{id}", i),
			fmt.Sprintf("GET /svc%d/items/{id}/history", i),
			fmt.Sprintf("POST /svc%d/items", i),
		)
	}
	return append(ps, "/")
}

// BenchmarkMatch10k measures one match among 10,000 routes (target ≤ 1 µs),
// including normalising the path.
func BenchmarkMatch10k(b *testing.B) {
	benchMatch(b, Options{}, []string{"/svc1234/items/42/history", "/svc7/items/9", "/svc2499/items", "/not/a/route"})
}

// BenchmarkMatch10kCaseInsensitive is BenchmarkMatch10k on a table that
// ignores case (routing.case_insensitive), for the same paths as the client
// sends them in lower case, and in mixed and upper case, which are folded
// on the stack.
func BenchmarkMatch10kCaseInsensitive(b *testing.B) {
	b.Run("lower", func(b *testing.B) {
		benchMatch(b, Options{CaseInsensitive: true}, []string{"/svc1234/items/42/history", "/svc7/items/9", "/svc2499/items", "/not/a/route"})
	})
	b.Run("mixed", func(b *testing.B) {
		benchMatch(b, Options{CaseInsensitive: true}, []string{"/Svc1234/Items/42/History", "/SVC7/ITEMS/9", "/svc2499/Items", "/Not/A/Route"})
	})
}

func benchMatch(b *testing.B, o Options, paths []string) {
	tab, err := o.Compile(routes10k())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]string, 0, 4)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := NormalizePath(paths[i&3])
		if err != nil {
			b.Fatal(err)
		}
		if _, _, ok := tab.Match("", "GET", p, buf[:0]); !ok {
			b.Fatal("no match")
		}
	}
}

// BenchmarkCompile10k measures compiling a 10,000-route table, conflict
// checks included.
func BenchmarkCompile10k(b *testing.B) {
	ps := routes10k()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(ps); err != nil {
			b.Fatal(err)
		}
	}
}
