package fnhost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/invoke/invoketest"
)

var tailInvocations = flag.Int("tail.invocations", 1000,
	"sequential invocations per function in TestLogsWhole")

// nodeConfig is a function run by examples/functions/node, a Node.js
// custom runtime, with the handler spec (_HANDLER) handler.
func nodeConfig(name, handler string) config.Function {
	bootstrap, _ := filepath.Abs(filepath.Join("..", "..", "examples", "functions", "node", "bootstrap"))
	return config.Function{Name: name, Handler: bootstrap, Timeout: config.Duration(10 * time.Second),
		Env: map[string]string{"_HANDLER": handler}}
}

// invokeAPI serves the Invoke API over h (invocations and the function
// configurations) on 127.0.0.1 and returns the real AWS SDK client for it.
func invokeAPI(t testing.TB, h *Host) *lambda.Client {
	t.Helper()
	srv := httptest.NewServer(invoke.NewServer(invoke.ServerOptions{Invoker: h, Configurations: h.Configurations}))
	t.Cleanup(srv.Close)
	return invoketest.Client(srv.URL)
}

// TestLogsWhole invokes functions that log on stdout and stderr just before
// they return, in sequence through the Invoke API with LogType Tail (issue
// 13, item 6): every line must be in its invocation's tail, and in the
// lines of its own request id — none missing, none filed under another.
func TestLogsWhole(t *testing.T) {
	h := newHost(t, Options{LogRingBytes: 32 << 20},
		fnConfig("lastword", "lastword"), nodeConfig("node", "index.handler"))
	c := invokeAPI(t, h)
	n := *tailInvocations
	for _, fn := range []string{"lastword", "node"} {
		t.Run(fn, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			missingTail, missingLogs := 0, 0
			for i := range n {
				out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), LogType: types.LogTypeTail})
				if err != nil {
					t.Fatalf("invocation %d: %v", i, err)
				}
				var id string
				if err := json.Unmarshal(out.Payload, &id); err != nil || id == "" || out.FunctionError != nil {
					t.Fatalf("invocation %d: %s %v", i, out.Payload, aws.ToString(out.FunctionError))
				}
				tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
				if err != nil {
					t.Fatal(err)
				}
				lines, err := h.Logs(fn, id)
				if err != nil {
					t.Fatal(err)
				}
				var texts []string
				for _, l := range lines {
					texts = append(texts, l.Text)
				}
				for _, stream := range []string{"stdout", "stderr"} {
					want := "lastword " + stream + " " + id
					if !strings.Contains("\n"+string(tail), "\n"+want+"\n") {
						missingTail++
						if missingTail <= 3 {
							t.Errorf("invocation %d: %q is not in the tail:\n%s", i, want, tail)
						}
					}
				}
				if !wholeInvocation(texts, id) {
					missingLogs++
					if missingLogs <= 3 {
						t.Errorf("invocation %d: the lines of %s are not whole:\n%s", i, id, strings.Join(texts, "\n"))
					}
				}
			}
			misfiled := 0
			all, _ := h.Logs(fn, "")
			for _, l := range all {
				if rest, ok := strings.CutPrefix(l.Text, "lastword "); ok && !strings.HasSuffix(rest, " "+l.RequestID) {
					misfiled++
					if misfiled <= 3 {
						t.Errorf("%q filed under request %q", l.Text, l.RequestID)
					}
				}
			}
			t.Logf("%d invocations: %d tails and %d logs by request id missing a line, %d lines misfiled",
				n, missingTail, missingLogs, misfiled)
			if missingTail+missingLogs+misfiled > 0 {
				t.Errorf("%d invocations: %d tails and %d logs by request id missing a line, %d lines misfiled",
					n, missingTail, missingLogs, misfiled)
			}
		})
	}
}

