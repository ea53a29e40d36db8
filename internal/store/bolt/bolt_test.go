package bolt

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/storetest"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "turnout.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestContract runs the contract every deploy.Store keeps.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) deploy.Store {
		s, _ := openTemp(t)
		return s
	})
}

// BenchmarkCreateSeen: a Create on the bbolt file (fsynced), until a Watch
// on the same store has seen it; compare with the etcd store's.
func BenchmarkCreateSeen(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "turnout.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkCreateSeen(b, s, s)
}

func TestWatchClosedOnStoreClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "turnout.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ch := s.Watch(context.Background())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("expected closed channel on empty store after Close")
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "turnout.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Create(t, s, "one")
	storetest.Create(t, s, "two")
	if err := s.Audit(ctx, deploy.AuditEvent{Actor: "ops", Action: "apply", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	act, err := s.Active(ctx)
	if err != nil || act.ID != 2 || act.Config != "two" {
		t.Fatalf("Active after reopen = %+v, %v", act, err)
	}
	if d := storetest.Create(t, s, "three"); d.ID != 3 {
		t.Fatalf("id after reopen = %d, want 3", d.ID)
	}
	log, err := s.AuditLog(ctx, 10)
	if err != nil || len(log) != 1 || log[0].Actor != "ops" {
		t.Fatalf("AuditLog after reopen = %+v, %v", log, err)
	}
}

func TestOpenLockedFails(t *testing.T) {
	// bbolt's flock is per open file description, so a second Open in the
	// same process contends like another process would.
	_, path := openTemp(t)
	start := time.Now()
	s2, err := Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("second Open succeeded on a locked file")
	}
	if !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Open waited %v", d)
	}
}

// crashEnv makes the test binary act as the crash-test writer.
const crashEnv = "TURNOUT_BOLT_CRASH_WRITER"

// TestMain lets the crash test re-exec this binary as a writer that loops
// Create and prints every acknowledged id.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		crashWriter(path)
		return
	}
	os.Exit(m.Run())
}

func crashWriter(path string) {
	s, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	var prev uint64
	for i := 0; ; i++ {
		d, err := s.Create(context.Background(), prev, deploy.Deployment{Config: strings.Repeat("x", i%4096), Cause: "apply"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		prev = d.ID
		fmt.Fprintln(w, d.ID)
		w.Flush()
	}
}

func TestCrashKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "turnout.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	var lastAck uint64
	sc := bufio.NewScanner(out)
	const killAfter = 40
	for n := 0; n < killAfter && sc.Scan(); n++ {
		id, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("writer printed %q", sc.Text())
		}
		lastAck = id
	}
	// Land the kill at an arbitrary point of a transaction, not just
	// between two prints.
	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Ids printed after the kill decision are acknowledged too.
	for sc.Scan() {
		if id, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
			lastAck = id
		}
	}
	cmd.Wait()
	if lastAck < killAfter {
		t.Fatalf("writer acknowledged only %d ids", lastAck)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	all, err := s.List(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(len(all))
	for i, d := range all {
		if want := n - uint64(i); d.ID != want {
			t.Fatalf("ids not dense: position %d has id %d, want %d", i, d.ID, want)
		}
	}
	if n < lastAck {
		t.Fatalf("store holds %d deployments, %d were acknowledged", n, lastAck)
	}
	act, err := s.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if act.ID != n || act.ID < lastAck {
		t.Fatalf("active = %d, highest stored %d, last acknowledged %d", act.ID, n, lastAck)
	}
	t.Logf("killed after %d acknowledged, %d stored", lastAck, n)
}
