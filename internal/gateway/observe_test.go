package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/shadow"
	"github.com/turnout/turnout/internal/testkit"
)

// fnHarness is a gateway with hosted functions (real processes built from
// examples/functions) and a legacy origin, behind a loopback listener, that
// keeps a copy of every Observation.
type fnHarness struct {
	gw     *Gateway
	m      *metrics.Metrics
	host   *fnhost.Host
	legacy *recordingOrigin
	addr   string
	flag   string // flaky fails while this file exists
	client *http.Client

	mu  sync.Mutex
	obs []turnout.Observation
}

func newFnHarness(t *testing.T) *fnHarness {
	t.Helper()
	dir := testkit.BuildFunctions(t, "flaky", "sleep", "malformed")
	var err error
	h := &fnHarness{m: metrics.New(), legacy: newOrigin(t, "legacy"), flag: filepath.Join(dir, "broken"),
		client: &http.Client{Timeout: 10 * time.Second}}
	quiet := slog.New(slog.DiscardHandler)
	if h.host, err = fnhost.New(fnhost.Options{Logger: quiet, OnInit: h.m.ObserveInit}); err != nil {
		t.Fatal(err)
	}
	h.gw = New(Options{Metrics: h.m, Logger: quiet, RetireGrace: 10 * time.Millisecond,
		Functions: &invoke.Router{Hosted: h.host}, Shadow: &shadow.Report{Requests: h.m.ShadowRequests}, Observe: func(o *turnout.Observation) {
			h.mu.Lock()
			h.obs = append(h.obs, *o)
			h.mu.Unlock()
		}})
	h.m.Registry.MustRegister(h.gw.HealthCollector(), metrics.FunctionCollector(h.host.Stats))
	bin := func(name string) string { return filepath.Join(dir, name) }
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`origins:
  legacy: {url: %s}
  dead: {url: %s}
functions:
  flaky: {handler: %s, env: {FLAG_FILE: %s}}
  busy: {handler: %s, concurrency: 1, queue_size: 0, env: {SLEEP_MS: "400"}}
  bad: {handler: %s}
  burst: {handler: %s, env: {SLEEP_MS: "200"}}
  quick: {handler: %s}
authorizers:
  idp: {jwt: {issuer: "http://127.0.0.1:1", audience: [api]}}
api_keys:
  web: {sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae}
routes:
  - {match: "GET /flaky", function: flaky, fallback: legacy}
  - {match: "POST /flaky", function: flaky}
  - {match: "GET /busy", function: busy, fallback: legacy}
  - {match: "GET /busy-alone", function: busy}
  - {match: "GET /bad", function: bad, fallback: legacy}
  - {match: "GET /burst", function: burst}
  - {match: "GET /limited", origin: legacy, rate_limit: {rps: 0.001, burst: 1, over: reject}}
  - {match: "/legacy/{id}", origin: legacy}
  - {match: "GET /dead", origin: dead}
  - {match: "GET /split", origin: legacy, canary: {function: quick, weight: 50, sticky: "header:X-User-Id"}}
  - {match: "GET /mirrored", origin: legacy, shadow: {to: quick}}
  - {match: "GET /private", origin: legacy, auth: {authorizer: idp}}
  - {match: "GET /keyed", origin: legacy, api_key_required: true}
`, h.legacy.srv.URL, testkit.RefusedURL(t), bin("flaky"), h.flag, bin("sleep"), bin("malformed"), bin("sleep"), bin("sleep"))))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.gw.Apply(1, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.gw.Close(); h.host.Close() })
	h.addr = serveEdge(t, h.gw)
	return h
}

// do sends one request and returns its status.
func (h *fnHarness) do(t *testing.T, method, target, contentType string, body []byte) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, "http://"+h.addr+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// doKey sends GET target with X-User-Id: key and returns its status and
// served-by header.
func (h *fnHarness) doKey(t *testing.T, target, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+h.addr+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-User-Id", key)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Turnout-Served-By")
}

