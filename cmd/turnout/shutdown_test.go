package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// childrenOf lists the pids whose parent is pid, from /proc.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("this test reads /proc (Linux): %v", err)
	}
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		var state string
		var ppid int
		if _, err := fmt.Sscanf(string(b[i+2:]), "%s %d", &state, &ppid); err == nil && ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// TestShutdownStopsFunctions sends SIGTERM while a hosted function request
// (1.5 s) is in flight and another function has a warm instance: the
// request completes, turnout exits 0, and every function process it
// started is gone (no orphans).
func TestShutdownStopsFunctions(t *testing.T) {
	dir := t.TempDir()
	legacy := namedOrigin(t, "legacy")
	cfg := writeNodeConfig(t, dir, "off", fmt.Sprintf(`
limits: {drain_timeout: 20s}
origins:
  legacy: {url: %s}
functions:
  hello2: {handler: %s}
  sleep: {handler: %s, timeout: 10s, env: {SLEEP_MS: "1500"}}
routes:
  - {match: "GET /hello/{name}", function: hello2}
  - {match: "GET /sleep", function: sleep}
  - {match: /, origin: legacy}
`, legacy.URL, filepath.Join(functionDir, "hello-v2"), filepath.Join(functionDir, "sleep")))
	s := startServed(t, turnoutBin, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("turnout log:\n%s", s.log())
		}
	})
	pid := s.cmd.Process.Pid

	if resp, err := http.Get("http://" + s.public + "/hello/warm"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("warm-up: %v %v", resp, err)
	}
	type result struct {
		code int
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + s.public + "/sleep")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, b, err}
	}()

	// Wait until both functions have an instance running under turnout.
	var fns []int
	for i := 0; i < 100; i++ {
		if fns = childrenOf(t, pid); len(fns) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(fns) < 2 {
		t.Fatalf("want 2 function processes under turnout, found %v", fns)
	}
	time.Sleep(200 * time.Millisecond) // the sleep request is in its handler
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	r := <-done
	if r.err != nil || r.code != 200 {
		t.Fatalf("in-flight function request during shutdown: %d %q %v", r.code, r.body, r.err)
	}
	var reply struct {
		PID     int `json:"pid"`
		SleptMS int `json:"slept_ms"`
	}
	if err := json.Unmarshal(r.body, &reply); err != nil || reply.SleptMS != 1500 {
		t.Fatalf("in-flight request answered %q", r.body)
	}
	if err := s.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("turnout exited with %v, want 0", err)
	}
	t.Logf("SIGTERM to exit: %v; function pids %v (the sleeping one %d)", time.Since(start).Round(time.Millisecond), fns, reply.PID)
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range fns {
		for alive(p) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(p) {
			t.Errorf("function process %d still running after turnout exited", p)
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}
