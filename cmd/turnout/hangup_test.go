package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/testkit"
)

// hangUpCount is how many client hang-ups TestClientHangUps sends to each
// route: TURNOUT_HANGUPS, default 200. The figures in the docs were
// measured with TURNOUT_HANGUPS=1000.
func hangUpCount(t *testing.T) int {
	if v := os.Getenv("TURNOUT_HANGUPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			t.Fatalf("TURNOUT_HANGUPS=%q: want a count from 1 to 100000", v)
		}
		return n
	}
	return 200
}

// TestClientHangUps runs turnout serve with a healthy but slow origin (2 s)
// and a healthy 300 ms hosted function (the aws-lambda-go sleep example),
// each behind a fallback, a breaker and auto-rollback, and sends clients
// that hang up after 50 ms, for at least three auto-rollback windows. The
// breakers stay closed, no auto-rollback deployment is recorded, nothing
// reaches the fallback, and every hang-up is counted as client_closed in
// /metrics and as status 499 in the access log.
func TestClientHangUps(t *testing.T) {
	dir := t.TempDir()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
			io.WriteString(w, "slow ok")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	legacy, legacyCount := countingOrigin(t)
	cfgPath := writeNodeConfig(t, dir, "off", fmt.Sprintf(`origins:
  legacy: {url: %s}
  slow: {url: %s}
functions:
  sleep: {handler: %s, concurrency: 5, queue_size: 10000, queue_timeout: 10s, env: {SLEEP_MS: "300"}}
routes:
  - match: "GET /slow"
    origin: slow
    fallback: legacy
    timeout: 10s
    auto_rollback: {max_error_rate: 0.5, window: 1s, min_requests: 5}
  - match: "GET /sleep"
    function: sleep
    fallback: legacy
    auto_rollback: {max_error_rate: 0.5, window: 1s, min_requests: 5}
  - {match: /, origin: legacy}
`, legacy.URL, slow.URL, filepath.Join(functionDir, "sleep")))
	accessLog := filepath.Join(dir, "access.log")
	n := startNodeArgs(t, cfgPath, "--access-log", accessLog)

	want := hangUpCount(t)
	sent := map[string]int{}
	answered := 0
	for _, path := range []string{"/slow", "/sleep"} {
		// At least want clients, and for at least three windows.
		start := time.Now()
		for sent[path] < want || time.Since(start) < 3*time.Second {
			k := min(50, max(want-sent[path], 10))
			answered += testkit.HangUps(t, n.public, path, k, k, 50*time.Millisecond)
			sent[path] += k
		}
	}
	if a := answered; a != 0 {
		t.Errorf("%d clients got an answer within 50 ms; both backends are slower", a)
	}
	time.Sleep(2 * time.Second) // two more auto-rollback checks

	// Breakers and history.
	_, body, err := n.api("GET", "/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Active struct{ ID uint64 }
		Routes []struct{ Match, Breaker string }
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("status: %v: %s", err, body)
	}
	breakers := map[string]string{}
	for _, r := range st.Routes {
		breakers[r.Match] = r.Breaker
	}
	_, body, _ = n.api("GET", "/deployments?limit=50", nil)
	var ds []struct {
		ID    uint64
		Cause string
	}
	json.Unmarshal(body, &ds)
	t.Logf("after %v client hang-ups: breakers %v; deployments %+v", sent, breakers, ds)
	if breakers["GET /slow"] != "closed" || breakers["GET /sleep"] != "closed" {
		t.Errorf("breakers after client hang-ups: %v, want both closed", breakers)
	}
	if len(ds) != 1 || st.Active.ID != 1 {
		t.Errorf("history after client hang-ups: %+v (active %d), want only deployment 1", ds, st.Active.ID)
	}
	if got := legacyCount("GET"); got != 0 {
		t.Errorf("%d hang-ups were sent to the fallback", got)
	}

	// /metrics.
	resp, err := http.Get(n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metric := func(re string) float64 {
		m := regexp.MustCompile(`(?m)^` + re + ` (\S+)$`).FindSubmatch(mb)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	// Every request of the route that reached turnout is a client_closed
	// one. On a loaded machine a client may give up before turnout has read
	// its request at all (no request, nothing to count): at most 2 % of them.
	seen := map[string]float64{}
	for _, m := range regexp.MustCompile(`(?m)^turnout_requests_total\{[^}]*route="GET (/\w+)"[^}]*\} (\S+)$`).FindAllSubmatch(mb, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		seen[string(m[1])] += v
	}
	for path, n := range sent {
		if seen[path] < 0.98*float64(n) || seen[path] > float64(n) {
			t.Errorf("/metrics: %v requests of GET %s seen, of %d hang-ups sent", seen[path], path, n)
		}
	}
	for _, c := range []struct {
		name, re string
		want     float64
	}{
		{"slow client_closed", `turnout_requests_total\{code="4xx",outcome="client_closed",route="GET /slow",target="origin:slow"\}`, seen["/slow"]},
		{"sleep client_closed", `turnout_requests_total\{code="4xx",outcome="client_closed",route="GET /sleep",target="function:sleep"\}`, seen["/sleep"]},
		{"sleep invocations client_closed", `turnout_function_invocations_total\{function="sleep",platform="hosted",result="client_closed"\}`, seen["/sleep"]},
		{"slow breaker", `turnout_breaker_state\{route="GET /slow"\}`, 0},
		{"sleep breaker", `turnout_breaker_state\{route="GET /sleep"\}`, 0},
	} {
		if got := metric(c.re); got != c.want {
			t.Errorf("/metrics %s: %v, want %v", c.name, got, c.want)
		}
	}
	for _, bad := range []string{"turnout_fallbacks_total{", "turnout_origin_errors_total{", `outcome="error"`, `outcome="breaker_open"`} {
		if strings.Contains(string(mb), bad) {
			t.Errorf("/metrics has %s after client hang-ups only", bad)
		}
	}

	// The access log (flushed every 200 ms).
	var closed map[string]int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(accessLog)
		closed = map[string]int{}
		for _, line := range strings.Split(string(b), "\n") {
			var rec struct {
				Path, Outcome string
				Status        int
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Status == 499 && rec.Outcome == turnout.ClientClosed.String() {
				closed[rec.Path]++
			}
		}
		if float64(closed["/slow"]) == seen["/slow"] && float64(closed["/sleep"]) == seen["/sleep"] {
			break
		}
	}
	if float64(closed["/slow"]) != seen["/slow"] || float64(closed["/sleep"]) != seen["/sleep"] {
		t.Errorf("access log: %v records with status 499, outcome client_closed; want %v (every request seen)", closed, seen)
	}
}
