package main

import (
	"context"

	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/invoke/invoketest"
	"github.com/turnout/turnout/internal/testkit"
)

var turnoutBin string

// functionDir holds the example functions built by TestMain.
var functionDir string

var exampleFunctions = []string{"hello-v2", "hello-v1", "malformed", "panic", "sleep", "flaky", "items", "authorizer"}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "turnout-e2e")
	if err != nil {
		panic(err)
	}
	turnoutBin = filepath.Join(dir, "turnout")
	out, err := exec.Command("go", "build", "-race", "-o", turnoutBin, ".").CombinedOutput()
	if err != nil {
		// -race needs cgo; fall back to a plain build where it is missing.
		if out2, err2 := exec.Command("go", "build", "-o", turnoutBin, ".").CombinedOutput(); err2 != nil {
			fmt.Fprintf(os.Stderr, "build turnout: %v\n%s\n%s", err, out, out2)
			os.Exit(1)
		}
	}
	// The example functions, unmodified aws-lambda-go binaries.
	if err := testkit.BuildFunctionsInto(dir, exampleFunctions...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	functionDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testToken = "e2e-admin-token"

func tokenHash() string {
	h := sha256.Sum256([]byte(testToken))
	return hex.EncodeToString(h[:])
}

// node is a turnout process started by a test.
type node struct {
	cmd    *exec.Cmd
	public string
	admin  string
	stderr *bytes.Buffer
	mu     *sync.Mutex
}

// startNode runs `turnout serve -c cfgPath` and waits for its listening line.
func startNode(t *testing.T, cfgPath string) *node {
	t.Helper()
	return startNodeArgs(t, cfgPath, "--access-log", "off")
}

// startNodeArgs is startNode with serve's other arguments.
func startNodeArgs(t *testing.T, cfgPath string, args ...string) *node {
	t.Helper()
	cmd := exec.Command(turnoutBin, append([]string{"serve", "-c", cfgPath}, args...)...)
	cmd.Dir = filepath.Dir(cfgPath)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.stderr.WriteString(line + "\n")
			n.mu.Unlock()
			var rec struct{ Msg, Public, Admin string }
			if !once && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "turnout listening" {
				n.public, n.admin = rec.Public, rec.Admin
				once = true
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		pw.Close()
	})
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		n.mu.Lock()
		defer n.mu.Unlock()
		t.Fatalf("turnout did not start:\n%s", n.stderr)
	}
	return n
}

