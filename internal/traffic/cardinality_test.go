package traffic

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/turnout/turnout"
)

// TestCardinalityIsBounded observes a million distinct IDs that inference
// collapses, then a million random words it cannot tell from endpoint names,
// and checks the table keeps at most MaxTemplates rows and a bounded heap.
func TestCardinalityIsBounded(t *testing.T) {
	const n = 1_000_000
	const maxHeapGrowth = 32 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	tb := NewTable(Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	o := &turnout.Observation{Method: "GET", Host: "api.example.com", Status: 200, Outcome: turnout.Served, Target: "origin:legacy", RequestBytes: -1}
	word := make([]byte, 10)
	for i := range n {
		o.Time = t0.Add(time.Duration(i) * time.Millisecond)
		o.Duration = time.Duration(rng.IntN(1e9))
		o.Bytes = int64(rng.IntN(1 << 20))
		o.Path = "/user/" + strconv.Itoa(i) + "/orders"
		tb.Observe(o)

		for j := range word {
			word[j] = byte('a' + rng.IntN(26))
		}
		o.Path = "/wiki/" + string(word)
		o.Route = "/wiki/" + string(word[:2]) // many distinct routes too: bounded per row
		tb.Observe(o)
		o.Route = ""
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	rep := tb.Report(Query{Limit: 3})
	runtime.KeepAlive(tb)

	if rep.Total != 2*n {
		t.Errorf("total = %d, want %d", rep.Total, 2*n)
	}
	if rep.Templates > DefaultMaxTemplates {
		t.Errorf("table holds %d templates, want ≤ %d", rep.Templates, DefaultMaxTemplates)
	}
	if want := int64(n - (DefaultMaxTemplates - 1)); rep.Overflow != want {
		t.Errorf("overflow = %d, want %d (every word past the limit)", rep.Overflow, want)
	}
	if top := rep.Rows[0]; top.Template != "/user/{id}/orders" || top.Calls != n {
		t.Errorf("top row = %q × %d, want /user/{id}/orders × %d", top.Template, top.Calls, n)
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap growth for %d rows: %.1f MiB", rep.Templates, float64(growth)/(1<<20))
	if growth > maxHeapGrowth {
		t.Errorf("heap grew by %d bytes, want < %d", growth, maxHeapGrowth)
	}
}
