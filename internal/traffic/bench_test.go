package traffic

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnout/turnout"
)

var benchPaths = []string{
	"/api/v1/users/42/orders",
	"/api/v1/orders/550e8400-e29b-41d4-a716-446655440000/items",
	"/static/app.3f9a1c2b.js",
	"/reset/dGhpcyBpcyBhIHRva2Vu",
	"/search",
}

var sink string

func BenchmarkTemplate(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = Template(benchPaths[i%len(benchPaths)])
	}
}

// benchObservation is a request of a template the table already holds,
// with a realistic query and duration.
func benchObservation() *turnout.Observation {
	return &turnout.Observation{
		Time: time.Now(), Method: "GET", Host: "api.example.com",
		Path: "/api/v1/users/42/orders", RawQuery: "page=2&sort=asc&limit=50",
		Route: "/api/v1/users/{id}/orders", Target: "function:orders", Outcome: turnout.Served,
		Status: 200, Bytes: 5120, RequestBytes: 0, Duration: 3 * time.Millisecond,
	}
}

func BenchmarkObserve(b *testing.B) {
	tb := NewTable(Options{})
	o := benchObservation()
	for i := range 1000 { // a table with other rows in it
		tb.Observe(&turnout.Observation{Path: "/warm/" + strconv.Itoa(i) + "/x" + strconv.Itoa(i)})
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o.Duration = time.Duration(1+i%50) * time.Millisecond
		tb.Observe(o)
	}
}

// BenchmarkObserveParallel observes from GOMAXPROCS goroutines, half on
// one hot template and half spread over 64 others.
func BenchmarkObserveParallel(b *testing.B) {
	tb := NewTable(Options{})
	paths := make([]string, 64)
	for i := range paths {
		paths[i] = "/api/v1/r" + strconv.Itoa(i) + "/42"
	}
	var id atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		o := benchObservation()
		n := int(id.Add(1))
		for i := n; pb.Next(); i++ {
			if i%2 == 0 {
				o.Path = paths[i%len(paths)]
			} else {
				o.Path = "/api/v1/users/42/orders"
			}
			tb.Observe(o)
		}
	})
}