// observed returns the observation of the request whose query was q.
func (h *fnHarness) observed(t *testing.T, q string) turnout.Observation {
	t.Helper()
	// The hook runs after the response is written, so the client can see
	// the response a moment before the observation lands.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h.mu.Lock()
		i := slices.IndexFunc(h.obs, func(o turnout.Observation) bool { return o.RawQuery == q })
		var o turnout.Observation
		if i >= 0 {
			o = h.obs[i]
		}
		h.mu.Unlock()
		if i >= 0 {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("no observation for the request with query %q", q)
		}
	}
}

// waitInUse waits until function fn holds n concurrency slots.
func (h *fnHarness) waitInUse(t *testing.T, fn string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		for _, s := range h.host.Stats() {
			if s.Function == fn && s.InUse == n {
				return
			}
		}
	}
	t.Fatalf("function %s never had %d invocations in flight", fn, n)
}

// scenario drives one request of every outcome and checks what the
// Observe hook saw for each. The metrics test reuses it.
func (h *fnHarness) scenario(t *testing.T) {
	type want struct {
		outcome, reason, route, target string
		status                         int
	}
	check := func(q string, got int, w want) turnout.Observation {
		t.Helper()
		o := h.observed(t, q)
		if got != w.status || o.Status != w.status || o.Outcome.String() != w.outcome || o.Reason != w.reason || o.Route != w.route || o.Target != w.target {
			t.Errorf("request ?%s: client got %d; observed outcome=%q reason=%q route=%q target=%q status=%d; want %+v",
				q, got, o.Outcome, o.Reason, o.Route, o.Target, o.Status, w)
		}
		if o.Time.IsZero() || o.Duration <= 0 || o.Method == "" || o.Host != h.addr {
			t.Errorf("request ?%s: observation lacks time, duration, method or host: %+v", q, o)
		}
		return o
	}

	// Served by the function.
	o := check("n=served", h.do(t, "GET", "/flaky?n=served", "", nil), want{"served", "", "GET /flaky", "function:flaky", 200})
	if o.Path != "/flaky" || o.Method != "GET" || o.RequestBytes != 0 || o.BinaryBody || o.Bytes != int64(len("flaky ok")) {
		t.Errorf("served observation: %+v", o)
	}
	// Buffered bodies are judged by UTF-8 validity.
	o = check("n=bin", h.do(t, "POST", "/flaky?n=bin", "text/plain", []byte{0xff, 0xfe, 0}), want{"served", "", "POST /flaky", "function:flaky", 200})
	if !o.BinaryBody || o.RequestBytes != 3 {
		t.Errorf("a non-UTF-8 function body: BinaryBody=%v RequestBytes=%d, want true 3", o.BinaryBody, o.RequestBytes)
	}
	o = check("n=text", h.do(t, "POST", "/flaky?n=text", "application/octet-stream", []byte(`{"a":"é"}`)), want{"served", "", "POST /flaky", "function:flaky", 200})
	if o.BinaryBody || o.RequestBytes != int64(len(`{"a":"é"}`)) {
		t.Errorf("a UTF-8 function body: BinaryBody=%v RequestBytes=%d", o.BinaryBody, o.RequestBytes)
	}
	// Streamed bodies are judged by Content-Type; the path is the raw one.
	o = check("n=png", h.do(t, "PUT", "/legacy/%41b?n=png", "image/png", []byte("abc")), want{"served", "", "/legacy/{id}", "origin:legacy", 200})
	if !o.BinaryBody || o.RequestBytes != 3 || o.Path != "/legacy/%41b" {
		t.Errorf("a streamed image/png body to %q: BinaryBody=%v RequestBytes=%d", o.Path, o.BinaryBody, o.RequestBytes)
	}
	o = check("n=json", h.do(t, "PUT", "/legacy/1?n=json", "application/json; charset=utf-8", []byte("{}")), want{"served", "", "/legacy/{id}", "origin:legacy", 200})
	if o.BinaryBody {
		t.Errorf("a streamed JSON body counted as binary")
	}

	// The function fails: the fallback answers, with the reason. Five
	// failures in a row open the breaker.
	if err := os.WriteFile(h.flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		q := fmt.Sprintf("n=fail%d", i)
		check(q, h.do(t, "GET", "/flaky?"+q, "", nil), want{"fallback", "function_error", "GET /flaky", "origin:legacy", 200})
	}
	check("n=open", h.do(t, "GET", "/flaky?n=open", "", nil), want{"breaker_open", "breaker_open", "GET /flaky", "origin:legacy", 200})
	check("n=bad", h.do(t, "GET", "/bad?n=bad", "", nil), want{"fallback", "malformed_response", "GET /bad", "origin:legacy", 200})

	// Throttled: busy (concurrency 1) is held by one request, so the next
	// goes to the fallback on /busy and gets a 429 on /busy-alone.
	held := make(chan int, 1)
	go func() { held <- h.do(t, "GET", "/busy-alone?n=held", "", nil) }()
	h.waitInUse(t, "busy", 1)
	check("n=spill", h.do(t, "GET", "/busy?n=spill", "", nil), want{"throttled", "throttled", "GET /busy", "origin:legacy", 200})
	check("n=429", h.do(t, "GET", "/busy-alone?n=429", "", nil), want{"throttled", "throttled", "GET /busy-alone", "function:busy", 429})
	check("n=held", <-held, want{"served", "", "GET /busy-alone", "function:busy", 200})

	// Over a route's rate limit.
	check("n=lim1", h.do(t, "GET", "/limited?n=lim1", "", nil), want{"served", "", "GET /limited", "origin:legacy", 200})
	check("n=lim2", h.do(t, "GET", "/limited?n=lim2", "", nil), want{"throttled", "rate_limited", "GET /limited", "origin:legacy", 429})

	// No backend answers: the origin refuses connections.
	check("n=dead", h.do(t, "GET", "/dead?n=dead", "", nil), want{"error", "origin_connect", "GET /dead", "origin:dead", 502})

	// A route with a canary (the function quick, weight 50 %, sticky on
	// X-User-Id): each key's side is the split's, the canary's answer says
	// so, and the observation carries the side and the target that served.
	for _, c := range []struct {
		side   turnout.Side
		target string
	}{{turnout.Baseline, "origin:legacy"}, {turnout.Canary, "function:quick"}} {
		q := "n=" + c.side.String()
		code, servedBy := h.doKey(t, "/split?"+q, splitKey(c.side, 5000))
		if o := check(q, code, want{"served", "", "GET /split", c.target, 200}); o.Side != c.side {
			t.Errorf("request ?%s: observed side %s, want %s", q, o.Side, c.side)
		}
		if want := c.target + map[turnout.Side]string{turnout.Canary: "; canary"}[c.side]; servedBy != want {
			t.Errorf("request ?%s: served by %q, want %q", q, servedBy, want)
		}
	}

	// Refused before routing, and no route.
	resp := raw(t, h.addr, "GET /a/../b;x?n=reject HTTP/1.1\r\nHost: "+h.addr+"\r\nConnection: close\r\n\r\n")
	o = check("n=reject", status(resp), want{"rejected", "bad_path", "", "", 400})
	if o.Path != "/a/../b;x" {
		t.Errorf("rejected request path %q, want the raw /a/../b;x", o.Path)
	}
	check("n=404", h.do(t, "GET", "/nowhere?n=404", "", nil), want{"rejected", "no_route", "", "", 404})
}

