package bolt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/deploy"
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

func mustCreate(t *testing.T, s *Store, cfg string) deploy.Deployment {
	t.Helper()
	d, err := s.Create(context.Background(), deploy.Deployment{Config: cfg, Author: "test", Cause: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCreateGetListActive(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)

	if _, err := s.Active(ctx); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("Active on empty store: err = %v, want ErrNotFound", err)
	}
	if l, err := s.List(ctx, 0, 10); err != nil || len(l) != 0 {
		t.Fatalf("List on empty store = %v, %v", l, err)
	}

	for i := 1; i <= 5; i++ {
		d := mustCreate(t, s, fmt.Sprintf("cfg %d", i))
		if d.ID != uint64(i) {
			t.Fatalf("id = %d, want %d", d.ID, i)
		}
		if d.Time.IsZero() {
			t.Fatal("Create left Time zero")
		}
	}
	got, err := s.Get(ctx, 3)
	if err != nil || got.Config != "cfg 3" || got.Author != "test" || got.Cause != "apply" {
		t.Fatalf("Get(3) = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, 99); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("Get(99) err = %v, want ErrNotFound", err)
	}
	act, err := s.Active(ctx)
	if err != nil || act.ID != 5 {
		t.Fatalf("Active = %d, %v; want 5", act.ID, err)
	}

	tests := []struct {
		before uint64
		limit  int
		want   []uint64
	}{
		{0, 10, []uint64{5, 4, 3, 2, 1}},
		{0, 2, []uint64{5, 4}},
		{4, 2, []uint64{3, 2}},
		{2, 10, []uint64{1}},
		{1, 10, nil},
		{100, 3, []uint64{5, 4, 3}},
		{0, 0, []uint64{5, 4, 3, 2, 1}},
	}
	for _, tt := range tests {
		l, err := s.List(ctx, tt.before, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, d := range l {
			ids = append(ids, d.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
			t.Errorf("List(before=%d, limit=%d) = %v, want %v", tt.before, tt.limit, ids, tt.want)
		}
	}
}

func TestWatchDeliversLatest(t *testing.T) {
	s, _ := openTemp(t)
	mustCreate(t, s, "a")
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Watch(ctx)

	recv := func() uint64 {
		t.Helper()
		select {
		case id, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			return id
		case <-time.After(2 * time.Second):
			t.Fatal("no id from Watch")
		}
		return 0
	}
	if id := recv(); id != 1 {
		t.Fatalf("first id = %d, want 1", id)
	}
	// Several creates without reading: the receiver must end on the latest.
	for i := 0; i < 5; i++ {
		mustCreate(t, s, "b")
	}
	deadline := time.After(2 * time.Second)
	for last := uint64(0); last != 6; {
		select {
		case id := <-ch:
			if id < last {
				t.Fatalf("watch went backwards: %d after %d", id, last)
			}
			last = id
		case <-deadline:
			t.Fatalf("Watch never delivered 6 (last %d)", last)
		}
	}
	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(2 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
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
	mustCreate(t, s, "one")
	mustCreate(t, s, "two")
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
	if d := mustCreate(t, s, "three"); d.ID != 3 {
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

func TestConcurrentCreateDenseIDs(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	const workers, each = 8, 10
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids []uint64
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				d, err := s.Create(ctx, deploy.Deployment{Config: "x", Cause: "apply"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, d.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if len(ids) != workers*each {
		t.Fatalf("got %d ids", len(ids))
	}
	for i, id := range ids {
		if id != uint64(i+1) {
			t.Fatalf("ids not dense and unique: position %d has %d", i, id)
		}
	}
	act, err := s.Active(ctx)
	if err != nil || act.ID != workers*each {
		t.Fatalf("Active = %d, %v", act.ID, err)
	}
}

func TestAuditAppendList(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for i := 1; i <= 4; i++ {
		e := deploy.AuditEvent{Actor: "ops", Action: "apply", Result: "ok", Detail: strconv.Itoa(i), Remote: "127.0.0.1:1"}
		if err := s.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	log, err := s.AuditLog(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 {
		t.Fatalf("len = %d, want 3", len(log))
	}
	for i, e := range log {
		wantSeq := uint64(4 - i)
		if e.Seq != wantSeq || e.Detail != strconv.Itoa(int(wantSeq)) || e.Time.IsZero() {
			t.Errorf("event %d = %+v, want seq %d", i, e, wantSeq)
		}
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
	for i := 0; ; i++ {
		d, err := s.Create(context.Background(), deploy.Deployment{Config: strings.Repeat("x", i%4096), Cause: "apply"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
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
