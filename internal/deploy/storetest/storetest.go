// Package storetest is the contract every deploy.Store keeps — ids, the
// active pointer, conflicts, the audit trail, Watch, acknowledgements — run
// by each store's own tests against the real store (bolt, etcd).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/deploy"
)

// Open returns a new, empty store for one test, closed when the test ends.
type Open func(t *testing.T) deploy.Store

// Run runs the whole contract, one subtest per clause, each on a store
// from open.
func Run(t *testing.T, open Open) {
	t.Run("CreateGetListActive", func(t *testing.T) { CreateGetListActive(t, open(t)) })
	t.Run("Conflict", func(t *testing.T) { Conflict(t, open(t)) })
	t.Run("ConcurrentCreates", func(t *testing.T) {
		st := open(t)
		ConcurrentCreates(t, []deploy.Store{st, st, st}, 20)
	})
	t.Run("WatchDeliversLatest", func(t *testing.T) { WatchDeliversLatest(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { Audit(t, open(t)) })
	t.Run("AckNodes", func(t *testing.T) { AckNodes(t, open(t)) })
	t.Run("Import", func(t *testing.T) { Import(t, open(t), open(t)) })
}

// Create stores a deployment of cfg after the active one, failing the test
// on any error.
func Create(t testing.TB, s deploy.Store, cfg string) deploy.Deployment {
	t.Helper()
	ctx := context.Background()
	var prev uint64
	if act, err := s.Active(ctx); err == nil {
		prev = act.ID
	} else if !errors.Is(err, deploy.ErrNotFound) {
		t.Fatal(err)
	}
	d, err := s.Create(ctx, prev, deploy.Deployment{Config: cfg, Author: "test", Cause: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// CreateGetListActive: ids count from 1, Get and Active return what was
// stored, List pages newest first.
func CreateGetListActive(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	if _, err := s.Active(ctx); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("Active on empty store: err = %v, want ErrNotFound", err)
	}
	if l, err := s.List(ctx, 0, 10); err != nil || len(l) != 0 {
		t.Fatalf("List on empty store = %v, %v", l, err)
	}
	for i := 1; i <= 5; i++ {
		d := Create(t, s, fmt.Sprintf("cfg %d", i))
		if d.ID != uint64(i) {
			t.Fatalf("id = %d, want %d", d.ID, i)
		}
		if d.Time.IsZero() {
			t.Fatal("Create left Time zero")
		}
	}
	got, err := s.Get(ctx, 3)
	if err != nil || got.Config != "cfg 3" || got.Author != "test" || got.Cause != "apply" || got.ID != 3 {
		t.Fatalf("Get(3) = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, 99); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("Get(99) err = %v, want ErrNotFound", err)
	}
	act, err := s.Active(ctx)
	if err != nil || act.ID != 5 || act.Config != "cfg 5" {
		t.Fatalf("Active = %+v, %v; want 5", act, err)
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
		if got := ids(l); !slices.Equal(got, tt.want) {
			t.Errorf("List(before=%d, limit=%d) = %v, want %v", tt.before, tt.limit, got, tt.want)
		}
	}
}

// Conflict: a Create based on a deployment that is not the active one
// stores nothing and names the active deployment.
func Conflict(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	first := Create(t, s, "one")
	second, err := s.Create(ctx, first.ID, deploy.Deployment{Config: "two", Author: "alice", Cause: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	for _, prev := range []uint64{0, first.ID, second.ID + 1, 99} {
		_, err := s.Create(ctx, prev, deploy.Deployment{Config: "late", Author: "bob", Cause: "apply"})
		var conflict *deploy.ConflictError
		if !errors.As(err, &conflict) || !errors.Is(err, deploy.ErrConflict) {
			t.Fatalf("Create after %d with %d active: err = %v, want a *deploy.ConflictError", prev, second.ID, err)
		}
		if conflict.Based != prev || conflict.Active.ID != second.ID || conflict.Active.Author != "alice" {
			t.Fatalf("conflict = %+v, want based on %d, naming deployment %d by alice", conflict, prev, second.ID)
		}
	}
	l, err := s.List(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(l); !slices.Equal(got, []uint64{2, 1}) {
		t.Fatalf("history after refused creates = %v, want [2 1]", got)
	}
	if act, err := s.Active(ctx); err != nil || act.ID != second.ID {
		t.Fatalf("Active = %d, %v; want %d", act.ID, err, second.ID)
	}
}

// ConcurrentCreates starts n writers at once, spread over stores (several
// clients of one fleet store, or one store several times). Each reads the
// active deployment and creates one based on it, and on a conflict tries
// again, up to 5 attempts in all, as an operator would retry. Every
// attempt either wins with an id of its own or gets a *deploy.ConflictError
// naming a later deployment; the history holds exactly the winners, with
// ids following the first without gaps.
func ConcurrentCreates(t *testing.T, stores []deploy.Store, n int) {
	const attempts = 5
	ctx := context.Background()
	base := Create(t, stores[0], "base")
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		won       = map[uint64]string{}
		conflicts int
		start     = make(chan struct{})
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[i%len(stores)]
			cfg := "create " + strconv.Itoa(i)
			<-start
			for try := 0; try < attempts; try++ {
				act, err := s.Active(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				d, err := s.Create(ctx, act.ID, deploy.Deployment{Config: cfg, Author: "client " + strconv.Itoa(i%len(stores)), Cause: "apply"})
				var conflict *deploy.ConflictError
				mu.Lock()
				switch {
				case err == nil:
					if prev, dup := won[d.ID]; dup {
						t.Errorf("id %d given to %q and %q", d.ID, prev, cfg)
					}
					won[d.ID] = cfg
				case errors.As(err, &conflict) && errors.Is(err, deploy.ErrConflict):
					if conflict.Active.ID <= act.ID {
						t.Errorf("conflict names deployment %d, not after %d: %v", conflict.Active.ID, act.ID, err)
					}
					conflicts++
				default:
					t.Errorf("create %d: %v", i, err)
				}
				mu.Unlock()
				if err == nil || conflict == nil {
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(won) == 0 {
		t.Fatal("no Create won")
	}
	l, err := stores[0].List(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	l = l[:len(l)-int(base.ID)] // newest first: drop base and what came before
	if len(l) != len(won) {
		t.Fatalf("history holds %d deployments after the base, %d Creates won", len(l), len(won))
	}
	for i, d := range l {
		if want := base.ID + uint64(len(l)-i); d.ID != want {
			t.Fatalf("history ids %v have a gap: position %d is %d, want %d", ids(l), i, d.ID, want)
		}
		if won[d.ID] != d.Config {
			t.Fatalf("deployment %d holds %q, the winner was %q", d.ID, d.Config, won[d.ID])
		}
	}
	if act, err := stores[0].Active(ctx); err != nil || act.ID != l[0].ID {
		t.Fatalf("Active = %d, %v; want the last winner %d", act.ID, err, l[0].ID)
	}
	t.Logf("%d writers: %d Creates won, %d conflicts", n, len(won), conflicts)
}

// WatchDeliversLatest: Watch sends the active id at start and ends on the
// latest after a burst, never going backwards, and closes when ctx ends.
func WatchDeliversLatest(t *testing.T, s deploy.Store) {
	Create(t, s, "a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Watch(ctx)
	select {
	case id, ok := <-ch:
		if !ok || id != 1 {
			t.Fatalf("first id = %d (open %v), want 1", id, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no id from Watch at start")
	}
	// Several creates without reading: the receiver must end on the latest.
	for i := 0; i < 5; i++ {
		Create(t, s, "b"+strconv.Itoa(i))
	}
	WaitFor(t, ch, 6, 5*time.Second)
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Watch channel not closed after its context ended")
		}
	}
}

// WaitFor reads ids from a Watch channel until it sends want, failing the
// test if an id goes backwards, the channel closes, or within is over.
func WaitFor(t testing.TB, ch <-chan uint64, want uint64, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for last := uint64(0); last != want; {
		select {
		case id, ok := <-ch:
			if !ok {
				t.Fatalf("Watch channel closed before %d (last %d)", want, last)
			}
			if id < last {
				t.Fatalf("Watch went backwards: %d after %d", id, last)
			}
			last = id
		case <-deadline:
			t.Fatalf("Watch never delivered %d within %v (last %d)", want, within, last)
		}
	}
}

// Audit: events get increasing sequence numbers and a time, and come back
// newest first.
func Audit(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	for i := 1; i <= 4; i++ {
		e := deploy.AuditEvent{Actor: "ops", Action: "apply", Result: "ok", Detail: strconv.Itoa(i), Remote: "127.0.0.1:1", Deployment: uint64(i)}
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
		if e.Seq != wantSeq || e.Detail != strconv.Itoa(int(wantSeq)) || e.Deployment != wantSeq || e.Time.IsZero() || e.Actor != "ops" {
			t.Errorf("event %d = %+v, want seq %d", i, e, wantSeq)
		}
	}
	if all, err := s.AuditLog(ctx, 0); err != nil || len(all) != 4 {
		t.Fatalf("AuditLog(0) = %d events, %v; want all 4", len(all), err)
	}
}

// AckNodes: an ack lists the node; a later ack of the same name replaces
// its record; a node without a name is refused.
func AckNodes(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	if err := s.Ack(ctx, deploy.Node{Deployment: 1}); err == nil {
		t.Fatal("Ack of a node without a name succeeded")
	}
	at := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	n := deploy.Node{Name: "edge-1", AdminURL: "http://127.0.0.1:8081", Version: "test", Deployment: 1, AppliedAt: at}
	if err := s.Ack(ctx, n); err != nil {
		t.Fatal(err)
	}
	nodes, err := s.Nodes(ctx)
	if err != nil || len(nodes) != 1 || !sameNode(nodes[0], n) {
		t.Fatalf("Nodes = %+v, %v; want [%+v]", nodes, err, n)
	}
	n.Deployment, n.Refused, n.Error, n.AppliedAt = 1, 2, "deployment 2 does not compile", at.Add(time.Second)
	if err := s.Ack(ctx, n); err != nil {
		t.Fatal(err)
	}
	nodes, err = s.Nodes(ctx)
	if err != nil || len(nodes) != 1 || !sameNode(nodes[0], n) {
		t.Fatalf("Nodes after a second ack = %+v, %v; want [%+v]", nodes, err, n)
	}
}

// sameNode compares two records, the times as instants.
func sameNode(a, b deploy.Node) bool {
	at, bt := a.AppliedAt, b.AppliedAt
	al, bl := a.LocalSwitches, b.LocalSwitches
	a.AppliedAt, b.AppliedAt = time.Time{}, time.Time{}
	a.LocalSwitches, b.LocalSwitches = nil, nil
	return reflect.DeepEqual(a, b) && at.Equal(bt) && slices.Equal(al, bl)
}

func ids(l []deploy.Deployment) []uint64 {
	var out []uint64
	for _, d := range l {
		out = append(out, d.ID)
	}
	return out
}

// BenchmarkCreateSeen measures one change as a fleet sees it: a Create on
// writer, until a Watch on watcher (another node's store, or the same one)
// has delivered it. It reports the Create alone as create-ns/op.
func BenchmarkCreateSeen(b *testing.B, writer, watcher deploy.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prev := Create(b, writer, "base").ID
	ch := watcher.Watch(ctx)
	WaitFor(b, ch, prev, 10*time.Second)
	var creating time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		d, err := writer.Create(ctx, prev, deploy.Deployment{Config: "bench " + strconv.Itoa(i), Author: "bench", Cause: "apply"})
		if err != nil {
			b.Fatal(err)
		}
		creating += time.Since(start)
		WaitFor(b, ch, d.ID, 10*time.Second)
		prev = d.ID
	}
	b.ReportMetric(float64(creating.Nanoseconds())/float64(b.N), "create-ns/op")
}

// History returns a history of n deployments (the active one the newest)
// and 2n audit events, with times of their own, as a store that has been
// in use for a while holds it: what Import and copies are tested with.
func History(n int) deploy.History {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var h deploy.History
	for i := 1; i <= n; i++ {
		h.Deployments = append(h.Deployments, deploy.Deployment{ID: uint64(i), Config: fmt.Sprintf("# deployment %d\n", i),
			Author: "ops", Message: "change " + strconv.Itoa(i), Cause: "apply", Time: at.Add(time.Duration(i) * time.Hour)})
	}
	for i := 1; i <= 2*n; i++ {
		h.Audit = append(h.Audit, deploy.AuditEvent{Seq: uint64(i), Time: at.Add(time.Duration(i) * 30 * time.Minute), Actor: "ops",
			Action: "apply", Result: "ok", Detail: "event " + strconv.Itoa(i), Remote: "127.0.0.1:9", Deployment: uint64((i + 1) / 2)})
	}
	if n > 0 {
		h.Active = uint64(n)
	}
	return h
}

// SameHistory fails the test unless got and want hold the same
// deployments, audit events (times compared as instants) and active id.
func SameHistory(t testing.TB, got, want deploy.History) {
	t.Helper()
	if got.Active != want.Active || len(got.Deployments) != len(want.Deployments) || len(got.Audit) != len(want.Audit) {
		t.Fatalf("history has %d deployments, %d audit events, active %d; want %d, %d, %d",
			len(got.Deployments), len(got.Audit), got.Active, len(want.Deployments), len(want.Audit), want.Active)
	}
	for i, d := range got.Deployments {
		w := want.Deployments[i]
		if !d.Time.Equal(w.Time) {
			t.Errorf("deployment %d time %v, want %v", d.ID, d.Time, w.Time)
		}
		d.Time, w.Time = time.Time{}, time.Time{}
		if d != w {
			t.Errorf("deployment %d = %+v, want %+v", i, d, w)
		}
	}
	for i, e := range got.Audit {
		w := want.Audit[i]
		if !e.Time.Equal(w.Time) {
			t.Errorf("audit event %d time %v, want %v", e.Seq, e.Time, w.Time)
		}
		e.Time, w.Time = time.Time{}, time.Time{}
		if e != w {
			t.Errorf("audit event %d = %+v, want %+v", i, e, w)
		}
	}
}

// Import: a history imported into an empty store reads back as it was;
// Create and Audit continue after its last id and seq; a store that holds
// anything refuses an import and is left as it was.
func Import(t *testing.T, s, other deploy.Store) {
	ctx := context.Background()
	imp, ok := s.(deploy.Importer)
	if !ok {
		t.Fatalf("%T is not a deploy.Importer", s)
	}
	want := History(3)
	if err := imp.Import(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := deploy.ReadHistory(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	SameHistory(t, got, want)

	if err := imp.Import(ctx, History(1)); !errors.Is(err, deploy.ErrNotEmpty) {
		t.Fatalf("Import into a store with a history: err = %v, want ErrNotEmpty", err)
	}
	if got, err := deploy.ReadHistory(ctx, s); err != nil {
		t.Fatal(err)
	} else {
		SameHistory(t, got, want)
	}
	if d := Create(t, s, "# after\n"); d.ID != 4 {
		t.Errorf("Create after the import made deployment %d, want 4", d.ID)
	}
	if err := s.Audit(ctx, deploy.AuditEvent{Actor: "ops", Action: "apply", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if log, err := s.AuditLog(ctx, 1); err != nil || len(log) != 1 || log[0].Seq != 7 {
		t.Errorf("AuditLog after an Audit = %+v, %v; want seq 7", log, err)
	}

	// A store holding only audit events is not empty either.
	if err := other.Audit(ctx, deploy.AuditEvent{Actor: "ops", Action: "auth", Result: "denied"}); err != nil {
		t.Fatal(err)
	}
	if err := other.(deploy.Importer).Import(ctx, want); !errors.Is(err, deploy.ErrNotEmpty) {
		t.Fatalf("Import into a store with an audit event: err = %v, want ErrNotEmpty", err)
	}
	if _, err := other.Active(ctx); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("after a refused Import, Active: err = %v, want ErrNotFound", err)
	}
}
