package bench

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkShadowOverhead measures what a shadow costs the requests it
// copies: GET /user/{id} on the example monolith (examples/legacy, its own
// process) through an in-process gateway, on a route without a shadow and
// on one copying every request (sample: 100%) to the example function
// (examples/functions/user, hosted by turnout), at a fixed rate, open loop
// (latency from each request's scheduled start, so queueing counts). The
// rounds alternate between the two routes, at 150 and at 300 requests a
// second. Reported: p50 and p99 of each, and p99 with the shadow over p99
// without (target: within 5 %).
//
//	go test -run '^$' -bench ShadowOverhead -benchtime 1x ./bench
func BenchmarkShadowOverhead(b *testing.B) {
	const (
		round  = 2 * time.Second
		rounds = 6
	)
	dir := b.TempDir()
	fnBin := buildExample(b, dir, "functions/user")
	n := startGateway(b, fmt.Sprintf(`origins: {legacy: {url: http://%s}}
functions:
  user: {handler: %s, concurrency: 4, min_instances: 4}
routes:
  - {match: "GET shadow.test/user/{id}", origin: legacy, shadow: {to: user, sample: 100%%}}
  - {match: /, origin: legacy}
`, startLegacy(b, dir), fnBin))
	for range 50 { // warm both routes, the pools and the function's instances
		n.get(b, "shadow.test", "/user/1")
		n.get(b, "", "/user/1")
	}
	// 150/s leaves the two cores half idle; at 300/s the shadow's own work
	// (the function's process, the comparison) competes with the primary.
	for _, rate := range []int{150, 300} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			lat := map[string][]time.Duration{}
			for b.Loop() {
				for r := range rounds {
					host := []string{"", "shadow.test"}[r%2]
					lat[host] = append(lat[host], openLoop(b, n, host, rate, round)...)
				}
			}
			q := func(ds []time.Duration, p float64) float64 {
				slices.Sort(ds)
				return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
			}
			off, on := lat[""], lat["shadow.test"]
			b.ReportMetric(q(off, 0.5), "p50-ms-off")
			b.ReportMetric(q(on, 0.5), "p50-ms-on")
			b.ReportMetric(q(off, 0.99), "p99-ms-off")
			b.ReportMetric(q(on, 0.99), "p99-ms-on")
			b.ReportMetric(q(on, 0.99)/q(off, 0.99), "p99-on/off")
		})
	}
}

// openLoop sends GET /user/{id} to host at rate per second for d, from 16
// workers, each request timed from when it was due.
func openLoop(b *testing.B, n *fnNode, host string, rate int, d time.Duration) []time.Duration {
	total := int(d.Seconds() * float64(rate))
	start := time.Now()
	var next atomic.Int64
	var mu sync.Mutex
	out := make([]time.Duration, 0, total)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
				time.Sleep(time.Until(due))
				req, _ := http.NewRequest("GET", n.public+"/user/1", nil)
				if host != "" {
					req.Host = host
				}
				resp, err := n.client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(due)
				mu.Lock()
				out = append(out, took)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}
