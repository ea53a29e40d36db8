package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/origin"
	"github.com/turnout/turnout/internal/testkit"
)

// TestLoopablePlanFields holds every field of plan and side to a decision
// in loopable: a field added to either fails here until someone decides
// whether a route that sets it may be served by the event loop.
func TestLoopablePlanFields(t *testing.T) {
	decided := map[string]string{
		"plan.pattern":       "recorded alike by record",
		"plan.off":           "an off route's primary is its off target: loopable when that is a plain origin",
		"plan.primary":       "its backend must be an origin, and see side",
		"plan.canary":        "not loopable",
		"plan.shadow":        "not loopable",
		"plan.guard":         "not loopable (forward_claims is the guard's)",
		"plan.keys":          "not loopable",
		"plan.cors":          "not loopable (a route's and the table-wide policy)",
		"plan.limiter":       "not loopable",
		"plan.spill":         "only with limiter",
		"plan.breaker":       "not loopable",
		"plan.health":        "loopable: End feeds it through plan.record",
		"plan.servedBy":      "AppendServedFields and AppendFailure write it",
		"plan.metrics":       "recorded alike by record",
		"plan.loop":          "the decision itself",
		"side.backend":       "an *originBackend",
		"side.fallback":      "not loopable",
		"side.timeout":       "not loopable",
		"side.bodyLimit":     "functions only; not loopable",
		"side.bodyWhose":     "with bodyLimit",
		"side.servedByValue": "AppendServedFields writes it",
		"side.observer":      "record resolves it",
		"side.fbObserver":    "fallback only",
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[plan](), reflect.TypeFor[side]()} {
		for f := range typ.Fields() {
			if _, ok := decided[typ.Name()+"."+f.Name]; !ok {
				t.Errorf("%s.%s is new: decide in loopable (loop.go) whether the event loop may serve a route that sets it, and add it here", typ.Name(), f.Name)
			}
		}
	}
}

// loopHarness is a gateway with hosted functions behind h1.Server, its
// access log and Observe hook kept.
type loopHarness struct {
	*harness
	logMu sync.Mutex
	log   bytes.Buffer
	obsMu sync.Mutex
	obs   []turnout.Observation
}

func newLoopHarness(t *testing.T, fns *invoke.Router, yaml string) *loopHarness {
	t.Helper()
	h := &loopHarness{}
	opts := Options{AccessLog: NewAccessLogger(lockedWriter{&h.log, &h.logMu}), Observe: func(o *turnout.Observation) {
		h.obsMu.Lock()
		h.obs = append(h.obs, *o)
		h.obsMu.Unlock()
	}}
	if fns != nil {
		opts.Functions = fns
	}
	h.harness = newHarnessWith(t, opts, yaml)
	return h
}

