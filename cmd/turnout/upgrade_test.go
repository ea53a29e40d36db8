package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/testkit"
)

// served is a turnout process started by a test whose stderr is an OS
// pipe the test reads: a process started by an upgrade inherits it, so the
// log shows both, and Wait does not wait for the new process to exit.
type served struct {
	*node
	exited chan struct{} // closed when the first process has exited
	err    error         // its Wait result, once exited is closed
	lines  chan logLine  // "turnout listening" records, old and new process
	https  string        // the HTTPS listener's address, or "off"
}

type logLine struct{ Msg, Public, HTTPS, Admin string }

func startServed(t *testing.T, bin, cfgPath string, args ...string) *served {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "-c", cfgPath, "--access-log", "off"}, args...)...)
	cmd.Dir = filepath.Dir(cfgPath)
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	s := &served{node: &node{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}, exited: make(chan struct{}), lines: make(chan logLine, 16)}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stderr.WriteString(line + "\n")
			s.mu.Unlock()
			var rec logLine
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "turnout listening" {
				s.lines <- rec
			}
		}
		pr.Close()
	}()
	go func() { s.err = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.exited
	})
	select {
	case rec := <-s.lines:
		s.public, s.admin, s.https = rec.Public, rec.Admin, rec.HTTPS
	case <-time.After(30 * time.Second):
		t.Fatalf("turnout did not start:\n%s", s.log())
	}
	return s
}

func (s *served) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// waitExit waits for the first process to exit and returns its error.
func (s *served) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-s.exited:
		return s.err
	case <-time.After(d):
		t.Fatalf("turnout pid %d did not exit within %v:\n%s", s.cmd.Process.Pid, d, s.log())
		return nil
	}
}

func (s *served) activeDeployment(t *testing.T) uint64 {
	t.Helper()
	resp, body, err := s.api("GET", "/status", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin status: %v %s", err, body)
	}
	var st struct{ Active struct{ ID uint64 } }
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st.Active.ID
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie has exited; only its parent has not reaped it yet.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file holds %q", b)
	}
	return pid
}

func readPIDOrZero(path string) int {
	b, _ := os.ReadFile(path)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// installBinary copies src to dst the way an operator installs a new
// version: write beside, then rename over the running file.
func installBinary(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".new", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		t.Fatal(err)
	}
}

