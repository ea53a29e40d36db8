package fnhost

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/testkit"
)

// BenchmarkInvokeWarm measures one warm invocation of hello-v2, in
// sequence: the Runtime API round trip (/next answered, /response read)
// plus the function's own work. p50-µs is the median.
func BenchmarkInvokeWarm(b *testing.B) {
	h := newHost(b, Options{}, fnConfig("hello", "hello-v2"))
	ev := []byte(`{"version":"2.0","routeKey":"GET /hello/{name}","rawPath":"/hello/ada","pathParameters":{"name":"ada"}}`)
	req := invoke.Request{Function: "hello", Payload: ev}
	if _, err := h.Invoke(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := h.Invoke(context.Background(), req)
		times = append(times, time.Since(start))
		if err != nil || resp.FunctionError != "" {
			b.Fatal(err, string(resp.Payload))
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkColdStart measures a cold start of hello-v2: spawn to its first
// /next (ms/start), next to the time the same binary takes to start and
// exit when it is not a Lambda runtime (exec-ms: the process's own start),
// and the instance's teardown (stop-ms: SIGTERM until it and everything it
// started are gone, its cgroup removed), for each isolation.
func BenchmarkColdStart(b *testing.B) {
	for _, iso := range []Isolation{IsolationCgroup, IsolationProcessGroup} {
		b.Run(string(iso), func(b *testing.B) {
			if iso == IsolationCgroup && CgroupAvailable() != nil {
				b.Fatalf("cgroup isolation unavailable here: %v", CgroupAvailable())
			}
			benchColdStart(b, iso)
		})
	}
}

func benchColdStart(b *testing.B, iso Isolation) {
	h := newHost(b, Options{Isolation: iso}, fnConfig("hello", "hello-v2"))
	fn, _ := h.function("hello")
	var initTotal, execTotal, stopTotal time.Duration
	bin := filepath.Join(binDir, "hello-v2")
	for i := 0; i < b.N; i++ {
		in, err := fn.start(1000 + i)
		if err != nil {
			b.Fatal(err)
		}
		initTotal += in.initDur
		b.StopTimer()
		stopStart := time.Now()
		in.stop(2 * time.Second)
		stopTotal += time.Since(stopStart)
		// Without AWS_LAMBDA_RUNTIME_API, lambda.Start exits at once.
		start := time.Now()
		cmd := exec.Command(bin)
		cmd.Run()
		execTotal += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(initTotal.Microseconds())/1000/float64(b.N), "ms/start")
	b.ReportMetric(float64(execTotal.Microseconds())/1000/float64(b.N), "exec-ms")
	b.ReportMetric(float64(stopTotal.Microseconds())/1000/float64(b.N), "stop-ms")
}

// BenchmarkTrackerScan measures one pass of the process-group fallback's
// tracker (every second, and before each kill) with 4 idle instances of
// the orphan function, each having left 2 children outside its group.
func BenchmarkTrackerScan(b *testing.B) {
	c := fnConfig("orphan", "orphan")
	c.MinInstances = 4
	h := newHost(b, Options{Isolation: IsolationProcessGroup}, c)
	fn, _ := h.function("orphan")
	testkit.Eventually(b, 10*time.Second, "4 warm instances", func() bool { return statsOf(h, "orphan").Idle == 4 })
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); invokeOK(b, h, "orphan", `{"setsid":1,"double_fork":1}`) }()
	}
	wg.Wait()
	t := h.tracker()
	tracked := func() int {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.scan()
		n := 0
		for _, rec := range t.insts {
			n += len(rec)
		}
		return n
	}
	// A double-forked child is re-parented to the test process a moment
	// after the invocation returns; one scan may run before that (the next
	// one attributes it, as the tracker's one-second loop does in serve).
	testkit.Eventually(b, 10*time.Second, "8 descendants tracked", func() bool { return tracked() >= 8 })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t.mu.Lock()
		t.scan()
		t.mu.Unlock()
	}
	b.StopTimer()
	if n := tracked(); n < 8 || fn == nil {
		b.Fatalf("tracked %d descendants, want at least 8", n)
	}
}