// loopConfig has a route of every kind: plain origin routes (one with
// auto-rollback, one switched off, one per host, one on an https origin the
// loop cannot reach), and routes the loop must leave to ServeHTTP.
func loopConfig(t *testing.T) (*invoke.Router, string) {
	t.Helper()
	dir := testkit.BuildFunctions(t, "sleep")
	host, err := fnhost.New(fnhost.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	legacy, a := newOrigin(t, "legacy"), newOrigin(t, "a")
	key := strings.Repeat("ab", 32)
	return &invoke.Router{Hosted: host}, fmt.Sprintf(`legacy: legacy
origins:
  legacy: {url: %s}
  a: {url: %s}
  tls: {url: "https://127.0.0.1:1"}
functions:
  quick: {handler: %s}
authorizers:
  idp: {jwt: {issuer: "http://127.0.0.1:1", audience: [api]}}
api_keys:
  web: {sha256: %s}
routes:
  - {match: "GET /plain/{id}", origin: a}
  - {match: "/any/", origin: a}
  - {match: "GET /watched", origin: a, auto_rollback: {max_error_rate: 0.5, window: 1m}}
  - {match: "GET /switched", origin: a, off: true}
  - {match: "GET api.example.com/v2/{rest...}", origin: a}
  - {match: "GET /tls", origin: tls}
  - {match: "GET /fn", function: quick}
  - {match: "GET /canary", origin: a, canary: {origin: legacy, weight: 50}}
  - {match: "GET /fallback", origin: a, fallback: legacy}
  - {match: "GET /nobreaker", origin: a, fallback: legacy, circuit_breaker: false}
  - {match: "GET /cors", origin: a, cors: {allow_origins: ["*"]}}
  - {match: "GET /private", origin: a, auth: {authorizer: idp}}
  - {match: "GET /keyed", origin: a, api_key_required: true}
  - {match: "GET /limited", origin: a, rate_limit: {rps: 1000}}
  - {match: "GET /timeout", origin: a, timeout: 5s}
  - {match: "GET /shadowed", origin: a, shadow: {to: legacy}}
  - {match: "GET /switched-guarded", origin: a, off: true, auth: {authorizer: idp}}
`, legacy.srv.URL, a.srv.URL, filepath.Join(dir, "sleep"), key)
}

// parse parses one request head as the event loop does.
func parse(t testing.TB, head string) *h1.Request {
	t.Helper()
	req := new(h1.Request)
	if err := h1.Parse(req, []byte(head), 1<<16); err != nil {
		t.Fatalf("h1.Parse(%q): %v", head, err)
	}
	return req
}

// TestBeginLoopDecides: BeginLoop takes exactly the requests that match a
// plain origin route and that ServeHTTP would serve without refusing
// them, and holds the table only for those.
func TestBeginLoopDecides(t *testing.T) {
	fns, cfg := loopConfig(t)
	h := newLoopHarness(t, fns, cfg)
	for _, tc := range []struct {
		name, head string
		ok         bool
	}{
		{"plain", "GET /plain/1 HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"query", "GET /plain/1?a=1&b=%2F HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"any method, no body", "DELETE /any/thing HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"POST with an empty body", "POST /any/thing HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", true},
		{"normalised path", "GET //plain/%31 HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"auto-rollback", "GET /watched HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"switched off", "GET /switched HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"host route", "GET /v2/a/b HTTP/1.1\r\nHost: API.Example.COM.:8080\r\n\r\n", true},
		{"client's request id", "GET /plain/1 HTTP/1.1\r\nHost: x\r\nx-request-id: abc-1\r\n\r\n", true},
		{"two request ids", "GET /plain/1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\nX-Request-Id: b\r\n\r\n", true},

		{"https origin", "GET /tls HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"function", "GET /fn HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"canary", "GET /canary HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"fallback and breaker", "GET /fallback HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"fallback", "GET /nobreaker HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"cors", "GET /cors HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"authorizer", "GET /private HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"api key", "GET /keyed HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"rate limit", "GET /limited HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"route timeout", "GET /timeout HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"shadow", "GET /shadowed HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"switched off, guarded", "GET /switched-guarded HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"no route", "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"method not routed", "POST /plain/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", false},
		{"OPTIONS", "OPTIONS /any/x HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"preflight", "OPTIONS /cors HTTP/1.1\r\nHost: x\r\nOrigin: http://o\r\nAccess-Control-Request-Method: GET\r\n\r\n", false},
		{"underscore header", "GET /plain/1 HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n", false},
		{"bad path", "GET /plain/..%2f HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"path parameter", "GET /plain/1;x HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"absolute form", "GET http://api.example.com/v2/a HTTP/1.1\r\nHost: api.example.com\r\n\r\n", false},
		{"body", "POST /any/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", false},
		{"chunked", "POST /any/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"expect", "POST /any/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", false},
		{"upgrade", "GET /plain/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"HTTP/1.0", "GET /plain/1 HTTP/1.0\r\nHost: x\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := h.gw.Active()
			before := gather(t, h.m)
			lx, ok := h.gw.BeginLoop(parse(t, tc.head), "127.0.0.1:1234")
			if ok != tc.ok {
				t.Fatalf("BeginLoop ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				if lx != nil || tbl.refs.Load() != 0 {
					t.Errorf("refused, yet the exchange is %v and the table has %d refs", lx, tbl.refs.Load())
				}
				if d := delta(before, gather(t, h.m)); len(d) != 0 {
					t.Errorf("refused, yet metrics moved: %v", d)
				}
				return
			}
			if tbl.refs.Load() != 1 {
				t.Errorf("table refs %d during the exchange, want 1", tbl.refs.Load())
			}
			lx.End(200, 0, nil, false, nil)
			if tbl.refs.Load() != 0 {
				t.Errorf("table refs %d after End, want 0", tbl.refs.Load())
			}
		})
	}
	h.logMu.Lock()
	defer h.logMu.Unlock()
	if n := strings.Count(h.log.String(), "\n"); n != 10 {
		t.Errorf("%d access-log lines for 10 exchanges the loop took", n)
	}
}

// TestBeginLoopAfterDeployment: a route that stops being plain is no
// longer the loop's, and an exchange begun on the old table holds it (its
// pools open) until End.
func TestBeginLoopAfterDeployment(t *testing.T) {
	a := newOrigin(t, "a")
	h := newHarness(t, fmt.Sprintf("origins: {a: {url: %s}}\nroutes: [{match: /, origin: a}]\n", a.srv.URL))
	head := "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
	old := h.gw.Active()
	lx, ok := h.gw.BeginLoop(parse(t, head), "127.0.0.1:1")
	if !ok {
		t.Fatal("the plain route is not the loop's")
	}
	h.apply(t, 2, fmt.Sprintf("origins: {b: {url: %s}}\nroutes: [{match: /, origin: b, rate_limit: {rps: 100}}]\n", a.srv.URL))
	if _, ok := h.gw.BeginLoop(parse(t, head), "127.0.0.1:1"); ok {
		t.Error("BeginLoop took a request of a route with a rate limit")
	}
	time.Sleep(100 * time.Millisecond) // several RetireGraces
	if old.refs.Load() != 1 {
		t.Errorf("the old table has %d refs, want the exchange's", old.refs.Load())
	}
	h.gw.mu.Lock()
	held := h.gw.pools[old.keys[0]] != nil
	h.gw.mu.Unlock()
	if !held {
		t.Error("the old table's pool was released while an exchange held the table")
	}
	lx.End(200, 2, nil, false, nil)
	if old.refs.Load() != 0 {
		t.Errorf("the old table has %d refs after End", old.refs.Load())
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		h.gw.mu.Lock()
		held = h.gw.pools[old.keys[0]] != nil
		h.gw.mu.Unlock()
		if !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old table's pool was never released after End")
		}
	}
}

// gather reads the registry's turnout_ families: each counter's and
// gauge's value and each histogram's count, by name and labels.
func gather(t testing.TB, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "turnout_") {
			continue // the process's and the Go runtime's
		}
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case mt.Counter != nil:
				out[key] = mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				out[key] = mt.GetGauge().GetValue()
			case mt.Histogram != nil:
				out[key+"_count"] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// delta is what changed from before to after.
func delta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			d[k] = -v
		}
	}
	return d
}

// records is what one request left in the gateway's records.
type records struct {
	metrics map[string]float64
	line    string // the access-log line, its time and duration blanked
	obs     turnout.Observation
	health  [2]int // the route's auto-rollback window: total, failed
}

var (
	lineTime     = regexp.MustCompile(`"time":"[^"]*"`)
	lineDuration = regexp.MustCompile(`"duration_ms":[-+.e0-9]+`)
)

// recordsOf runs do, which makes the gateway answer one request, and
// returns what it recorded; route's window, if any, is the one counted.
func (h *loopHarness) recordsOf(t *testing.T, route string, do func()) records {
	t.Helper()
	var hw *healthWindow
	for _, p := range h.gw.Active().plans {
		if p.pattern == route {
			hw = p.health
		}
	}
	var r records
	var tot0, fail0 int
	if hw != nil {
		tot0, fail0 = healthCounts(hw)
	}
	h.logMu.Lock()
	lines0 := strings.Count(h.log.String(), "\n")
	h.logMu.Unlock()
	h.obsMu.Lock()
	obs0 := len(h.obs)
	h.obsMu.Unlock()
	before := gather(t, h.m)
	do()
	// ServeHTTP records after its answer is on the way.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h.logMu.Lock()
		lines := strings.Split(h.log.String(), "\n")
		h.logMu.Unlock()
		h.obsMu.Lock()
		obs := h.obs
		h.obsMu.Unlock()
		if len(lines)-1 > lines0 && len(obs) > obs0 {
			if len(lines)-1 != lines0+1 || len(obs) != obs0+1 {
				t.Fatalf("one request recorded %d lines and %d observations", len(lines)-1-lines0, len(obs)-obs0)
			}
			r.line = lineDuration.ReplaceAllString(lineTime.ReplaceAllString(lines[lines0], `"time":"-"`), `"duration_ms":0`)
			r.obs = obs[obs0]
			r.obs.Time, r.obs.Duration = time.Time{}, 0
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the request was never recorded")
		}
	}
	r.metrics = delta(before, gather(t, h.m))
	if hw != nil {
		tot, fail := healthCounts(hw)
		r.health = [2]int{tot - tot0, fail - fail0}
	}
	return r
}