// wholeInvocation reports whether texts are the lines of one invocation of
// a lastword function with request id id: START, its stdout and stderr
// lines in between, END and REPORT.
func wholeInvocation(texts []string, id string) bool {
	if len(texts) != 5 || texts[0] != "START RequestId: "+id+" Version: $LATEST" ||
		texts[3] != "END RequestId: "+id || !strings.HasPrefix(texts[4], "REPORT RequestId: "+id+"\t") {
		return false
	}
	mid := []string{texts[1], texts[2]}
	out, errl := "lastword stdout "+id, "lastword stderr "+id
	return mid[0] == out && mid[1] == errl || mid[0] == errl && mid[1] == out
}

// TestOutputBoundaries drives an instance's output through real pipes,
// written by the test as a process would: a partial line before an
// invocation ends is closed as a line of its own and kept; an over-long line
// is truncated and what follows the sync after it is a line of its own; a
// line that looks like the markers turnout once wrote is text.
func TestOutputBoundaries(t *testing.T) {
	ring := newLogRing(1 << 20)
	o, stdout, stderr, err := newOutput(ring, 7)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	for _, s := range o.streams {
		go func() { o.read(s); done <- struct{}{} }()
	}
	write := func(f *os.File, s string) {
		t.Helper()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(stdout, "init line\n")
	o.begin("req-1")
	write(stdout, "one\npartial")
	write(stderr, "\x00turnout-0000000000000000 1\n")
	o.sync()
	write(stdout, strings.Repeat("x", 3*maxLineBytes))
	o.sync()
	o.begin("req-2")
	write(stdout, "two\n")
	o.sync()
	stdout.Close()
	stderr.Close()
	o.exited()
	<-done
	<-done
	var got []string
	for _, l := range ring.snapshot("") {
		if l.instance != 7 {
			t.Errorf("line %q of instance %d", l.Text, l.instance)
		}
		text := l.Text
		if len(text) > 40 {
			text = text[:10] + "…" + text[len(text)-20:]
		}
		got = append(got, fmt.Sprintf("%s %s %q", l.RequestID, l.Stream, text))
	}
	want := []string{
		` stdout "init line"`,
		`req-1 stdout "one"`,
		`req-1 stderr "\x00turnout-0000000000000000 1"`,
		`req-1 stdout "partial"`,
		`req-1 stdout "xxxxxxxxxx…xxxxx …[truncated]"`,
		`req-2 stdout "two"`,
	}
	// The two pipes are read independently: before the first sync returns,
	// the order across them is not fixed.
	if len(got) >= 4 {
		slices.Sort(got[:4])
	}
	slices.Sort(want[:4])
	if !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReportLine: the REPORT line, appended piece by piece on every
// invocation, reads as Lambda's (and as fmt formats it).
func TestReportLine(t *testing.T) {
	fn := &function{cfg: config.Function{MemoryMB: 128}, ring: newLogRing(1 << 20)}
	in := &instance{pid: -1}
	in.memAt.Store(time.Now().UnixNano())
	in.memMB.Store(17)
	for _, c := range []struct {
		d, init time.Duration
		cold    bool
	}{{1234567 * time.Nanosecond, 0, false}, {5 * time.Microsecond, 15600 * time.Microsecond, true}, {2*time.Second + 999, 0, false}} {
		fn.report(in, "req", time.Now().Add(-c.d), c.cold, c.init)
		lines := fn.ring.snapshot("req")
		got := lines[len(lines)-1].Text
		var d float64
		var billed int
		if _, err := fmt.Sscanf(got, "REPORT RequestId: req\tDuration: %f ms\tBilled Duration: %d ms", &d, &billed); err != nil {
			t.Fatalf("%q: %v", got, err)
		}
		want := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
			"req", d, billed, 128, 17)
		if c.cold {
			want += fmt.Sprintf("\tInit Duration: %.2f ms", float64(c.init)/float64(time.Millisecond))
		}
		if got != want || billed < int(c.d/time.Millisecond) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	}
}
