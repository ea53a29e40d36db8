package fnhost

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/invoke"
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
// exit when it is not a Lambda runtime (exec-ms: the process's own start).
func BenchmarkColdStart(b *testing.B) {
	h := newHost(b, Options{}, fnConfig("hello", "hello-v2"))
	fn, _ := h.function("hello")
	var initTotal, execTotal time.Duration
	bin := filepath.Join(binDir, "hello-v2")
	for i := 0; i < b.N; i++ {
		in, err := fn.start(1000 + i)
		if err != nil {
			b.Fatal(err)
		}
		initTotal += in.initDur
		b.StopTimer()
		in.stop(2 * time.Second)
		// Without AWS_LAMBDA_RUNTIME_API, lambda.Start exits at once.
		start := time.Now()
		cmd := exec.Command(bin)
		cmd.Run()
		execTotal += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(initTotal.Microseconds())/1000/float64(b.N), "ms/start")
	b.ReportMetric(float64(execTotal.Microseconds())/1000/float64(b.N), "exec-ms")
}