// viaServer sends head on a fresh connection to the gateway behind
// h1.Server and returns the answer and the connection's address as the
// server sees it (for BeginLoop's remote).
func viaServer(t *testing.T, addr, head string) (resp []byte, remote string) {
	t.Helper()
	c := testkit.Dial(t, addr, 10*time.Second)
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return b, c.LocalAddr().String()
}

// readAnswer parses an answer's status and body.
func readAnswer(t *testing.T, b []byte, method string) (int, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// withoutFields drops the named fields' lines from an answer's head.
func withoutFields(b []byte, names ...string) string {
	head, body, _ := strings.Cut(string(b), "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	lines = slices.DeleteFunc(lines, func(l string) bool {
		for _, n := range names {
			if strings.HasPrefix(l, n+": ") {
				return true
			}
		}
		return false
	})
	return strings.Join(lines, "\r\n") + "\r\n\r\n" + body
}

func compareRecords(t *testing.T, served, loop records) {
	t.Helper()
	if !reflect.DeepEqual(served.metrics, loop.metrics) {
		t.Errorf("metrics moved differently:\nServeHTTP %v\nloop      %v", served.metrics, loop.metrics)
	}
	if served.line != loop.line {
		t.Errorf("access-log lines differ:\nServeHTTP %s\nloop      %s", served.line, loop.line)
	}
	if served.obs != loop.obs {
		t.Errorf("observations differ:\nServeHTTP %+v\nloop      %+v", served.obs, loop.obs)
	}
	if served.health != loop.health {
		t.Errorf("auto-rollback window moved by %v on ServeHTTP, %v on the loop", served.health, loop.health)
	}
}