func TestObserveOutcomes(t *testing.T) {
	h := newFnHarness(t)
	h.scenario(t)
	h.mu.Lock()
	n := len(h.obs)
	h.mu.Unlock()
	if n != 22 {
		t.Errorf("the hook ran %d times for 22 requests", n)
	}
}

// TestMetricsAfterTraffic drives every outcome through a gateway with real
// functions, then gathers the registry: the series and values each outcome
// must leave, the scrape-time gauges, and the naming lint.
func TestMetricsAfterTraffic(t *testing.T) {
	h := newFnHarness(t)
	h.scenario(t)
	m := h.m

	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"served by flaky", testutil.ToFloat64(m.Requests.WithLabelValues("GET /flaky", "function:flaky", "2xx", "served")), 1},
		{"fallbacks for flaky", testutil.ToFloat64(m.Requests.WithLabelValues("GET /flaky", "origin:legacy", "2xx", "fallback")), 5},
		{"breaker open on flaky", testutil.ToFloat64(m.Requests.WithLabelValues("GET /flaky", "origin:legacy", "2xx", "breaker_open")), 1},
		{"throttled to the fallback", testutil.ToFloat64(m.Requests.WithLabelValues("GET /busy", "origin:legacy", "2xx", "throttled")), 1},
		{"throttled with 429", testutil.ToFloat64(m.Requests.WithLabelValues("GET /busy-alone", "function:busy", "4xx", "throttled")), 1},
		{"rate limited", testutil.ToFloat64(m.Requests.WithLabelValues("GET /limited", "origin:legacy", "4xx", "throttled")), 1},
		{"rejected", testutil.ToFloat64(m.Requests.WithLabelValues("", "", "4xx", "rejected")), 2},
		{"fallback reason function_error", testutil.ToFloat64(m.Fallbacks.WithLabelValues("GET /flaky", "function_error")), 5},
		{"fallback reason breaker_open", testutil.ToFloat64(m.Fallbacks.WithLabelValues("GET /flaky", "breaker_open")), 1},
		{"fallback reason throttled", testutil.ToFloat64(m.Fallbacks.WithLabelValues("GET /busy", "throttled")), 1},
		{"rejected no_route", testutil.ToFloat64(m.Rejected.WithLabelValues("no_route")), 1},
		{"rejected bad_path", testutil.ToFloat64(m.Rejected.WithLabelValues("bad_path")), 1},
		{"rejected rate_limited", testutil.ToFloat64(m.Rejected.WithLabelValues("rate_limited")), 1},
		{"flaky successes", testutil.ToFloat64(m.Invocations.WithLabelValues("flaky", "hosted", "success")), 3},
		{"flaky errors", testutil.ToFloat64(m.Invocations.WithLabelValues("flaky", "hosted", "function_error")), 5},
		{"busy throttles", testutil.ToFloat64(m.Invocations.WithLabelValues("busy", "hosted", "throttled")), 2},
		{"busy successes", testutil.ToFloat64(m.Invocations.WithLabelValues("busy", "hosted", "success")), 1},
		{"bad malformed", testutil.ToFloat64(m.Invocations.WithLabelValues("bad", "hosted", "malformed_response")), 1},
		{"dead origin", testutil.ToFloat64(m.Requests.WithLabelValues("GET /dead", "origin:dead", "5xx", "error")), 1},
		{"dead origin errors", testutil.ToFloat64(m.OriginErrors.WithLabelValues("dead", "connect")), 1},
		{"deployment", testutil.ToFloat64(m.ActiveDeployment), 1},
		{"split baseline", testutil.ToFloat64(m.Requests.WithLabelValues("GET /split", "origin:legacy", "2xx", "served")), 1},
		{"split canary", testutil.ToFloat64(m.Requests.WithLabelValues("GET /split", "function:quick", "2xx", "served")), 1},
		{"split baseline side", testutil.ToFloat64(m.CanaryRequests.WithLabelValues("GET /split", "baseline", "served")), 1},
		{"split canary side", testutil.ToFloat64(m.CanaryRequests.WithLabelValues("GET /split", "canary", "served")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	// Only the outcomes that happened have series: served for every class
	// of each used target, the rest as they occurred.
	if n := testutil.CollectAndCount(m.Requests, "turnout_requests_total"); n != 8*6+8 {
		t.Errorf("turnout_requests_total has %d series, want %d", n, 8*6+8)
	}
	if n := testutil.CollectAndCount(m.CanaryRequests, "turnout_canary_requests_total"); n != 2 {
		t.Errorf("turnout_canary_requests_total has %d series, want 2 (served on each side)", n)
	}

	// A copy for a shadow: counted once the worker has compared it.
	h.do(t, "GET", "/mirrored", "", nil)
	testkit.Eventually(t, 10*time.Second, "the shadow's comparison counted", func() bool {
		return testutil.ToFloat64(m.ShadowRequests.WithLabelValues("GET /mirrored", shadow.ResultDiff)) == 1
	})
	// A request its route's authorizer refuses: no token.
	if code := h.do(t, "GET", "/private", "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /private without a token: %d, want 401", code)
	}
	if v := testutil.ToFloat64(m.Auth.WithLabelValues("GET /private", "idp", "unauthorized")); v != 1 {
		t.Errorf("turnout_auth_total unauthorized %v, want 1", v)
	}
	// A request without the API key its route requires.
	if code := h.do(t, "GET", "/keyed", "", nil); code != http.StatusForbidden {
		t.Errorf("GET /keyed without a key: %d, want 403", code)
	}
	if v := testutil.ToFloat64(m.APIKeyRequests.WithLabelValues("", "missing")); v != 1 {
		t.Errorf("turnout_api_key_requests_total missing %v, want 1", v)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// find returns the family and series index of name{labels}, or -1s.
	find := func(name string, labels ...string) (int, int) {
		t.Helper()
		for i, f := range families {
			if f.GetName() != name {
				continue
			}
		next:
			for j, mt := range f.GetMetric() {
				for k := 0; k+1 < len(labels); k += 2 {
					found := false
					for _, l := range mt.GetLabel() {
						found = found || l.GetName() == labels[k] && l.GetValue() == labels[k+1]
					}
					if !found {
						continue next
					}
				}
				return i, j
			}
		}
		t.Errorf("no series %s%v", name, labels)
		return -1, -1
	}
	gauge := func(name string, labels ...string) float64 {
		if i, j := find(name, labels...); i >= 0 {
			return families[i].GetMetric()[j].GetGauge().GetValue()
		}
		return -1
	}
	counter := func(name string, labels ...string) float64 {
		if i, j := find(name, labels...); i >= 0 {
			return families[i].GetMetric()[j].GetCounter().GetValue()
		}
		return -1
	}
	samples := func(name string, labels ...string) uint64 {
		if i, j := find(name, labels...); i >= 0 {
			return families[i].GetMetric()[j].GetHistogram().GetSampleCount()
		}
		return 0
	}
	if v := gauge("turnout_breaker_state", "route", "GET /flaky"); v != 1 {
		t.Errorf("breaker state of GET /flaky %v, want 1 (open)", v)
	}
	if v := gauge("turnout_breaker_state", "route", "GET /busy"); v != 0 {
		t.Errorf("breaker state of GET /busy %v, want 0 (closed)", v)
	}
	if v := gauge("turnout_origin_up", "origin", "legacy", "address", h.legacy.srv.URL); v != 1 {
		t.Errorf("turnout_origin_up of legacy %v, want 1", v)
	}
	if v := gauge("turnout_function_concurrency_limit", "function", "busy"); v != 1 {
		t.Errorf("busy's concurrency limit %v, want 1", v)
	}
	if v := gauge("turnout_function_concurrency_in_use", "function", "busy"); v != 0 {
		t.Errorf("busy's concurrency in use %v after its requests, want 0", v)
	}
	if v := gauge("turnout_function_instances", "function", "flaky", "state", "idle") + gauge("turnout_function_instances", "function", "flaky", "state", "busy"); v < 1 {
		t.Errorf("flaky has %v instances, want at least 1", v)
	}
	if v := counter("turnout_function_cold_starts_total", "function", "busy"); v != 1 {
		t.Errorf("busy cold starts %v, want 1", v)
	}
	if n := samples("turnout_function_init_duration_seconds", "function", "busy"); n != 1 {
		t.Errorf("busy init durations observed %d, want 1", n)
	}
	if n := samples("turnout_function_invocation_duration_seconds", "function", "flaky", "platform", "hosted"); n != 8 {
		t.Errorf("flaky invocation durations observed %d, want 8", n)
	}
	if n := samples("turnout_request_duration_seconds", "route", "GET /flaky", "target", "origin:legacy"); n != 6 {
		t.Errorf("durations of GET /flaky answered by the fallback %d, want 6", n)
	}

	// metrics.Families lists exactly the families and labels turnout
	// exposes once each has happened, so the dashboard check can trust it.
	declared := map[string][]string{}
	var names, exposed []string
	for _, f := range metrics.Families() {
		declared[f.Name] = f.Labels
		names = append(names, f.Name)
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "turnout_") {
			continue
		}
		exposed = append(exposed, f.GetName())
		for _, mt := range f.GetMetric() {
			var got []string
			for _, l := range mt.GetLabel() {
				got = append(got, l.GetName())
			}
			want := slices.Clone(declared[f.GetName()])
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s has labels %v, metrics.Families declares %v", f.GetName(), got, want)
				break
			}
		}
	}
	slices.Sort(exposed)
	slices.Sort(names)
	if !slices.Equal(exposed, names) {
		t.Errorf("exposed families differ from metrics.Families():\nexposed %v\nnames   %v", exposed, names)
	}

	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestBinaryType(t *testing.T) {
	for ct, want := range map[string]bool{
		"":                                  false,
		"text/plain; charset=latin1":        false,
		"application/json":                  false,
		"application/problem+json":          false,
		"application/soap+xml":              false,
		"application/x-www-form-urlencoded": false,
		"not a media type;;":                false,
		"application/octet-stream":          true,
		"image/png":                         true,
		"multipart/form-data; boundary=x":   true,
		"application/protobuf":              true,
		"application/pdf":                   true,
	} {
		if got := binaryType(ct); got != want {
			t.Errorf("binaryType(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestRawPath(t *testing.T) {
	for _, c := range []struct{ uri, want string }{
		{"/a/%41?x=1", "/a/%41"},
		{"/a;b", "/a;b"},
		{"http://h.test/p/%2F?q", "/p/%2F"},
		{"*", "*"},
	} {
		r := &http.Request{RequestURI: c.uri, URL: &url.URL{}}
		if got := rawPath(r); got != c.want {
			t.Errorf("rawPath(%q) = %q, want %q", c.uri, got, c.want)
		}
	}
}

func TestInvocationResult(t *testing.T) {
	fail := &failure{reason: "x"}
	for _, c := range []struct {
		name string
		resp invoke.Response
		err  error
		f    *failure
		want string
	}{
		{"success", invoke.Response{Payload: []byte(`{"statusCode":200}`)}, nil, nil, "success"},
		{"handler error", invoke.Response{FunctionError: "Unhandled", Payload: []byte(`{"errorType":"errorString"}`)}, nil, fail, "function_error"},
		{"crash", invoke.Response{FunctionError: "Unhandled", Payload: []byte(`{"errorMessage":"exit","errorType":"Runtime.ExitError"}`)}, nil, fail, "crash"},
		{"timeout", invoke.Response{FunctionError: "Unhandled", TimedOut: true}, nil, fail, "timeout"},
		{"throttled", invoke.Response{}, &invoke.Error{Kind: invoke.KindThrottled}, &failure{reason: "throttled"}, "throttled"},
		{"client gone", invoke.Response{}, context.Canceled, clientClosed(context.Canceled), "client_closed"},
		{"malformed", invoke.Response{Payload: []byte(`{}`)}, nil, &failure{reason: "malformed_response"}, "malformed_response"},
	} {
		if got := invocationResult(c.resp, c.err, c.f); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// A function with no concurrency or queue set answers a burst a few
// requests over its default limit with 200s, as the monolith did, not with
// 429s (issue 13, item 10): the excess waits in the queue.
func TestDefaultsAbsorbBurst(t *testing.T) {
	h := newFnHarness(t)
	limit := 0
	for _, s := range h.host.Stats() {
		if s.Function == "burst" {
			limit = s.Concurrency
		}
	}
	if limit != config.DefaultConcurrency() {
		t.Fatalf("burst's limit %d, want the default %d", limit, config.DefaultConcurrency())
	}
	round := func(n int) map[int]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code := h.do(t, "GET", "/burst", "", nil)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return codes
	}
	// Warm: the queued requests then wait for one 200 ms invocation, not
	// for cold starts on a loaded machine.
	if codes := round(limit); codes[200] != limit {
		t.Fatalf("warm-up of %d: %v", limit, codes)
	}
	if codes := round(limit + 3); codes[200] != limit+3 {
		t.Errorf("%d concurrent requests over a default limit of %d: %v, want all 200", limit+3, limit, codes)
	}
}
