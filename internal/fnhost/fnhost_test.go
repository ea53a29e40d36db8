package fnhost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/testkit"
)

// binDir holds the example functions, built once for the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fnhost-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := testkit.BuildFunctionsInto(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	// A "secret" in turnout's environment that functions must not see.
	os.Setenv("TURNOUT_TEST_SECRET", "hunter2")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func fnConfig(name, bin string) config.Function {
	return config.Function{Name: name, Handler: filepath.Join(binDir, bin), Timeout: config.Duration(10 * time.Second)}
}

func newHost(t testing.TB, opts Options, fns ...config.Function) *Host {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testkit.QuietLogger()
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Configure(fns); err != nil {
		t.Fatal(err)
	}
	return h
}

func invokeOK(t testing.TB, h *Host, fn string, payload string) invoke.Response {
	t.Helper()
	resp, err := h.Invoke(context.Background(), invoke.Request{Function: fn, Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("invoke %s: %v", fn, err)
	}
	return resp
}

// invokeInto invokes fn with payload and sends the error to done: the way
// a test keeps an invocation running (go invokeInto(...)) while it looks.
func invokeInto(done chan<- error, h *Host, fn, payload string) {
	_, err := h.Invoke(context.Background(), invoke.Request{Function: fn, Payload: []byte(payload)})
	done <- err
}

func statsOf(h *Host, fn string) FunctionStats {
	for _, s := range h.Stats() {
		if s.Function == fn {
			return s
		}
	}
	return FunctionStats{}
}

func pidGone(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }

func TestHelloV2(t *testing.T) {
	c := fnConfig("hello", "hello-v2")
	c.MemoryMB = 256
	c.Env = map[string]string{"GREETING": "hi"}
	h := newHost(t, Options{Region: "eu-west-1"}, c)
	ev := `{"version":"2.0","routeKey":"GET /hello/{name}","rawPath":"/hello/ada","rawQueryString":"x=1&x=2",
		"queryStringParameters":{"x":"1,2"},"pathParameters":{"name":"ada"},
		"requestContext":{"http":{"method":"GET","path":"/hello/ada"}}}`
	resp, err := h.Invoke(context.Background(), invoke.Request{Function: "hello", Payload: []byte(ev), RequestID: "req-1", TraceID: "Root=1-abc"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.FunctionError != "" || resp.ExecutedVersion != "$LATEST" {
		t.Fatalf("response %+v", resp)
	}
	var out struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if err := json.Unmarshal(resp.Payload, &out); err != nil || out.StatusCode != 200 {
		t.Fatalf("payload %s: %v", resp.Payload, err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(out.Body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"function": "hello", "memoryMB": 256.0, "region": "eu-west-1", "version": "$LATEST",
		"requestId": "req-1", "functionArn": "arn:aws:lambda:eu-west-1:000000000000:function:hello",
		"path": "/hello/ada", "rawQuery": "x=1&x=2", "traceId": "Root=1-abc",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	if pp, _ := body["pathParameters"].(map[string]any); pp["name"] != "ada" {
		t.Errorf("pathParameters = %v", body["pathParameters"])
	}
	if _, leaked := body["leaked"]; leaked {
		t.Errorf("turnout's environment leaked into the function: %v", body["leaked"])
	}

	// Logs by request id: START, END, REPORT.
	lines, err := h.Logs("hello", "req-1")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, l := range lines {
		texts = append(texts, l.Text)
	}
	all := strings.Join(texts, "\n")
	testkit.ContainsAll(t, "logs", all, "START RequestId: req-1 Version: $LATEST", "END RequestId: req-1", "REPORT RequestId: req-1", "Memory Size: 256 MB", "Init Duration:")
	s := statsOf(h, "hello")
	if s.Invocations != 1 || s.ColdStarts != 1 || s.Instances != 1 || s.Idle != 1 || s.LastInitDuration <= 0 {
		t.Errorf("stats %+v", s)
	}
	if resp.InitDuration <= 0 {
		t.Errorf("the first invocation's InitDuration is %v: it waited for a cold start", resp.InitDuration)
	}
	// Warm: no new cold start.
	if warm := invokeOK(t, h, "hello", ev); warm.InitDuration != 0 {
		t.Errorf("the warm invocation's InitDuration is %v, want 0", warm.InitDuration)
	}
	if s := statsOf(h, "hello"); s.ColdStarts != 1 {
		t.Errorf("second invocation was cold: %+v", s)
	}
}

func TestLimitsAndNotFound(t *testing.T) {
	c := fnConfig("hello", "hello-v2")
	c.MaxRequestBytes = 100
	c.MaxResponseBytes = 20
	h := newHost(t, Options{}, c)
	_, err := h.Invoke(context.Background(), invoke.Request{Function: "hello", Payload: []byte(`{"x":"` + strings.Repeat("a", 200) + `"}`)})
	if invoke.KindOf(err) != invoke.KindTooLarge {
		t.Errorf("big request: %v", err)
	}
	_, err = h.Invoke(context.Background(), invoke.Request{Function: "hello", Payload: []byte(`{}`)})
	if invoke.KindOf(err) != invoke.KindResponseTooLarge {
		t.Errorf("big response: %v", err)
	}
	_, err = h.Invoke(context.Background(), invoke.Request{Function: "hello", Payload: []byte(`{nope`)})
	if invoke.KindOf(err) != invoke.KindInvalidRequest {
		t.Errorf("invalid JSON: %v", err)
	}
	// A caller that says it checked the payload is taken at its word: the
	// function gets it (aws-lambda-go fails to decode it, and its error
	// document is over this function's 20-byte limit).
	_, err = h.Invoke(context.Background(), invoke.Request{Function: "hello", Payload: []byte(`{nope`), PayloadChecked: true})
	if invoke.KindOf(err) != invoke.KindResponseTooLarge {
		t.Errorf("a payload said to be checked: %v; want it passed to the function", err)
	}
	_, err = h.Invoke(context.Background(), invoke.Request{Function: "nope"})
	if invoke.KindOf(err) != invoke.KindNotFound {
		t.Errorf("unknown function: %v", err)
	}
	if _, err := h.Logs("nope", ""); invoke.KindOf(err) != invoke.KindNotFound {
		t.Errorf("logs of unknown function: %v", err)
	}
}

// TestConcurrency shows that invocations run side by side up to the limit by
// counting them in flight, not by timing them: each waits on a barrier file
// that the test creates only once all n run in their processes at once. Run one
// after another, they would never all be in flight, and the test fails.
func TestConcurrency(t *testing.T) {
	const n = 32
	c := fnConfig("sleep", "sleep")
	c.Concurrency = n
	h := newHost(t, Options{}, c)
	round := func(name string) map[int]bool {
		dir := t.TempDir()
		barrier, arrived := filepath.Join(dir, "go"), filepath.Join(dir, "arrived")
		if err := os.Mkdir(arrived, 0o755); err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(map[string]string{"until_file": barrier, "arrive_dir": arrived})
		var wg sync.WaitGroup
		errs := make(chan error, n)
		pids := make(chan int, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := h.Invoke(context.Background(), invoke.Request{Function: "sleep", Payload: payload})
				if err != nil || resp.FunctionError != "" {
					errs <- fmt.Errorf("%v %s", err, resp.Payload)
					return
				}
				var r struct{ PID int }
				json.Unmarshal(resp.Payload, &r)
				pids <- r.PID
			}()
		}
		// A bound for a broken host, not a speed target: 32 cold starts on
		// a loaded CI machine take a few seconds.
		// Each invocation, once running in its process, leaves a file
		// named by its pid; n files means n processes run at once.
		testkit.Eventually(t, 45*time.Second, fmt.Sprintf("%d %s invocations running at once", n, name), func() bool {
			entries, _ := os.ReadDir(arrived)
			return len(entries) == n
		})
		if s := statsOf(h, "sleep"); s.InUse != n {
			t.Errorf("%d invocations running but %d slots in use", n, s.InUse)
		}
		if err := os.WriteFile(barrier, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		close(pids)
		for err := range errs {
			t.Error(err)
		}
		distinct := map[int]bool{}
		for p := range pids {
			distinct[p] = true
		}
		if len(distinct) != n {
			t.Errorf("%s round ran on %d instances, want %d (one per invocation in flight)", name, len(distinct), n)
		}
		return distinct
	}
	cold := round("cold")
	warm := round("warm")
	for pid := range warm {
		if !cold[pid] {
			t.Errorf("warm round used a new instance (pid %d): warm instances were not reused", pid)
		}
	}
	if s := statsOf(h, "sleep"); s.ColdStarts != n || s.Invocations != 2*n || s.InUse != 0 {
		t.Errorf("stats %+v, want %d cold starts, %d invocations, none in use", s, n, 2*n)
	}
}

func TestThrottle(t *testing.T) {
	c := fnConfig("sleep", "sleep")
	c.Concurrency = 1
	h := newHost(t, Options{}, c)
	invokeOK(t, h, "sleep", `{}`) // warm, so the parallel ones overlap
	var wg sync.WaitGroup
	var mu sync.Mutex
	throttled, ok := 0, 0
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.Invoke(context.Background(), invoke.Request{Function: "sleep", Payload: []byte(`{"sleep_ms":300}`)})
			mu.Lock()
			defer mu.Unlock()
			var ie *invoke.Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ie) && ie.Kind == invoke.KindThrottled && ie.Reason == "ReservedFunctionConcurrentInvocationLimitExceeded":
				throttled++
			default:
				t.Errorf("unexpected error %v", err)
			}
		}()
	}
	wg.Wait()
	if throttled == 0 || ok == 0 {
		t.Errorf("ok %d throttled %d: want some of each", ok, throttled)
	}
	if s := statsOf(h, "sleep"); s.Throttles != uint64(throttled) || s.Instances != 1 {
		t.Errorf("stats %+v, throttled %d", s, throttled)
	}

	// With room in the queue and time to wait, waiting invocations get
	// the instance in turn.
	three := 3
	c.QueueSize = &three
	c.QueueTimeout = config.Duration(5 * time.Second)
	if err := h.Configure([]config.Function{c}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); invokeOK(t, h, "sleep", `{"sleep_ms":50}`) }()
	}
	wg.Wait()
}