// TestLoopRecordsLikeServeHTTP: for requests the loop takes, BeginLoop and
// End record what ServeHTTP records for the same request answered the
// same way: metrics, access-log line (but its time and duration), Observe
// hook, auto-rollback window; and AppendServedFields writes the fields
// ServeHTTP adds to the origin's answer.
func TestLoopRecordsLikeServeHTTP(t *testing.T) {
	fns, cfg := loopConfig(t)
	h := newLoopHarness(t, fns, cfg)
	for _, tc := range []struct{ route, head string }{
		{"GET /plain/{id}", "GET /plain/7?q=1 HTTP/1.1\r\nHost: Example.com\r\nX-Request-Id: req-1\r\nConnection: close\r\n\r\n"},
		{"GET /plain/{id}", "GET /plain/%37? HTTP/1.1\r\nHost: x\r\nX-Request-Id: req-2\r\nConnection: close\r\n\r\n"},
		{"/any/", "HEAD /any/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: req-3\r\nConnection: close\r\n\r\n"},
		{"/any/", "POST /any/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-Request-Id: req-4\r\nConnection: close\r\n\r\n"},
		{"GET /watched", "GET /watched HTTP/1.1\r\nHost: x\r\nX-Request-Id: req-5\r\nConnection: close\r\n\r\n"},
		{"GET /switched", "GET /switched HTTP/1.1\r\nHost: x\r\nX-Request-Id: req-6\r\nConnection: close\r\n\r\n"},
		{"GET api.example.com/v2/{rest...}", "GET /v2/a HTTP/1.1\r\nHost: API.example.com:80\r\nX-Request-Id: req-7\r\nConnection: close\r\n\r\n"},
	} {
		t.Run(tc.head[:strings.Index(tc.head, " HTTP")], func(t *testing.T) {
			var resp []byte
			var remote string
			served := h.recordsOf(t, tc.route, func() { resp, remote = viaServer(t, h.addr, tc.head) })
			req := parse(t, tc.head)
			code, body := readAnswer(t, resp, req.Method)
			n := int64(len(body))
			var fields []byte
			loop := h.recordsOf(t, tc.route, func() {
				lx, ok := h.gw.BeginLoop(req, remote)
				if !ok {
					t.Fatal("BeginLoop refused a plain request")
				}
				fields = lx.AppendServedFields(nil)
				lx.End(code, n, nil, false, nil)
			})
			compareRecords(t, served, loop)
			if served.obs.Outcome != turnout.Served {
				t.Errorf("ServeHTTP's outcome %v", served.obs.Outcome)
			}
			for _, f := range strings.SplitAfter(string(fields), "\r\n") {
				if f != "" && !bytes.Contains(resp, []byte("\r\n"+f)) {
					t.Errorf("ServeHTTP's answer lacks the loop's field %q:\n%s", f, resp)
				}
			}
		})
	}
}

