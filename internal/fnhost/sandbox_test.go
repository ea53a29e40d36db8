package fnhost

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/testkit"
)

// procDead reports whether pid no longer runs: gone, or a zombie waiting
// for a parent that is not turnout (init reaps it).
func procDead(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 1 && (fields[0] == "Z" || fields[0] == "X") && fields[1] != strconv.Itoa(os.Getpid())
}

var escapedRE = regexp.MustCompile(`escaped pid (\d+)`)

// escapees returns the pids the orphan function logged for request id.
func escapees(t *testing.T, h *Host, id string, want int) []int {
	t.Helper()
	var pids []int
	testkit.Eventually(t, 5*time.Second, "the escaped pids in the log", func() bool {
		lines, _ := h.Logs("orphan", id)
		pids = pids[:0]
		for _, l := range lines {
			if m := escapedRE.FindStringSubmatch(l.Text); m != nil {
				pid, _ := strconv.Atoi(m[1])
				pids = append(pids, pid)
			}
		}
		return len(pids) == want
	})
	return pids
}

// waitDead waits for every pid to die, and says which did not.
func waitDead(t *testing.T, pids []int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !allDead(pids) {
		if time.Now().After(deadline) {
			var alive []string
			for _, pid := range pids {
				if !procDead(pid) {
					b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
					c, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
					alive = append(alive, strings.TrimSpace(string(b))+" cgroup "+strings.TrimSpace(string(c)))
				}
			}
			t.Fatalf("%s: still running: %s", what, strings.Join(alive, "; "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allDead(pids []int) bool {
	for _, pid := range pids {
		if !procDead(pid) {
			return false
		}
	}
	return true
}

// A child that calls setsid() or is double-forked leaves the instance's
// process group; it must die with the instance all the same, on a timeout,
// when the instance exits and on shutdown (issue 13, item 8), whichever
// isolation the machine allows.
func TestInstanceDiesWhole(t *testing.T) {
	for _, iso := range []Isolation{IsolationCgroup, IsolationProcessGroup} {
		t.Run(string(iso), func(t *testing.T) {
			if iso == IsolationCgroup {
				if err := CgroupAvailable(); err != nil {
					// Not on this machine: asking for it must say why, and
					// the default must be the fallback.
					if _, err2 := New(Options{Isolation: IsolationCgroup}); err2 == nil || !strings.Contains(err2.Error(), "cgroup") {
						t.Errorf("New with cgroup isolation on a machine without it: %v", err2)
					}
					h := newHost(t, Options{})
					if h.Isolation() != IsolationProcessGroup {
						t.Errorf("default isolation %q without cgroups (%v)", h.Isolation(), err)
					}
					t.Logf("cgroup v2 unavailable here (%v): checked the refusal and the fallback", err)
					return
				}
			}
			testDiesWhole(t, iso)
		})
	}
}

func testDiesWhole(t *testing.T, iso Isolation) {
	c := fnConfig("orphan", "orphan")
	c.Timeout = config.Duration(time.Second)
	h, err := New(Options{Isolation: iso, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if closed {
			return
		}
		done := make(chan struct{})
		go func() { h.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("Close did not return: an escaped child holds the instance's output open")
		}
	})
	if err := h.Configure([]config.Function{c}); err != nil {
		t.Fatal(err)
	}
	if s := statsOf(h, "orphan"); s.Isolation != iso || h.Isolation() != iso {
		t.Fatalf("isolation %q (stats %q), want %q", h.Isolation(), s.Isolation, iso)
	}

	// A timeout kills the instance and every process it started.
	resp, err := h.Invoke(context.Background(), invoke.Request{Function: "orphan", RequestID: "slow",
		Payload: []byte(`{"setsid":2,"double_fork":2,"sleep_ms":10000}`)})
	if err != nil || !resp.TimedOut {
		t.Fatalf("want a timeout: %v %+v", err, resp)
	}
	pids := escapees(t, h, "slow", 4)
	waitDead(t, pids, "the timed-out instance's escaped children")

	// An instance that exits takes its children with it.
	resp, err = h.Invoke(context.Background(), invoke.Request{Function: "orphan", RequestID: "exit",
		Payload: []byte(`{"setsid":1,"double_fork":1,"exit":true}`)})
	if err != nil || !strings.Contains(string(resp.Payload), "Runtime.ExitError") {
		t.Fatalf("want Runtime.ExitError: %v %+v %s", err, resp, resp.Payload)
	}
	pids = escapees(t, h, "exit", 2)
	waitDead(t, pids, "the exited instance's escaped children")

	// Shutdown: Close returns (the children hold the instance's stdout
	// open) and nothing survives it.
	resp, err = h.Invoke(context.Background(), invoke.Request{Function: "orphan", RequestID: "idle",
		Payload: []byte(`{"setsid":1,"double_fork":1}`)})
	if err != nil || resp.FunctionError != "" {
		t.Fatalf("invoke: %v %+v %s", err, resp, resp.Payload)
	}
	if err := json.Unmarshal(resp.Payload, &pids); err != nil || len(pids) != 2 {
		t.Fatalf("pids %s: %v", resp.Payload, err)
	}
	for _, pid := range pids {
		if procDead(pid) {
			t.Fatalf("escaped child %d of a live instance is already dead", pid)
		}
	}
	dir := h.cgroupDir()
	done := make(chan struct{})
	go func() { h.Close(); close(done) }()
	select {
	case <-done:
		closed = true
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	for _, pid := range pids {
		if !procDead(pid) {
			t.Errorf("escaped child %d survived Close", pid)
		}
	}
	if dir != "" {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind: %v", dir, err)
		}
	}
}

// The cgroups a turnout left behind when it was SIGKILLed are removed, with
// the function processes still in them, by the next turnout to start.
func TestStaleCgroupsSwept(t *testing.T) {
	if err := CgroupAvailable(); err != nil {
		if h := newHost(t, Options{}); h.cgroupDir() != "" {
			t.Errorf("a cgroup %s without cgroup support (%v)", h.cgroupDir(), err)
		}
		return
	}
	// A pid that is no longer running: a process that exited.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	parent, err := ownCgroupDir()
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(parent, fmt.Sprintf("turnout-%d-1", gone.Process.Pid))
	inst := filepath.Join(stale, "users-1")
	if err := os.MkdirAll(inst, 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(inst, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	left := exec.Command("sleep", "300")
	left.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Setsid: true}
	err = left.Start()
	syscall.Close(fd)
	if err != nil {
		removeCgroupTree(stale)
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { left.Wait(); close(exited) }()

	newHost(t, Options{})
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		left.Process.Kill()
		t.Error("the process left in a stale cgroup survived")
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		removeCgroupTree(stale)
		t.Errorf("stale cgroup %s not removed: %v", stale, err)
	}
}