func TestPanicReplacesInstance(t *testing.T) {
	h := newHost(t, Options{}, fnConfig("panic", "panic"))
	resp := invokeOK(t, h, "panic", `{}`)
	if resp.FunctionError != "Unhandled" || !strings.Contains(string(resp.Payload), "boom") {
		t.Fatalf("panic: %+v %s", resp, resp.Payload)
	}
	for range 3 {
		resp = invokeOK(t, h, "panic", `{"ok":true}`)
		if resp.FunctionError != "" || string(resp.Payload) != `"ok"` {
			t.Fatalf("after panic: %+v %s", resp, resp.Payload)
		}
	}
	if s := statsOf(h, "panic"); s.ColdStarts != 2 || s.Errors != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestExitMidInvocation(t *testing.T) {
	h := newHost(t, Options{}, fnConfig("sleep", "sleep"))
	resp := invokeOK(t, h, "sleep", `{}`)
	var r struct{ PID int }
	json.Unmarshal(resp.Payload, &r)
	go func() {
		time.Sleep(100 * time.Millisecond)
		syscall.Kill(r.PID, syscall.SIGKILL)
	}()
	resp = invokeOK(t, h, "sleep", `{"sleep_ms":3000}`)
	if resp.FunctionError != "Unhandled" || !strings.Contains(string(resp.Payload), "Runtime.ExitError") ||
		!strings.Contains(string(resp.Payload), "signal: killed") {
		t.Fatalf("killed mid-invocation: %+v %s", resp, resp.Payload)
	}
	invokeOK(t, h, "sleep", `{}`)
}

func TestTimeout(t *testing.T) {
	c := fnConfig("sleep", "sleep")
	c.Timeout = config.Duration(500 * time.Millisecond)
	h := newHost(t, Options{}, c)
	resp := invokeOK(t, h, "sleep", `{}`)
	var r struct{ PID int }
	json.Unmarshal(resp.Payload, &r)

	start := time.Now()
	resp, err := h.Invoke(context.Background(), invoke.Request{Function: "sleep", Payload: []byte(`{"sleep_ms":5000}`), RequestID: "slow", LogTail: true})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.TimedOut || resp.FunctionError != "Unhandled" ||
		!strings.Contains(string(resp.Payload), "Task timed out after 0.50 seconds") ||
		!strings.Contains(string(resp.Payload), "Sandbox.Timedout") {
		t.Fatalf("timeout response %+v %s", resp, resp.Payload)
	}
	if took < 450*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("timed out after %v, want ~500ms", took)
	}
	if !strings.Contains(resp.LogTail, "sleeping 5000 ms") {
		t.Errorf("log tail %q", resp.LogTail)
	}
	testkit.Eventually(t, 2*time.Second, "the timed-out process to be gone", func() bool { return pidGone(r.PID) })
	invokeOK(t, h, "sleep", `{}`)
	if s := statsOf(h, "sleep"); s.Timeouts != 1 || s.ColdStarts != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestContextCancelKeepsInstance(t *testing.T) {
	h := newHost(t, Options{}, fnConfig("sleep", "sleep"))
	invokeOK(t, h, "sleep", `{}`)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := h.Invoke(ctx, invoke.Request{Function: "sleep", Payload: []byte(`{"sleep_ms":300}`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	testkit.Eventually(t, 2*time.Second, "the abandoned invocation to finish", func() bool { return statsOf(h, "sleep").InUse == 0 })
	invokeOK(t, h, "sleep", `{}`)
	if s := statsOf(h, "sleep"); s.ColdStarts != 1 {
		t.Errorf("the instance was replaced: %+v", s)
	}
}

func TestRuntimeAPIMisuse(t *testing.T) {
	h := newHost(t, Options{}, fnConfig("hello", "hello-v2"))
	invokeOK(t, h, "hello", `{}`)
	fn, _ := h.function("hello")
	fn.mu.Lock()
	addr := fn.idle[0].addr
	fn.mu.Unlock()
	base := "http://" + addr + "/2018-06-01/runtime/"
	cases := []struct {
		method, path string
		status       int
	}{
		{"POST", "invocation/no-such-id/response", 400},
		{"POST", "invocation/no-such-id/error", 400},
		{"GET", "invocation/x/response", 405},
		{"POST", "invocation/next", 405},
		{"GET", "nothing", 404},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ ErrorType, ErrorMessage string }
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if resp.StatusCode != c.status || doc.ErrorType == "" {
			t.Errorf("%s %s: %d %+v, want %d and an error document", c.method, c.path, resp.StatusCode, doc, c.status)
		}
	}
	invokeOK(t, h, "hello", `{}`) // the instance is unharmed
}

// TestInitFailure: a function that fails its init answers as on Lambda —
// 200 with X-Amz-Function-Error: Unhandled and the runtime's own error
// document (or Runtime.ExitError, Sandbox.Timedout, Runtime.InvalidEntrypoint
// when it posted none) — and its tail holds the output of that instance
// only (issue 13, item 7). Seen through the real AWS SDK client.
func TestInitFailure(t *testing.T) {
	exit := fnConfig("exit", "initfail")
	hang := fnConfig("hang", "initfail")
	hang.Env = map[string]string{"INITFAIL_MODE": "hang"}
	hang.InitTimeout = config.Duration(300 * time.Millisecond)
	missing := fnConfig("missing", "no-such-binary")
	h := newHost(t, Options{}, exit, hang, missing, nodeConfig("nohandler", "index.nothere"))
	c := invokeAPI(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type errorDoc struct {
		ErrorType    string   `json:"errorType"`
		ErrorMessage string   `json:"errorMessage"`
		Trace        []string `json:"trace"`
	}
	invokeFailed := func(fn string) (errorDoc, string, string) {
		t.Helper()
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), LogType: types.LogTypeTail})
		if err != nil {
			t.Fatalf("%s: %v, want a function error", fn, err)
		}
		var doc errorDoc
		if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" || json.Unmarshal(out.Payload, &doc) != nil {
			t.Fatalf("%s: %d %q %s, want 200, Unhandled and an error document", fn, out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
		}
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		return doc, string(tail), id
	}

	// The runtime posts Runtime.HandlerNotFound to /runtime/init/error.
	doc, tail, _ := invokeFailed("nohandler")
	if doc.ErrorType != "Runtime.HandlerNotFound" || doc.ErrorMessage != "index.nothere is undefined or not exported" || len(doc.Trace) == 0 {
		t.Errorf("nohandler: %+v", doc)
	}
	if !strings.Contains(tail, "Uncaught Exception") || !strings.Contains(tail, "INIT_REPORT") {
		t.Errorf("nohandler tail:\n%s", tail)
	}

	// The process exits: Runtime.ExitError; each tail has its instance's line.
	pids := map[string]bool{}
	for range 2 {
		doc, tail, id := invokeFailed("exit")
		if want := "RequestId: " + id + " Error: Runtime exited with error: exit status 1"; doc.ErrorType != "Runtime.ExitError" || doc.ErrorMessage != want {
			t.Errorf("exit: %+v, want Runtime.ExitError %q", doc, want)
		}
		var lines []string
		for _, l := range strings.Split(tail, "\n") {
			if strings.Contains(l, "cannot connect to database") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || pids[lines[0]] {
			t.Errorf("exit: the tail has init output %q, want its own instance's one line; tail:\n%s", lines, tail)
		} else {
			pids[lines[0]] = true
		}
		if !strings.Contains(tail, "START RequestId: "+id) || !strings.Contains(tail, "REPORT RequestId: "+id) {
			t.Errorf("exit: tail without the invocation's START and REPORT:\n%s", tail)
		}
	}

	start := time.Now()
	doc, tail, _ = invokeFailed("hang")
	if doc.ErrorType != "Sandbox.Timedout" || !strings.Contains(doc.ErrorMessage, "init timed out after 0.30 seconds") ||
		!strings.Contains(tail, "hanging in init") {
		t.Errorf("hang: %+v; tail:\n%s", doc, tail)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("init timeout took %v", d)
	}

	doc, _, _ = invokeFailed("missing")
	if doc.ErrorType != "Runtime.InvalidEntrypoint" || !strings.Contains(doc.ErrorMessage, "no-such-binary") {
		t.Errorf("missing: %+v", doc)
	}

	for fn, errs := range map[string]uint64{"exit": 2, "hang": 1, "missing": 1, "nohandler": 1} {
		if s := statsOf(h, fn); s.Instances != 0 || s.Errors != errs {
			t.Errorf("stats %+v, want %d errors", s, errs)
		}
	}
}

func TestFloodBounded(t *testing.T) {
	const ring = 256 << 10
	c := fnConfig("flood", "flood")
	h := newHost(t, Options{LogRingBytes: ring}, c)
	// A follower that never reads must not block the function.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := h.Follow(ctx, "flood"); err != nil {
		t.Fatal(err)
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	resp, err := h.Invoke(context.Background(), invoke.Request{Function: "flood", Payload: []byte(`{}`), LogTail: true})
	if err != nil || string(resp.Payload) != `"flooded"` {
		t.Fatalf("flood: %v %s", err, resp.Payload)
	}
	t.Logf("50 MB of logs in %v", time.Since(start))
	s := statsOf(h, "flood")
	if s.LogBytes > ring {
		t.Errorf("ring holds %d bytes, limit %d", s.LogBytes, ring)
	}
	if s.LogDropped == 0 {
		t.Errorf("a stalled follower dropped nothing")
	}
	if len(resp.LogTail) > 4096 || !strings.Contains(resp.LogTail, "REPORT") && !strings.Contains(resp.LogTail, "xxx") {
		t.Errorf("log tail of %d bytes", len(resp.LogTail))
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 32<<20 {
		t.Errorf("heap grew %d MB during the flood", grown>>20)
	}
	testkit.Eventually(t, 5*time.Second, "the truncated line", func() bool {
		lines, _ := h.Logs("flood", "")
		for _, l := range lines {
			if l.Stream == "stderr" && strings.HasSuffix(l.Text, truncateMarker) && len(l.Text) <= maxLineBytes+len(truncateMarker) {
				return true
			}
		}
		return false
	})
}

func TestIdleTimeoutAndMinInstances(t *testing.T) {
	idle := fnConfig("idle", "sleep")
	idle.IdleTimeout = config.Duration(200 * time.Millisecond)
	warm := fnConfig("warm", "hello-v2")
	warm.MinInstances = 2
	warm.IdleTimeout = config.Duration(100 * time.Millisecond)
	h := newHost(t, Options{}, idle, warm)

	testkit.Eventually(t, 5*time.Second, "min_instances warm", func() bool { return statsOf(h, "warm").Idle == 2 })
	invokeOK(t, h, "warm", `{}`)
	if s := statsOf(h, "warm"); s.ColdStarts != 0 {
		t.Errorf("invocation on a warm function was cold: %+v", s)
	}

	resp := invokeOK(t, h, "idle", `{}`)
	var r struct{ PID int }
	json.Unmarshal(resp.Payload, &r)
	testkit.Eventually(t, 3*time.Second, "the idle instance to stop", func() bool { return statsOf(h, "idle").Instances == 0 })
	testkit.Eventually(t, 2*time.Second, "the idle process to be gone", func() bool { return pidGone(r.PID) })
	// min_instances survive idle_timeout, and a dead one is replaced.
	time.Sleep(300 * time.Millisecond)
	if s := statsOf(h, "warm"); s.Instances != 2 {
		t.Errorf("warm instances %+v", s)
	}
	fn, _ := h.function("warm")
	fn.mu.Lock()
	victim := fn.idle[0].pid
	fn.mu.Unlock()
	syscall.Kill(victim, syscall.SIGKILL)
	testkit.Eventually(t, 5*time.Second, "a replacement warm instance", func() bool {
		fn.mu.Lock()
		defer fn.mu.Unlock()
		if len(fn.idle) != 2 {
			return false
		}
		for _, in := range fn.idle {
			if in.pid == victim {
				return false
			}
		}
		return true
	})
}

func TestConfigure(t *testing.T) {
	a := fnConfig("a", "sleep")
	b := fnConfig("b", "sleep")
	h := newHost(t, Options{}, a, b)
	pid := func(fn string) int {
		var r struct{ PID int }
		json.Unmarshal(invokeOK(t, h, fn, `{}`).Payload, &r)
		return r.PID
	}
	pa, pb := pid("a"), pid("b")

	// Unchanged a keeps its instance; changed b gets a new one.
	b2 := b
	b2.Env = map[string]string{"SLEEP_MS": "1"}
	if err := h.Configure([]config.Function{a, b2}); err != nil {
		t.Fatal(err)
	}
	if got := pid("a"); got != pa {
		t.Errorf("unchanged function lost its instance: %d != %d", got, pa)
	}
	testkit.Eventually(t, 3*time.Second, "the old b instance to stop", func() bool { return pidGone(pb) })
	if got := pid("b"); got == pb {
		t.Errorf("changed function kept its old instance")
	}
	if lines, _ := h.Logs("b", ""); len(lines) == 0 {
		t.Errorf("logs did not carry over")
	}

	// Removing a stops its processes.
	if err := h.Configure([]config.Function{b2}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 3*time.Second, "the removed function's process to stop", func() bool { return pidGone(pa) })
	if _, err := h.Invoke(context.Background(), invoke.Request{Function: "a"}); invoke.KindOf(err) != invoke.KindNotFound {
		t.Errorf("removed function: %v", err)
	}
	names := []string{}
	for _, s := range h.Stats() {
		names = append(names, s.Function)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "b" {
		t.Errorf("stats for %v", names)
	}
}

func TestFollow(t *testing.T) {
	h := newHost(t, Options{}, fnConfig("sleep", "sleep"))
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := h.Follow(ctx, "sleep")
	if err != nil {
		t.Fatal(err)
	}
	invokeOK(t, h, "sleep", `{"sleep_ms":1}`)
	seen := map[string]bool{}
	timeout := time.After(5 * time.Second)
	for !(seen["START"] && seen["REPORT"] && seen["stdout"]) {
		select {
		case l := <-ch:
			if l.Stream == "stdout" && strings.Contains(l.Text, "sleeping 1 ms") && l.RequestID != "" {
				seen["stdout"] = true
			}
			if f := strings.Fields(l.Text); len(f) > 0 {
				seen[f[0]] = true
			}
		case <-timeout:
			t.Fatalf("follow saw %v", seen)
		}
	}
	cancel()
	for range ch {
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	// The default isolation (a cgroup where the machine allows it) and the
	// fallback, whose tracker goroutine must stop too.
	for _, iso := range []Isolation{"", IsolationProcessGroup} {
		t.Run("isolation="+string(iso), func(t *testing.T) { testCloseLeavesNothing(t, iso) })
	}
}

func testCloseLeavesNothing(t *testing.T, iso Isolation) {
	before := runtime.NumGoroutine()
	h, err := New(Options{Isolation: iso, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c := fnConfig("sleep", "sleep")
	c.MinInstances = 2
	if err := h.Configure([]config.Function{c}); err != nil {
		t.Fatal(err)
	}
	resp := invokeOK(t, h, "sleep", `{}`)
	var r struct{ PID int }
	json.Unmarshal(resp.Payload, &r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.Follow(ctx, "sleep")
	start := time.Now()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start))
	if !pidGone(r.PID) {
		t.Errorf("process %d survived Close", r.PID)
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	if _, err := h.Invoke(context.Background(), invoke.Request{Function: "sleep"}); invoke.KindOf(err) != invoke.KindNotFound {
		t.Errorf("invoke after Close: %v", err)
	}
}

// burst runs n invocations of the sleep function at once and returns how
// many succeeded and how many were throttled; any other error fails t.
func burst(t *testing.T, h *Host, n int, payload string) (ok, throttled int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := h.Invoke(context.Background(), invoke.Request{Function: "sleep", Payload: []byte(payload)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && resp.FunctionError == "":
				ok++
			case invoke.KindOf(err) == invoke.KindThrottled:
				throttled++
			default:
				t.Errorf("invoke: %v %s", err, resp.Payload)
			}
		}()
	}
	wg.Wait()
	return ok, throttled
}

// With no concurrency or queue set, a burst a few invocations over the
// default limit waits in the queue and is served, as the monolith served
// it, instead of getting an immediate 429 (issue 13, item 10).
func TestDefaultsAbsorbBurst(t *testing.T) {
	h := newHost(t, Options{}, fnConfig("sleep", "sleep"))
	limit := statsOf(h, "sleep").Concurrency
	if want := config.DefaultConcurrency(); limit != want || limit < 10 {
		t.Fatalf("default concurrency %d, want %d (at least 10)", limit, want)
	}
	// Warm the instances first, so the queued invocations wait for one
	// 200 ms invocation, not for cold starts on a loaded machine.
	if ok, thr := burst(t, h, limit, `{}`); ok != limit || thr != 0 {
		t.Fatalf("warm-up: %d ok, %d throttled", ok, thr)
	}
	n := limit + 3
	ok, thr := burst(t, h, n, `{"sleep_ms":200}`)
	if ok != n || thr != 0 {
		t.Errorf("burst of %d over a default limit of %d: %d ok, %d throttled; want all ok", n, limit, ok, thr)
	}
	if s := statsOf(h, "sleep"); s.Throttles != 0 || s.Queued != 0 || s.QueueSize != limit {
		t.Errorf("stats %+v", s)
	}
}

// oneSlotHost hosts the sleep example with one slot and a queue of q
// waiting at most wait, and warms its instance with one invocation; it
// returns the host and the function's config, to change and Configure.
func oneSlotHost(t *testing.T, q int, wait time.Duration) (*Host, config.Function) {
	t.Helper()
	c := fnConfig("sleep", "sleep")
	c.Concurrency = 1
	c.QueueSize = &q
	c.QueueTimeout = config.Duration(wait)
	h := newHost(t, Options{}, c)
	invokeOK(t, h, "sleep", `{}`)
	return h, c
}

// takeSlot starts an invocation of sleep with payload, its result sent to
// done, and waits until it holds the function's one slot.
func takeSlot(t *testing.T, h *Host, done chan<- error, payload string) {
	t.Helper()
	go invokeInto(done, h, "sleep", payload)
	testkit.Eventually(t, 5*time.Second, "the slot to be taken", func() bool { return statsOf(h, "sleep").InUse == 1 })
}

// Past the limit and a full queue, or after the queue wait, invocations
// are still throttled.
func TestQueueBounds(t *testing.T) {
	h, c := oneSlotHost(t, 1, 10*time.Second)
	busy := make(chan error, 2)
	takeSlot(t, h, busy, `{"sleep_ms":600}`)
	go invokeInto(busy, h, "sleep", `{}`)
	testkit.Eventually(t, 5*time.Second, "one invocation to queue", func() bool { return statsOf(h, "sleep").Queued == 1 })
	start := time.Now()
	_, err := h.Invoke(context.Background(), invoke.Request{Function: "sleep", Payload: []byte(`{}`)})
	var ie *invoke.Error
	if !errors.As(err, &ie) || ie.Kind != invoke.KindThrottled || !strings.Contains(ie.Msg, "queue") {
		t.Fatalf("with the slot and the queue full: %v, want throttled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a full queue throttled after %v, want at once", d)
	}
	for range 2 {
		if err := <-busy; err != nil {
			t.Errorf("the running or queued invocation: %v", err)
		}
	}

	// A short wait: throttled once it passes.
	c.QueueTimeout = config.Duration(100 * time.Millisecond)
	if err := h.Configure([]config.Function{c}); err != nil {
		t.Fatal(err)
	}
	invokeOK(t, h, "sleep", `{}`)
	takeSlot(t, h, busy, `{"sleep_ms":1000}`)
	if _, err := h.Invoke(context.Background(), invoke.Request{Function: "sleep", Payload: []byte(`{}`)}); invoke.KindOf(err) != invoke.KindThrottled {
		t.Errorf("after the queue wait: %v, want throttled", err)
	}
	if err := <-busy; err != nil {
		t.Error(err)
	}

	// queue_size 0 throttles at once.
	zero := 0
	c.QueueSize = &zero
	c.QueueTimeout = config.Duration(10 * time.Second)
	if err := h.Configure([]config.Function{c}); err != nil {
		t.Fatal(err)
	}
	invokeOK(t, h, "sleep", `{}`)
	if ok, thr := burst(t, h, 3, `{"sleep_ms":500}`); ok == 0 || thr == 0 {
		t.Errorf("queue_size 0: %d ok, %d throttled; want some of each", ok, thr)
	}
}

// Queued invocations get the slot in the order they arrived, and one whose
// client went away leaves the queue at once.
func TestQueueFIFOAndAbandon(t *testing.T) {
	h, _ := oneSlotHost(t, 8, 20*time.Second)
	done := make(chan error, 1)
	takeSlot(t, h, done, `{"sleep_ms":500}`)

	// One waiter whose client goes away while queued.
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		_, err := h.Invoke(ctx, invoke.Request{Function: "sleep", Payload: []byte(`{}`), RequestID: "gone"})
		gone <- err
	}()
	testkit.Eventually(t, 5*time.Second, "the abandoned waiter to queue", func() bool { return statsOf(h, "sleep").Queued == 1 })
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned waiter: %v", err)
	}
	testkit.Eventually(t, 2*time.Second, "the abandoned waiter to leave the queue", func() bool { return statsOf(h, "sleep").Queued == 0 })

	// The order they ran in is read from the host's own START lines (one
	// slot: each starts after the one before it ends), not from when the
	// client goroutines got scheduled after their answers.
	const n = 5
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := h.Invoke(context.Background(), invoke.Request{Function: "sleep", Payload: []byte(`{"sleep_ms":20}`), RequestID: fmt.Sprintf("q%d", i)})
			if err != nil || resp.FunctionError != "" {
				t.Errorf("q%d: %v %s", i, err, resp.Payload)
			}
		}()
		testkit.Eventually(t, 5*time.Second, "a waiter to queue", func() bool { return statsOf(h, "sleep").Queued == i+1 })
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	started := func(id string) time.Time {
		lines, _ := h.Logs("sleep", id)
		for _, l := range lines {
			if strings.HasPrefix(l.Text, "START") {
				return l.Time
			}
		}
		t.Fatalf("no START line for %s: %v", id, lines)
		return time.Time{}
	}
	var order []string
	for i := range n {
		order = append(order, fmt.Sprintf("q%d", i))
	}
	ran := slices.Clone(order)
	slices.SortStableFunc(ran, func(a, b string) int { return started(a).Compare(started(b)) })
	if !slices.Equal(ran, order) {
		t.Errorf("queued invocations ran in order %v, want arrival order %v", ran, order)
	}
	logs, _ := h.Logs("sleep", "gone")
	if len(logs) != 0 {
		t.Errorf("the abandoned waiter ran: %v", logs)
	}
	if s := statsOf(h, "sleep"); s.Invocations != 2+n || s.Throttles != 0 {
		t.Errorf("stats %+v", s)
	}
}