func (n *node) api(method, path string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.admin+"/api/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func namedOrigin(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// writeNodeConfig writes a test node's config into dir and returns its
// path: loopback listeners on free ports, the e2e admin token, a store in
// dir, the Invoke API at invokeAPI ("off", or an address), then body
// (origins, functions, routes, ...).
func writeNodeConfig(t *testing.T, dir, invokeAPI, body string) string {
	t.Helper()
	p := filepath.Join(dir, "turnout.yaml")
	if err := os.WriteFile(p, []byte(nodeYAML(dir, invokeAPI, body)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// abConfig writes, in a fresh directory, the nodeConfig of two origins that
// answer "a" and "b", with the route on a, and returns them all.
func abConfig(t *testing.T) (dir, cfgPath string, a, b *httptest.Server) {
	t.Helper()
	dir = t.TempDir()
	a, b = namedOrigin(t, "a"), namedOrigin(t, "b")
	cfgPath = filepath.Join(dir, "turnout.yaml")
	if err := os.WriteFile(cfgPath, []byte(nodeConfig(dir, a.URL, b.URL, "a")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfgPath, a, b
}

// nodeYAML is a node's configuration: listeners on free loopback ports
// (the Invoke API on invokeAPI), the test token, the store in dir, then
// body.
func nodeYAML(dir, invokeAPI, body string) string {
	return fmt.Sprintf("listen: 127.0.0.1:0\ninvoke_api: {listen: %q}\nadmin:\n  listen: 127.0.0.1:0\n  tokens: [{name: e2e, role: admin, sha256: %s}]\nstore: {path: %s}\n%s",
		invokeAPI, tokenHash(), filepath.Join(dir, "turnout.db"), body)
}

// nodeConfig is nodeYAML with origins a and b and the route on target.
func nodeConfig(dir, a, b, target string) string {
	return nodeYAML(dir, "127.0.0.1:0", fmt.Sprintf("origins:\n  a: {url: %s}\n  b: {url: %s}\nroutes:\n  - {match: /, origin: %s}\n", a, b, target))
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestCrashSafety applies deployments in a loop, kills turnout with SIGKILL
// in the middle, restarts it, and checks the store opens with its history
// intact and the last acknowledged deployment (or a later one) served.
func TestCrashSafety(t *testing.T) {
	dir, cfgPath, a, b := abConfig(t)
	n := startNode(t, cfgPath)

	targets := map[uint64]string{1: "a"}
	var lastAcked uint64 = 1
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			target := []string{"b", "a"}[i%2]
			resp, body, err := n.api("POST", "/deployments", map[string]string{
				"config": nodeConfig(dir, a.URL, b.URL, target), "message": "crash test " + target,
			})
			if err != nil {
				return // killed
			}
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("apply: %d %s", resp.StatusCode, body)
				return
			}
			var d struct{ ID uint64 }
			json.Unmarshal(body, &d)
			mu.Lock()
			targets[d.ID], lastAcked = target, d.ID
			mu.Unlock()
		}
	}()
	time.Sleep(700 * time.Millisecond)
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-done
	n.cmd.Wait()

	mu.Lock()
	acked := lastAcked
	mu.Unlock()
	if acked < 3 {
		t.Fatalf("only %d deployments acknowledged before the kill; the test proves nothing", acked)
	}

	n2 := startNode(t, cfgPath)
	resp, body, err := n2.api("GET", "/deployments?limit=100000", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("history after restart: %v %s", err, body)
	}
	var list []struct {
		ID      uint64
		Message string
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("history: %v: %s", err, body)
	}
	if len(list) == 0 || list[0].ID < acked {
		t.Fatalf("newest deployment after restart is %v, last acknowledged %d", list, acked)
	}
	for i, d := range list { // newest first, dense
		if want := list[0].ID - uint64(i); d.ID != want {
			t.Fatalf("history has a hole: position %d is %d, want %d", i, d.ID, want)
		}
	}
	active := list[0].ID
	want, ok := targets[active]
	if !ok { // committed but never acknowledged: its message says the target
		want = strings.TrimPrefix(list[0].Message, "crash test ")
	}
	if got := get(t, "http://"+n2.public+"/"); got != want {
		t.Fatalf("after restart, deployment %d should serve %q, got %q", active, want, got)
	}
	t.Logf("acknowledged %d deployments before SIGKILL; after restart deployment %d is active and served", acked, active)
}

// TestApplyRollbackUnderLoad runs the real binary under concurrent load
// while 50 applies and 50 rollbacks go through the admin API, and asserts
// that no request fails and each change is served by the next request.
func TestApplyRollbackUnderLoad(t *testing.T) {
	dir, cfgPath, a, b := abConfig(t)
	n := startNode(t, cfgPath)
	base := "http://" + n.public

	load := abLoad(4, n.public)
	defer load.stop()
	served := func() string { return get(t, base+"/probe") }
	for i := 0; i < 50; i++ {
		resp, body, err := n.api("POST", "/deployments", map[string]string{"config": nodeConfig(dir, a.URL, b.URL, "b"), "message": "move"})
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("apply %d: %v %s", i, err, body)
		}
		if got := served(); got != "b" {
			t.Fatalf("apply %d: next request served by %q, want b", i, got)
		}
		resp, body, err = n.api("POST", "/rollback", map[string]any{"message": "back"})
		if err != nil || resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			t.Fatalf("rollback %d: %v %d %s", i, err, resp.StatusCode, body)
		}
		if got := served(); got != "a" {
			t.Fatalf("rollback %d: next request served by %q, want a", i, got)
		}
	}
	total := load.check(t, 100)
	t.Logf("%d requests under load, none failed, across 50 applies and 50 rollbacks", total)
}

// TestServeSeedsOnlyAnEmptyStore: the file given to serve seeds deployment 1;
// on a restart with a different file the store's active deployment wins.
func TestServeSeedsOnlyAnEmptyStore(t *testing.T) {
	dir, cfgPath, a, b := abConfig(t)
	n := startNode(t, cfgPath)
	if got := get(t, "http://"+n.public+"/"); got != "a" {
		t.Fatalf("seeded node serves %q, want a", got)
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	if err := n.cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM: turnout exited with %v", err)
	}

	os.WriteFile(cfgPath, []byte(nodeConfig(dir, a.URL, b.URL, "b")), 0o644)
	n2 := startNode(t, cfgPath)
	if got := get(t, "http://"+n2.public+"/"); got != "a" {
		t.Fatalf("restarted node serves %q; the store's deployment (a) should win over the file (b)", got)
	}
	n2.mu.Lock()
	logs := n2.stderr.String()
	n2.mu.Unlock()
	if !strings.Contains(logs, "not applied") {
		t.Errorf("restart did not say the file was not applied:\n%s", logs)
	}
}

// TestFunctionRoutes serves routes from real aws-lambda-go processes hosted
// by the turnout binary, next to the legacy origin, through both payload
// formats, and checks failures become clear 5xx answers with request ids.
func TestFunctionRoutes(t *testing.T) {
	dir := t.TempDir()
	legacy := namedOrigin(t, "legacy")
	fn := func(name string) string { return filepath.Join(functionDir, name) }
	cfgPath := writeNodeConfig(t, dir, "127.0.0.1:0", fmt.Sprintf(`origins:
  legacy: {url: %s}
functions:
  hello2: {handler: %s, memory_mb: 256, env: {AWS_REGION: eu-west-1}}
  hello1: {handler: %s}
  malformed: {handler: %s}
  panic: {handler: %s}
  sleep: {handler: %s, timeout: 300ms, env: {SLEEP_MS: "2000"}}
routes:
  - {match: "GET /hello/{name}", function: hello2}
  - {match: "GET /v1/hello/{name}", function: hello1, payload: "1.0"}
  - {match: "GET /malformed", function: malformed}
  - {match: "GET /panic", function: panic}
  - {match: "GET /sleep", function: sleep}
  - {match: /, origin: legacy}
`, legacy.URL, fn("hello-v2"), fn("hello-v1"), fn("malformed"), fn("panic"), fn("sleep")))
	t.Setenv("TURNOUT_TEST_SECRET", "must-not-leak")
	n := startNode(t, cfgPath)
	base := "http://" + n.public

	do := func(path string) (int, http.Header, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("X-Request-Id", "req-"+strings.NewReplacer("/", "-", "?", "-", "&", "-", ";", "-", "=", "-").Replace(path))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	code, _, body := do("/hello/ada?id=1&id=2&list=1;2;3")
	var r2 struct {
		Message, RouteKey, RawQuery, Function, Region, RequestID, Leaked string
		MemoryMB                                                         int
		PathParameters                                                   map[string]string
		Query                                                            map[string]string
	}
	if err := json.Unmarshal([]byte(body), &r2); err != nil || code != 200 {
		t.Fatalf("GET /hello/ada: %d %s", code, body)
	}
	if r2.RouteKey != "GET /hello/{name}" || r2.PathParameters["name"] != "ada" || r2.RawQuery != "id=1&id=2&list=1;2;3" ||
		r2.Query["id"] != "1,2" || r2.Query["list"] != "1;2;3" || r2.Function != "hello2" || r2.MemoryMB != 256 ||
		r2.Region != "eu-west-1" || r2.RequestID == "" {
		t.Errorf("2.0 event as the function saw it: %+v", r2)
	}
	if r2.Leaked != "" {
		t.Errorf("turnout's environment leaked into the function: %q", r2.Leaked)
	}

	code, _, body = do("/v1/hello/bob?x=1&x=2")
	if code != 200 || !strings.Contains(body, `"bob"`) {
		t.Errorf("GET /v1/hello/bob (payload 1.0): %d %s", code, body)
	}
	// A 1.0 path keeps the client's escapes, as a REST API delivers it;
	// the path parameter is decoded.
	const escaped = "/v1/hello/J%C3%BCrgen%20a+b%2B100%25"
	code, _, body = do(escaped)
	var r1 struct {
		Path           string
		PathParameters map[string]string
	}
	if err := json.Unmarshal([]byte(body), &r1); err != nil || code != 200 ||
		r1.Path != escaped || r1.PathParameters["name"] != "Jürgen a+b+100%" {
		t.Errorf("GET %s (payload 1.0): %d %s; want path as sent and the parameter decoded", escaped, code, body)
	}
	if code, _, body = do("/other"); code != 200 || body != "legacy" {
		t.Errorf("unmatched request: %d %q, want the legacy origin", code, body)
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/malformed", 502},
		{"/panic", 502},
		{"/sleep", 504},
	} {
		code, _, body := do(tc.path)
		if code != tc.code || !strings.Contains(body, `"request_id":"req-`) {
			t.Errorf("GET %s: %d %s, want %d with the request id", tc.path, code, body, tc.code)
		}
	}
	// The instance that panicked was replaced: the function still answers.
	if code, _, _ := do("/hello/again"); code != 200 {
		t.Errorf("after failures, hello2 answers %d", code)
	}
	// turnout status counts what happened, per function.
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--admin", n.admin, "--token", testToken}, &out, &errb); code != 0 {
		t.Fatalf("turnout status: %s", errb.String())
	}
	// It says how instances are kept whole: a cgroup each where this
	// machine allows it, else the process-group fallback.
	iso := fnhost.IsolationProcessGroup
	if fnhost.CgroupAvailable() == nil {
		iso = fnhost.IsolationCgroup
	}
	testkit.ContainsAll(t, "turnout status", out.String(), "function:hello2", "STAGE", "migrated", "FUNCTION", "sleep", "QUEUED", "ISOLATION", string(iso))
	resp, body2, err := n.api("GET", "/status", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err)
	}
	var st struct {
		Functions []struct {
			Function                      string
			Invocations, Errors, Timeouts uint64
			Isolation                     fnhost.Isolation
		}
	}
	json.Unmarshal(body2, &st)
	counts := map[string][3]uint64{}
	for _, f := range st.Functions {
		counts[f.Function] = [3]uint64{f.Invocations, f.Errors, f.Timeouts}
		if f.Isolation != iso {
			t.Errorf("function %s: isolation %q in the API, want %q", f.Function, f.Isolation, iso)
		}
	}
	if counts["hello2"][0] != 2 || counts["panic"][1] != 1 || counts["sleep"][2] != 1 {
		t.Errorf("function counters (invocations, errors, timeouts): %v", counts)
	}
}

// TestCaseInsensitiveRoutes runs a node in front of a legacy origin that
// matches paths ignoring case (IIS), with routing.case_insensitive: "/ADMIN"
// reaches the "/admin/" route rather than the legacy origin, and a function
// route gets the path and its parameters as the client spelled them.
func TestCaseInsensitiveRoutes(t *testing.T) {
	dir := t.TempDir()
	legacy, admin := namedOrigin(t, "legacy"), namedOrigin(t, "admin")
	n := startNode(t, writeNodeConfig(t, dir, "off", fmt.Sprintf(`routing: {case_insensitive: true}
origins:
  legacy: {url: %s}
  admin: {url: %s}
functions:
  hello: {handler: %s}
routes:
  - {match: /admin/, origin: admin}
  - {match: "GET /Hello/{name}", function: hello}
  - {match: /, origin: legacy}
`, legacy.URL, admin.URL, filepath.Join(functionDir, "hello-v2"))))
	base := "http://" + n.public
	for path, want := range map[string]string{"/admin/x": "admin", "/ADMIN/x": "admin", "/Admin/": "admin", "/other": "legacy"} {
		if got := get(t, base+path); got != want {
			t.Errorf("GET %s: %q, want %q", path, got, want)
		}
	}
	var r struct {
		RouteKey, Path string
		PathParameters map[string]string
	}
	body := get(t, base+"/HELLO/AdaLovelace")
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.RouteKey != "GET /Hello/{name}" ||
		r.Path != "/HELLO/AdaLovelace" || r.PathParameters["name"] != "AdaLovelace" {
		t.Errorf("GET /HELLO/AdaLovelace: %s; want the function with the path and parameter as sent", body)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestInvokeAPIAndAWSTarget drives hosted functions through turnout's Invoke
// API with the CLI (the real AWS SDK inside), routes a request to an aws:
// function whose endpoint is that same Invoke API (so the SDK invoker runs
// for real), and reads the invocation's logs by request id.
func TestInvokeAPIAndAWSTarget(t *testing.T) {
	dir := t.TempDir()
	legacy := namedOrigin(t, "legacy")
	invokeAddr := freePort(t)
	cfgPath := writeNodeConfig(t, dir, invokeAddr, fmt.Sprintf(`origins:
  legacy: {url: %s}
functions:
  hello2: {handler: %s}
  remote: {aws: {function: "arn:aws:lambda:us-east-1:000000000000:function:hello2", region: us-east-1, endpoint: "http://%s"}}
routes:
  - {match: "GET /remote/{name}", function: remote}
  - {match: /, origin: legacy}
`, legacy.URL, filepath.Join(functionDir, "hello-v2"), invokeAddr))
	// The SDK's default credential chain, for the aws: function.
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	n := startNode(t, cfgPath)

	// turnout invoke, through the Invoke API.
	var out, errb bytes.Buffer
	event := `{"rawPath":"/cli","pathParameters":{"name":"cli"}}`
	if code := run([]string{"invoke", "--invoke-api", "http://" + invokeAddr, "--log", "hello2", event}, &out, &errb); code != 0 {
		t.Fatalf("turnout invoke: exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), `\"name\":\"cli\"`) || !strings.Contains(errb.String(), "REPORT RequestId") {
		t.Errorf("turnout invoke: stdout %q, log %q", out.String(), errb.String())
	}
	if code := run([]string{"invoke", "--invoke-api", "http://" + invokeAddr, "nosuch"}, &out, &errb); code == 0 {
		t.Error("invoking an unknown function succeeded")
	}

	// ListFunctions and GetFunction, which clients call before they invoke.
	lc := invoketest.Client("http://" + invokeAddr)
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	list, err := lc.ListFunctions(lctx, &lambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 2 || aws.ToString(list.Functions[0].FunctionName) != "hello2" ||
		aws.ToString(list.Functions[1].FunctionName) != "remote" {
		t.Errorf("ListFunctions: %+v %v", list, err)
	}
	fnOut, err := lc.GetFunction(lctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello2")})
	if err != nil || aws.ToString(fnOut.Configuration.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:hello2" ||
		aws.ToInt32(fnOut.Configuration.Timeout) != 29 || fnOut.Configuration.State != lambdatypes.StateActive {
		t.Errorf("GetFunction hello2: %+v %v", fnOut, err)
	}

	// A route to the aws: function: gateway → SDK → Invoke API → hosted.
	req, _ := http.NewRequest("GET", "http://"+n.public+"/remote/sdk", nil)
	req.Header.Set("X-Request-Id", "via-aws-sdk")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"sdk"`) || !strings.Contains(string(body), `"routeKey":"GET /remote/{name}"`) {
		t.Fatalf("GET /remote/sdk through the AWS invoker: %d %s", resp.StatusCode, body)
	}

	// turnout logs FUNCTION --request-id: the platform lines of one invocation.
	var rid struct{ RequestID string }
	json.Unmarshal(body, &rid)
	out.Reset()
	errb.Reset()
	if code := run([]string{"logs", "--admin", n.admin, "--token", testToken, "--request-id", rid.RequestID, "hello2"}, &out, &errb); code != 0 {
		t.Fatalf("turnout logs: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "START RequestId: "+rid.RequestID) || !strings.Contains(out.String(), "END RequestId: "+rid.RequestID) {
		t.Errorf("turnout logs --request-id %s:\n%s", rid.RequestID, out.String())
	}
	if strings.Contains(out.String(), "/cli") {
		t.Errorf("logs of one request id include another invocation:\n%s", out.String())
	}

	// Following: a line logged after the follow starts arrives on it.
	c := &admin.Client{BaseURL: n.admin, Token: testToken}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 64)
	go c.FunctionLogs(ctx, "hello2", "", true, func(l fnhost.LogLine) { got <- l.Text })
	time.Sleep(300 * time.Millisecond) // the follow subscribes and replays the ring
	for len(got) > 0 {
		<-got
	}
	resp, err = http.Get("http://" + n.public + "/remote/follow")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for {
		select {
		case line := <-got:
			if strings.HasPrefix(line, "REPORT RequestId:") {
				return // the new invocation's REPORT, seen live
			}
		case <-ctx.Done():
			t.Fatal("turnout logs --follow saw no new invocation")
		}
	}
}

// startHelloNode starts a node with the given limits that sends
// POST /hello/{name} to the hello-v2 function and the rest to a legacy
// origin answering "legacy".
func startHelloNode(t *testing.T, limits string) *node {
	t.Helper()
	legacy := namedOrigin(t, "legacy")
	return startNode(t, writeNodeConfig(t, t.TempDir(), "off", fmt.Sprintf(`limits: %s
origins:
  legacy: {url: %s}
functions:
  hello2: {handler: %s}
routes:
  - {match: "POST /hello/{name}", function: hello2}
  - {match: /, origin: legacy}
`, limits, legacy.URL, filepath.Join(functionDir, "hello-v2"))))
}

// TestFunctionBodyLimit: a body over limits.max_body_bytes gets 413 on a
// function route, and the function never runs.
func TestFunctionBodyLimit(t *testing.T) {
	n := startHelloNode(t, "{max_body_bytes: 1024}")
	for _, tc := range []struct {
		size int
		code int
	}{{1024, 200}, {1025, 413}} {
		resp, err := http.Post("http://"+n.public+"/hello/x", "text/plain", strings.NewReader(strings.Repeat("a", tc.size)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%d-byte body: %d %s, want %d", tc.size, resp.StatusCode, b, tc.code)
		}
	}
}

// countingOrigin answers "legacy" and counts requests by method.
func countingOrigin(t *testing.T) (*httptest.Server, func(method string) int) {
	var mu sync.Mutex
	seen := map[string]int{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method]++
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "legacy")
	}))
	t.Cleanup(s.Close)
	return s, func(m string) int { mu.Lock(); defer mu.Unlock(); return seen[m] }
}

// TestFallbackToLegacy fails functions in every way a real process can and
// checks that clients of replayable requests only ever see the legacy
// origin's answer, that the breaker takes a failing function out of the
// path, that throttled requests spill over, and that a POST is never sent
// twice.
func TestFallbackToLegacy(t *testing.T) {
	dir := t.TempDir()
	legacy, seen := countingOrigin(t)
	fn := func(name string) string { return filepath.Join(functionDir, name) }
	cfgPath := writeNodeConfig(t, dir, "off", fmt.Sprintf(`origins:
  legacy: {url: %s}
functions:
  panic: {handler: %s}
  slow: {handler: %s, timeout: 200ms, env: {SLEEP_MS: "2000"}}
  busy: {handler: %s, concurrency: 1, queue_size: 0, env: {SLEEP_MS: "100"}}
  malformed: {handler: %s}
routes:
  - {match: "GET /fail", function: panic, fallback: legacy}
  - {match: "POST /fail", function: panic, fallback: legacy}
  - {match: "GET /slow", function: slow, fallback: legacy}
  - {match: "GET /busy", function: busy, fallback: legacy}
  - {match: "GET /malformed", function: malformed, fallback: legacy}
  - {match: /, origin: legacy}
`, legacy.URL, fn("panic"), fn("sleep"), fn("sleep"), fn("malformed")))
	n := startNode(t, cfgPath)
	base := "http://" + n.public

	check := func(method, path string) (int, string, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, "", ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("X-Turnout-Served-By")
	}
	for _, tc := range []struct{ path, reason string }{
		{"/slow", "fallback=timeout"},
		{"/malformed", "fallback=malformed_response"},
		{"/fail", "fallback=function_error"},
	} {
		code, body, by := check("GET", tc.path)
		if code != 200 || body != "legacy" || by != "origin:legacy; "+tc.reason {
			t.Errorf("GET %s: %d %q served by %q, want the legacy answer with %q", tc.path, code, body, by, tc.reason)
		}
	}

	// A function failing on every request: no client sees an error, and
	// the breaker stops calling it.
	for i := 0; i < 30; i++ {
		if code, body, _ := check("GET", "/fail"); code != 200 || body != "legacy" {
			t.Fatalf("GET /fail #%d: %d %q", i, code, body)
		}
	}
	_, _, by := check("GET", "/fail")
	if by != "origin:legacy; fallback=breaker_open" {
		t.Errorf("after 31 failures the breaker should be open; served by %q", by)
	}

	// POST is not replayable: the client gets the function's failure, and
	// the legacy origin never sees the request.
	if code, _, _ := check("POST", "/fail"); code != 502 {
		t.Errorf("POST /fail: %d", code)
	}
	if got := seen("POST"); got != 0 {
		t.Errorf("a POST was replayed on the legacy origin %d times", got)
	}

	// Concurrency 1, 50 parallel clients: the excess spills over.
	var wg sync.WaitGroup
	var mu sync.Mutex
	byWho := map[string]int{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, by := check("GET", "/busy")
			mu.Lock()
			byWho[fmt.Sprint(code, " ", by)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if byWho["200 origin:legacy; fallback=throttled"] == 0 || byWho["200 function:busy"] == 0 || len(byWho) != 2 {
		t.Errorf("50 clients on a concurrency-1 function: %v", byWho)
	}

	resp, body, err := n.api("GET", "/status", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err)
	}
	var st struct {
		Routes    []struct{ Match, Breaker string }
		Functions []struct {
			Function               string
			Invocations, Throttles uint64
		}
	}
	json.Unmarshal(body, &st)
	for _, f := range st.Functions {
		if f.Function == "panic" && f.Invocations >= 30 {
			t.Errorf("the open breaker still let %d invocations through", f.Invocations)
		}
		if f.Function == "busy" && f.Throttles == 0 {
			t.Errorf("throttles not counted: %+v", f)
		}
	}
	if st.Routes[0].Breaker != "open" {
		t.Errorf("status: GET /fail breaker %q, want open", st.Routes[0].Breaker)
	}

	// Metrics count each fallback by reason; the audit trail has the breaker.
	mresp, err := http.Get(n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`turnout_fallbacks_total{reason="function_error",route="GET /fail"}`,
		`turnout_fallbacks_total{reason="breaker_open",route="GET /fail"}`,
		`turnout_fallbacks_total{reason="throttled",route="GET /busy"}`,
		`turnout_fallbacks_total{reason="timeout",route="GET /slow"}`,
		`turnout_breaker_state{route="GET /fail"} 1`,
	} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	_, ab, _ := n.api("GET", "/audit?limit=50", nil)
	if !strings.Contains(string(ab), "circuit breaker closed → open") {
		t.Errorf("the audit trail lacks the breaker opening: %s", ab)
	}
}

// TestChaosAutoRollback flips a running function to failing under steady
// load: clients see no errors, the breaker opens within a second, an
// auto-rollback deployment is recorded within the window, and after the
// function is mended and the route switched on, traffic returns to it.
func TestChaosAutoRollback(t *testing.T) {
	dir := t.TempDir()
	legacy, _ := countingOrigin(t)
	flag := filepath.Join(dir, "broken")
	cfgPath := writeNodeConfig(t, dir, "off", fmt.Sprintf(`origins:
  legacy: {url: %s}
functions:
  flaky: {handler: %s, env: {FLAG_FILE: %s}}
routes:
  - match: "GET /flaky"
    function: flaky
    fallback: legacy
    auto_rollback: {max_error_rate: 0.05, window: 2s, min_requests: 5}
  - {match: /, origin: legacy}
`, legacy.URL, filepath.Join(functionDir, "flaky"), flag))
	n := startNode(t, cfgPath)
	url := "http://" + n.public + "/flaky"

	var mu sync.Mutex
	var total int
	var failures []string
	servedBy := map[string]int{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer testkit.Load(4, func(int) bool {
		resp, err := client.Get(url)
		mu.Lock()
		total++
		if err != nil {
			failures = append(failures, err.Error())
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			by := resp.Header.Get("X-Turnout-Served-By")
			servedBy[strings.SplitN(by, ";", 2)[0]]++
			if resp.StatusCode != 200 || (string(b) != "flaky ok" && string(b) != "legacy") {
				failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, b))
			}
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		return true
	})()

	status := func() (breaker string, causes []string) {
		_, body, _ := n.api("GET", "/status", nil)
		var st struct {
			Routes []struct{ Match, Breaker string }
		}
		json.Unmarshal(body, &st)
		if len(st.Routes) > 0 {
			breaker = st.Routes[0].Breaker
		}
		_, body, _ = n.api("GET", "/deployments?limit=50", nil)
		var ds []struct{ Cause string }
		json.Unmarshal(body, &ds)
		for _, d := range ds {
			causes = append(causes, d.Cause)
		}
		return
	}
	waitFor := func(what string, limit time.Duration, cond func() bool) time.Duration {
		start := time.Now()
		for time.Since(start) < limit {
			if cond() {
				return time.Since(start)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: not within %s", what, limit)
		return 0
	}
	waitFor("function serving", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return servedBy["function:flaky"] > 20 })

	os.WriteFile(flag, nil, 0o644) // break it
	opened := waitFor("breaker open", time.Second, func() bool { b, _ := status(); return b == "open" })
	var rollbackCause string
	waitFor("auto-rollback deployment", 5*time.Second, func() bool {
		_, causes := status()
		for _, c := range causes {
			if strings.HasPrefix(c, "auto-rollback: function errors") {
				rollbackCause = c
				return true
			}
		}
		return false
	})
	t.Logf("breaker opened %s after the break; deployment %q", opened.Round(time.Millisecond), rollbackCause)

	os.Remove(flag) // mend it, and switch the route back on
	if resp, body, err := n.api("POST", "/routes/on", map[string]string{"match": "GET /flaky", "message": "mended"}); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("route on: %v %s", err, body)
	}
	mu.Lock()
	before := servedBy["function:flaky"]
	mu.Unlock()
	waitFor("traffic back on the function", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return servedBy["function:flaky"] > before+20 })

	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 || total < 100 {
		t.Fatalf("%d of %d client requests failed: %q", len(failures), total, failures[:min(5, len(failures))])
	}
	t.Logf("%d requests, none failed; served by %v", total, servedBy)
}

// TestGracefulShutdown: SIGTERM lets requests in flight finish, then the
// process exits 0.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		fmt.Fprint(w, "done")
	}))
	defer slow.Close()
	cfgPath := writeNodeConfig(t, dir, "off", fmt.Sprintf("origins: {legacy: {url: %s}}\nroutes: [{match: /, origin: legacy}]\n", slow.URL))
	n := startNode(t, cfgPath)
	results := make(chan string, 5)
	for i := 0; i < 5; i++ {
		go func() {
			resp, err := http.Get("http://" + n.public + "/slow")
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprint(resp.StatusCode, " ", string(b))
		}()
	}
	time.Sleep(300 * time.Millisecond) // all five are in flight
	n.cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 5; i++ {
		if got := <-results; got != "200 done" {
			t.Errorf("in-flight request during shutdown: %s", got)
		}
	}
	if err := n.cmd.Wait(); err != nil {
		t.Errorf("turnout exited with %v after SIGTERM", err)
	}
}
