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
	tab, err := Compile(routes10k())
	if err != nil {
		b.Fatal(err)
	}
	paths := []string{"/svc1234/items/42/history", "/svc7/items/9", "/svc2499/items", "/not/a/route"}
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