// TestZeroDowntimeUpgrade installs a new binary over the running one and
// sends SIGHUP while six HTTP/1.1 clients (keep-alive and fresh
// connections), two HTTP/2 clients and two HTTP/1.1 clients with a fresh
// TLS connection per request on the HTTPS listener call an origin
// route and a hosted function route: no request may fail, the new
// process (another pid, in the pid file) serves the same deployment, and
// the old process drains and exits 0.
func TestZeroDowntimeUpgrade(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "turnout")
	installBinary(t, turnoutBin, bin)
	legacy := namedOrigin(t, "legacy")
	certFile, keyFile := testkit.WriteSelfSigned(t, dir, "public", "127.0.0.1")
	cfg := writeNodeConfig(t, dir, "127.0.0.1:0", fmt.Sprintf(`
tls:
  listen: 127.0.0.1:0
  redirect_http: false
  certificates: [{cert: %s, key: %s}]
origins:
  legacy: {url: %s}
functions:
  hello2: {handler: %s}
routes:
  - {match: "GET /hello/{name}", function: hello2}
  - {match: /, origin: legacy}
`, certFile, keyFile, legacy.URL, filepath.Join(functionDir, "hello-v2")))
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	pidFile := filepath.Join(dir, "turnout.pid")
	s := startServed(t, bin, cfg, "--pid-file", pidFile)
	oldPID := s.cmd.Process.Pid
	// The pid file is written when the process says it is ready, just
	// after it logs that it listens.
	for i := 0; i < 100 && readPIDOrZero(pidFile) == 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if got := readPID(t, pidFile); got != oldPID {
		t.Fatalf("pid file says %d, want %d", got, oldPID)
	}
	deployment := s.activeDeployment(t)
	if s.https == "" || s.https == "off" {
		t.Fatalf("no HTTPS listener in the log:\n%s", s.log())
	}

	stop := make(chan struct{})
	var mu sync.Mutex
	var ok int
	var failures []string
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: i%2 == 1}
			base := "http://" + s.public
			switch {
			case i >= 8: // HTTP/1.1 over TLS, a fresh connection (and handshake) per request
				tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}
				base = "https://" + s.https
			case i >= 6: // HTTP/2 over TLS, one connection each
				tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
				base = "https://" + s.https
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			paths := []string{"/orders/1", "/hello/upgrade"}
			for n := 0; n < 100000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				path := paths[n%2]
				resp, err := c.Get(base + path)
				if want := map[bool]int{true: 2, false: 1}[i == 6 || i == 7]; err == nil && resp.ProtoMajor != want {
					err = fmt.Errorf("client %d spoke %s", i, resp.Proto)
				}
				if err == nil {
					body, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if rerr != nil {
						err = rerr
					} else if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
					}
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, path+": "+err.Error())
				} else {
					ok++
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	finish := func() { close(stop); wg.Wait() }

	time.Sleep(time.Second)
	installBinary(t, turnoutBin, bin) // "the new version"
	if err := syscall.Kill(oldPID, syscall.SIGHUP); err != nil {
		finish()
		t.Fatal(err)
	}
	select {
	case rec := <-s.lines:
		if rec.Public != s.public || rec.Admin != s.admin || rec.HTTPS != s.https {
			t.Errorf("new process listens on %s / %s / %s, want the inherited %s / %s / %s", rec.Public, rec.HTTPS, rec.Admin, s.public, s.https, s.admin)
		}
	case <-time.After(30 * time.Second):
		finish()
		t.Fatalf("the new process did not start:\n%s", s.log())
	}
	if err := s.waitExit(t, 40*time.Second); err != nil {
		finish()
		t.Fatalf("old process exited with %v, want 0:\n%s", err, s.log())
	}
	// Keep the load on the new process alone for a while.
	time.Sleep(time.Second)
	finish()

	newPID := readPID(t, pidFile) // the new process wrote it at Ready, before the old one drained
	t.Cleanup(func() {
		syscall.Kill(newPID, syscall.SIGTERM)
		for i := 0; i < 200 && alive(newPID); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(newPID) {
			syscall.Kill(newPID, syscall.SIGKILL)
		}
	})
	if newPID == oldPID || !alive(newPID) {
		t.Fatalf("pid file says %d after the upgrade (old %d, alive %v)", newPID, oldPID, alive(newPID))
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests answered across the upgrade; old pid %d, new pid %d", ok, oldPID, newPID)
	if len(failures) > 0 {
		t.Fatalf("%d requests failed across the upgrade (of %d), first ones: %q\n%s", len(failures), ok+len(failures), failures[:min(5, len(failures))], s.log())
	}
	if ok < 100 {
		t.Fatalf("only %d requests answered in 3 s", ok)
	}
	if got := s.activeDeployment(t); got != deployment {
		t.Fatalf("new process serves deployment %d, want %d", got, deployment)
	}
	for _, line := range strings.Split(s.log(), "\n") {
		if strings.Contains(line, "upgrade: the new process is ready") {
			t.Log(line)
		}
	}
	testkit.ContainsAll(t, "log", s.log(), "upgrade: the new process is ready", "shutting down: draining")
}

// TestUpgradeToBrokenBinary installs a binary that exits at once and sends
// SIGHUP: the old process takes the store and the admin API back, says so,
// and goes on serving traffic and admin calls (including writes) until
// SIGTERM, then exits 0.
func TestUpgradeToBrokenBinary(t *testing.T) {
	dir, cfgPath, a, b := abConfig(t)
	bin := filepath.Join(dir, "turnout")
	installBinary(t, turnoutBin, bin)
	s := startServed(t, bin, cfgPath)
	before := s.activeDeployment(t)

	broken := filepath.Join(dir, "broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho 'broken build' >&2\nexit 1\n"), 0o755)
	installBinary(t, broken, bin)
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.log(), "store and admin API taken back") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.log(), "upgrade failed") || !strings.Contains(s.log(), "store and admin API taken back") {
		t.Fatalf("no failed-upgrade report in the log:\n%s", s.log())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("turnout log:\n%s", s.log())
		}
	})
	if got := get(t, "http://"+s.public+"/x"); got != "a" {
		t.Fatalf("after the failed upgrade the public listener answered %q\n%s", got, s.log())
	}
	if got := s.activeDeployment(t); got != before {
		t.Fatalf("active deployment %d after the failed upgrade, want %d", got, before)
	}
	// The store is writable again: switch the route with a deployment.
	resp, body, err := s.api("POST", "/deployments", map[string]string{"config": nodeConfig(dir, a.URL, b.URL, "b"), "message": "after failed upgrade"})
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("apply after the failed upgrade: %v %s", err, body)
	}
	if got := get(t, "http://"+s.public+"/x"); got != "b" {
		t.Fatalf("deployment after the failed upgrade not served: %q", got)
	}
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
	if err := s.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.log())
	}
}
