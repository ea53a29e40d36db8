package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/gateway"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/shadow"
)

// fnNode is a gateway in front of the same endpoint twice: GET /user/{id}
// on the example monolith (examples/legacy, its own process) and on the
// example function (examples/functions/user, an unmodified aws-lambda-go
// binary hosted by turnout), so the two paths do the same work.
type fnNode struct {
	public string
	client *http.Client
	// bins are the executables behind each Host: the legacy monolith's
	// ("") and the function's ("fn.test"), whose processes' CPU is counted.
	bins map[string]string
}

func buildExample(b *testing.B, dir, pkg string) string {
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/"+pkg).CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startLegacy builds examples/legacy, runs it on a free loopback port until
// the benchmark ends, and returns its address once it accepts connections.
func startLegacy(b *testing.B, dir string) string {
	addr, _ := runLegacy(b, dir)
	return addr
}

// runLegacy is startLegacy that also returns the executable it runs.
func runLegacy(b *testing.B, dir string) (addr, bin string) {
	bin = buildExample(b, dir, "legacy")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-listen", addr)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 50; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, bin
}

// startGateway serves src (a config) from an in-process gateway with a
// hosted-function pool and a shadow report, as turnout serve wires them.
func startGateway(b *testing.B, src string) *fnNode {
	quiet := slog.New(slog.DiscardHandler)
	host, err := fnhost.New(fnhost.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	gw := gateway.New(gateway.Options{Metrics: metrics.New(), Logger: quiet, Functions: &invoke.Router{Hosted: host}, Shadow: &shadow.Report{}})
	cfg, err := config.Parse("bench.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	if err := gw.Apply(1, cfg); err != nil {
		b.Fatal(err)
	}
	ps := httptest.NewServer(gw)
	b.Cleanup(func() { ps.Close(); gw.Close(); host.Close() })
	return &fnNode{public: ps.URL, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

func newFnNode(b *testing.B, concurrency int) *fnNode {
	b.Helper()
	dir := b.TempDir()
	fnBin := buildExample(b, dir, "functions/user")
	legacyAddr, legacyBin := runLegacy(b, dir)
	n := startGateway(b, fmt.Sprintf(`origins: {legacy: {url: http://%s}}
functions:
  user: {handler: %s, concurrency: %d, min_instances: %d}
routes:
  - {match: "GET fn.test/user/{id}", function: user}
  - {match: /, origin: legacy}
`, legacyAddr, fnBin, concurrency, concurrency))
	n.bins = map[string]string{"": legacyBin, "fn.test": fnBin}
	for i := 0; i < 2*concurrency; i++ { // warm every instance
		n.get(b, "fn.test", "/user/1")
		n.get(b, "", "/user/1")
	}
	return n
}

// get requests path with the given Host ("" for the default).
func (n *fnNode) get(b *testing.B, host, path string) {
	req, _ := http.NewRequest("GET", n.public+path, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := n.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("GET %s%s: %d", host, path, resp.StatusCode)
	}
}

// cpuMeter reports CPU time per request: the benchmark process's (load
// generator, gateway and function host together) and that of the
// processes behind the route (the legacy monolith, or the function's
// instances), so that runs on a busy machine can be compared by what the
// path costs rather than by how fast it went.
type cpuMeter struct {
	bin           string
	self, backend time.Duration
}

func (n *fnNode) startCPU(host string) *cpuMeter {
	m := &cpuMeter{bin: n.bins[host]}
	m.self, m.backend = selfCPU(), childrenCPU(m.bin)
	return m
}

func (m *cpuMeter) report(b *testing.B, requests int) {
	self, backend := selfCPU()-m.self, childrenCPU(m.bin)-m.backend
	b.ReportMetric(float64(self.Microseconds())/float64(requests), "self-cpu-µs/req")
	b.ReportMetric(float64(backend.Microseconds())/float64(requests), "backend-cpu-µs/req")
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childrenCPU is the CPU time this process's running children started
// from bin have used, summed over their threads (/proc/PID/task/*/schedstat).
func childrenCPU(bin string) time.Duration {
	var total time.Duration
	self := strconv.Itoa(os.Getpid())
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		stat, err := os.ReadFile(p + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != self {
			continue
		}
		if cmd, _ := os.ReadFile(p + "/cmdline"); string(bytes.SplitN(cmd, []byte{0}, 2)[0]) != bin {
			continue
		}
		tasks, _ := filepath.Glob(p + "/task/[0-9]*/schedstat")
		for _, t := range tasks {
			if b, err := os.ReadFile(t); err == nil {
				if ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64); err == nil {
					total += time.Duration(ns)
				}
			}
		}
	}
	return total
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[int(float64(len(ds)-1)*p)]
}

// BenchmarkWarmPath compares GET /user/{id} served by a warm function with
// the same endpoint on the legacy origin, one request at a time. The
// function path's added latency is p50(function) − p50(origin) (issue 20's target: ≤ 100 µs).
func BenchmarkWarmPath(b *testing.B) {
	n := newFnNode(b, 1)
	for _, host := range []string{"", "fn.test"} {
		name := map[string]string{"": "origin", "fn.test": "function"}[host]
		b.Run(name, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			cpu := n.startCPU(host)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				n.get(b, host, "/user/42")
				ds = append(ds, time.Since(start))
			}
			cpu.report(b, b.N)
			b.ReportMetric(float64(percentile(ds, 0.5).Microseconds()), "µs-p50")
			b.ReportMetric(float64(percentile(ds, 0.99).Microseconds()), "µs-p99")
		})
	}
	// paired: the two routes one request each in turn, so that both see
	// the same moment of a shared machine (the runs above are seconds
	// apart, and a busy neighbour moves one and not the other).
	b.Run("paired", func(b *testing.B) {
		origin := make([]time.Duration, 0, b.N)
		function := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			start := time.Now()
			n.get(b, "", "/user/42")
			mid := time.Now()
			n.get(b, "fn.test", "/user/42")
			origin = append(origin, mid.Sub(start))
			function = append(function, time.Since(mid))
		}
		o, f := percentile(origin, 0.5), percentile(function, 0.5)
		b.ReportMetric(float64(o.Microseconds()), "origin-µs-p50")
		b.ReportMetric(float64(f.Microseconds()), "function-µs-p50")
		b.ReportMetric(float64((f - o).Microseconds()), "added-µs-p50")
	})
}

// BenchmarkFunctionThroughput drives GET /user/{id} with 1, 4, 8 and 16
// clients against as many warm instances and reports requests per second,
// on the function route and, in the same run, on the origin route (issue
// 20's target: the function route at 8 clients ≥ 0.6× the origin route).
func BenchmarkFunctionThroughput(b *testing.B) {
	for _, c := range []int{1, 4, 8, 16} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			n := newFnNode(b, c)
			for _, host := range []string{"", "fn.test"} {
				name := map[string]string{"": "origin", "fn.test": "function"}[host]
				b.Run(name, func(b *testing.B) {
					b.ResetTimer()
					cpu := n.startCPU(host)
					start := time.Now()
					var wg sync.WaitGroup
					per := (b.N + c - 1) / c
					for w := 0; w < c; w++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := 0; i < per; i++ {
								n.get(b, host, "/user/7")
							}
						}()
					}
					wg.Wait()
					b.ReportMetric(float64(per*c)/time.Since(start).Seconds(), "req/s")
					cpu.report(b, per*c)
				})
			}
		})
	}
}