// TestLoopFailureLikeServeHTTP: for an origin that refuses connections
// (502) or does not answer in time (504), AppendFailure writes the answer
// h1.Server sends for ServeHTTP, byte for byte but Date and Connection,
// and End records the failure as ServeHTTP does.
func TestLoopFailureLikeServeHTTP(t *testing.T) {
	refused := testkit.RefusedURL(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // read nothing, answer nothing
		}
	}()
	silentURL := "http://" + silent.Addr().String()
	for _, servedBy := range []string{"", "served_by_header: off\n", "served_by_header: a-served-by\n"} {
		name := strings.TrimSpace(servedBy)
		if name == "" {
			name = "default header"
		}
		t.Run(name, func(t *testing.T) {
			loopFailures(t, servedBy, refused, silentURL)
		})
	}
}

// loopFailures is TestLoopFailureLikeServeHTTP with a deployment whose
// served-by setting is servedBy.
func loopFailures(t *testing.T, servedBy, refused, silentURL string) {
	h := newLoopHarness(t, nil, servedBy+fmt.Sprintf(`legacy: down
origins:
  down: {url: %s}
  silent: {url: %s, timeouts: {response_header: 200ms}}
routes:
  - {match: "/down/", origin: down, auto_rollback: {max_error_rate: 0.5, window: 1m}}
  - {match: "/silent/", origin: silent}
`, refused, silentURL))

	_, dialErr := net.Dial("tcp", strings.TrimPrefix(refused, "http://"))
	if dialErr == nil {
		t.Fatal("the refused origin accepted a connection")
	}
	for _, tc := range []struct {
		name, route, head string
		err               *origin.Error
		code              int
	}{
		{"refused", "/down/", "GET /down/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: f-1\r\nConnection: close\r\n\r\n",
			&origin.Error{Kind: origin.KindConnect, Instance: refused, Err: fmt.Errorf("connect: %w", dialErr)}, 502},
		{"refused HEAD", "/down/", "HEAD /down/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: f-2\r\nConnection: close\r\n\r\n",
			&origin.Error{Kind: origin.KindConnect, Instance: refused, Err: fmt.Errorf("connect: %w", dialErr)}, 502},
		{"timeout", "/silent/", "GET /silent/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: f-3\r\nConnection: close\r\n\r\n",
			&origin.Error{Kind: origin.KindTimeout, Instance: silentURL, Err: fmt.Errorf("read response head: %w", context.DeadlineExceeded)}, 504},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp []byte
			var remote string
			served := h.recordsOf(t, tc.route, func() { resp, remote = viaServer(t, h.addr, tc.head) })
			req := parse(t, tc.head)
			var answer []byte
			loop := h.recordsOf(t, tc.route, func() {
				lx, ok := h.gw.BeginLoop(req, remote)
				if !ok {
					t.Fatal("BeginLoop refused a plain request")
				}
				answer = lx.AppendFailure(nil, tc.err)
				lx.End(0, 0, tc.err, false, nil)
			})
			if code, _ := readAnswer(t, resp, req.Method); code != tc.code {
				t.Fatalf("ServeHTTP answered %d, want %d", code, tc.code)
			}
			if got, want := string(answer), withoutFields(resp, "Date", "Connection"); got != want {
				t.Errorf("AppendFailure:\n%q\nServeHTTP's answer:\n%q", got, want)
			}
			if tc.code == 504 {
				// The error's text names the connection's ports.
				blank := regexp.MustCompile(`"error":"[^"]*"`)
				served.line = blank.ReplaceAllString(served.line, `"error":"-"`)
				loop.line = blank.ReplaceAllString(loop.line, `"error":"-"`)
			}
			compareRecords(t, served, loop)
			if served.health != [2]int{} && served.health != [2]int{1, 1} {
				t.Errorf("the window saw %v for one failure", served.health)
			}
		})
	}
}

