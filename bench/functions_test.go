package bench

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/gateway"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
)

// fnNode is a gateway with one function route (examples/functions/hello-v2,
// an unmodified aws-lambda-go binary) and one origin route doing the same
// work, so the two paths can be compared request for request.
type fnNode struct {
	public string
	client *http.Client
}

func newFnNode(b *testing.B, concurrency int) *fnNode {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "hello-v2")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/functions/hello-v2").CombinedOutput(); err != nil {
		b.Fatalf("build hello-v2: %v\n%s", err, out)
	}
	quiet := slog.New(slog.DiscardHandler)
	host, err := fnhost.New(fnhost.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	gw := gateway.New(gateway.Options{Metrics: metrics.New(), Logger: quiet, Functions: &invoke.Router{Hosted: host}})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"message":"hello from an origin","path":%q}`, r.URL.Path)
	}))
	src := fmt.Sprintf(`origins: {legacy: {url: %s}}
functions:
  hello: {handler: %s, concurrency: %d, min_instances: %d}
routes:
  - {match: "GET /fn/{name}", function: hello}
  - {match: "GET /origin/{name}", origin: legacy}
`, origin.URL, bin, concurrency, concurrency)
	cfg, err := config.Parse("bench.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	if err := gw.Apply(1, cfg); err != nil {
		b.Fatal(err)
	}
	ps := httptest.NewServer(gw)
	b.Cleanup(func() { ps.Close(); gw.Close(); host.Close(); origin.Close() })
	n := &fnNode{public: ps.URL, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for i := 0; i < 2*concurrency; i++ { // warm every instance
		n.get(b, "/fn/warm")
	}
	return n
}

func (n *fnNode) get(b *testing.B, path string) {
	resp, err := n.client.Get(n.public + path)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[int(float64(len(ds)-1)*p)]
}

// BenchmarkWarmPath compares a warm function route with an origin route
// doing the same work, one request at a time. The function path's added
// latency is p50(function) − p50(origin) (target ≤ 300 µs).
func BenchmarkWarmPath(b *testing.B) {
	n := newFnNode(b, 1)
	for _, path := range []string{"/origin/ada", "/fn/ada"} {
		b.Run(path[1:4], func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				n.get(b, path)
				ds = append(ds, time.Since(start))
			}
			b.ReportMetric(float64(percentile(ds, 0.5).Microseconds()), "µs-p50")
			b.ReportMetric(float64(percentile(ds, 0.99).Microseconds()), "µs-p99")
		})
	}
}

// BenchmarkFunctionThroughput drives the function route with 1, 4 and 16
// clients against as many warm instances and reports requests per second.
func BenchmarkFunctionThroughput(b *testing.B) {
	for _, c := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			n := newFnNode(b, c)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := (b.N + c - 1) / c
			for w := 0; w < c; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						n.get(b, "/fn/load")
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*c)/time.Since(start).Seconds(), "req/s")
		})
	}
}