// BenchmarkFallback measures GET /user/{id} answered by the legacy process
// three ways: directly (an origin route), replayed after the function
// failed fast (a malformed response; breaker off so every request tries the
// function; a panicking aws-lambda-go process exits, so each failure would
// add a cold start),
// and with the route's breaker open (the function is not called at all;
// target: within 5 % of direct).
func BenchmarkFallback(b *testing.B) {
	dir := b.TempDir()
	panicBin, malformedBin := buildExample(b, dir, "functions/panic"), buildExample(b, dir, "functions/malformed")
	n := startGateway(b, fmt.Sprintf(`origins: {legacy: {url: http://%s}}
functions:
  broken: {handler: %s, min_instances: 1}
  malformed: {handler: %s, min_instances: 1}
routes:
  - {match: "GET replay.test/user/{id}", function: malformed, fallback: legacy, circuit_breaker: false}
  - {match: "GET open.test/user/{id}", function: broken, fallback: legacy}
  - {match: /, origin: legacy}
`, startLegacy(b, dir), panicBin, malformedBin))
	for i := 0; i < 10; i++ { // open the breaker, warm everything
		n.get(b, "open.test", "/user/1")
		n.get(b, "replay.test", "/user/1")
		n.get(b, "", "/user/1")
	}
	for _, tc := range []struct{ name, host string }{{"direct", ""}, {"breaker-open", "open.test"}, {"replayed", "replay.test"}} {
		b.Run(tc.name, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				n.get(b, tc.host, "/user/42")
				ds = append(ds, time.Since(start))
			}
			b.ReportMetric(float64(percentile(ds, 0.5).Microseconds()), "µs-p50")
			b.ReportMetric(float64(percentile(ds, 0.99).Microseconds()), "µs-p99")
		})
	}
}