// TestLoopClientClosedLikeServeHTTP: a client that hangs up while the
// origin thinks is recorded by End as ServeHTTP records it (client_closed,
// 499, not the origin's failure, nothing in the auto-rollback window).
func TestLoopClientClosedLikeServeHTTP(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	h := newLoopHarness(t, nil, fmt.Sprintf("origins: {slow: {url: %s}}\nroutes: [{match: /, origin: slow, auto_rollback: {max_error_rate: 0.5, window: 1m}}]\n", slow.URL))
	head := "GET /wait HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-1\r\n\r\n"
	var remote string
	served := h.recordsOf(t, "/", func() {
		c := testkit.Dial(t, h.addr, 10*time.Second)
		remote = c.LocalAddr().String()
		io.WriteString(c, head)
		time.Sleep(100 * time.Millisecond)
		c.Close()
	})
	if served.obs.Outcome != turnout.ClientClosed {
		t.Fatalf("ServeHTTP recorded %v", served.obs.Outcome)
	}
	err := &origin.Error{Kind: origin.KindTimeout, Instance: slow.URL, Err: fmt.Errorf("read response head: %w", context.Canceled)}
	loop := h.recordsOf(t, "/", func() {
		lx, ok := h.gw.BeginLoop(parse(t, head), remote)
		if !ok {
			t.Fatal("BeginLoop refused a plain request")
		}
		lx.End(0, 0, nil, true, err)
	})
	compareRecords(t, served, loop)
}

// BenchmarkBeginLoop measures the gateway's share of a request the event
// loop serves: BeginLoop, the served fields, End (metrics, access log to
// io.Discard).
func BenchmarkBeginLoop(b *testing.B) {
	// Nothing connects to the origin.
	cfg, err := config.Parse("b.yaml", []byte("origins: {a: {url: \"http://127.0.0.1:1\"}}\nroutes: [{match: \"GET /plain/{id}\", origin: a}]\n"))
	if err != nil {
		b.Fatal(err)
	}
	gw := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), AccessLog: NewAccessLogger(io.Discard)})
	defer gw.Close()
	if err := gw.Apply(1, cfg); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, head string }{
		{"new id", "GET /plain/42?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"},
		{"client id", "GET /plain/42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nX-Request-Id: 0123456789abcdef\r\n\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := parse(b, bc.head)
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				lx, ok := gw.BeginLoop(req, "127.0.0.1:40000")
				if !ok {
					b.Fatal("not the loop's")
				}
				buf = lx.AppendServedFields(buf[:0])
				lx.End(200, 13, nil, false, nil)
			}
		})
	}
}
