// Package certstoragetest is the contract every certmagic.Storage of
// turnout keeps — keys and directories as certmagic expects them, and
// locks that exclude — run by each store's own tests against the real
// store (bolt, etcd).
package certstoragetest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// Open returns a new, empty storage for one test, closed when the test
// ends.
type Open func(t *testing.T) certmagic.Storage

// Run runs the whole contract, one subtest per clause, each on a storage
// from open.
func Run(t *testing.T, open Open) {
	t.Run("KeysAndDirectories", func(t *testing.T) { KeysAndDirectories(t, open(t)) })
	t.Run("Lock", func(t *testing.T) { Lock(t, open(t)) })
	t.Run("LockExcludes", func(t *testing.T) {
		s := open(t)
		LockExcludes(t, []certmagic.Storage{s, s, s}, 10)
	})
}

// Keys a storage holds in KeysAndDirectories, as certmagic names them.
var keys = []string{
	"acme/ca/users/ops@example.com/ops.json",
	"acme/ca/users/ops@example.com/ops.key",
	"certificates/ca/a.test/a.test.crt",
	"certificates/ca/a.test/a.test.key",
	"certificates/ca/b.test/b.test.crt",
}

// KeysAndDirectories stores, loads, lists, stats and deletes keys, a
// "directory" being any prefix ending at a slash.
func KeysAndDirectories(t *testing.T, s certmagic.Storage) {
	ctx := context.Background()
	if _, err := s.Load(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "certificates", true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List of an empty storage: %v, want fs.ErrNotExist", err)
	}
	before := time.Now().Add(-time.Second)
	for _, k := range keys {
		if err := s.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Store(ctx, "", []byte("x")); err == nil {
		t.Error("Store with an empty key succeeded")
	}
	v, err := s.Load(ctx, keys[2])
	if err != nil || string(v) != "value of "+keys[2] {
		t.Fatalf("Load = %q, %v", v, err)
	}
	if err := s.Store(ctx, keys[2], []byte("renewed")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Load(ctx, keys[2]); err != nil || string(v) != "renewed" {
		t.Fatalf("Load after a second Store = %q, %v; want the new value", v, err)
	}

	for _, tc := range []struct {
		path      string
		recursive bool
		want      []string
	}{
		{"certificates", false, []string{"certificates/ca"}},
		{"certificates/ca", false, []string{"certificates/ca/a.test", "certificates/ca/b.test"}},
		{"certificates/ca/", false, []string{"certificates/ca/a.test", "certificates/ca/b.test"}},
		{"certificates", true, keys[2:]},
		{"", false, []string{"acme", "certificates"}},
		{"acme/ca/users/ops@example.com", false, keys[:2]},
		{"certificates/ca/a", false, nil}, // a prefix of a name is not a directory
	} {
		got, err := s.List(ctx, tc.path, tc.recursive)
		if tc.want == nil {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("List(%q, %v) = %q, %v; want fs.ErrNotExist", tc.path, tc.recursive, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q, %v) = %q, %v; want %q", tc.path, tc.recursive, got, err, tc.want)
		}
	}

	ki, err := s.Stat(ctx, keys[4])
	if err != nil || !ki.IsTerminal || ki.Size != int64(len("value of "+keys[4])) || ki.Modified.Before(before) ||
		ki.Modified.After(time.Now()) || ki.Key != keys[4] {
		t.Errorf("Stat(file) = %+v, %v", ki, err)
	}
	ki, err = s.Stat(ctx, "certificates/ca")
	if err != nil || ki.IsTerminal {
		t.Errorf("Stat(dir) = %+v, %v; want a directory", ki, err)
	}
	if _, err := s.Stat(ctx, "certificates/c"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a prefix that is not a directory: %v, want fs.ErrNotExist", err)
	}
	if !s.Exists(ctx, keys[0]) || !s.Exists(ctx, "acme") || s.Exists(ctx, "acm") {
		t.Error("Exists is wrong")
	}

	// Delete removes a directory with everything below it, and nothing
	// else; deleting what is not there is no error (certmagic.Storage).
	if err := s.Delete(ctx, "certificates/ca/a.test"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, keys[2]) || s.Exists(ctx, keys[3]) || !s.Exists(ctx, keys[4]) {
		t.Error("Delete of a directory removed the wrong keys")
	}
	if err := s.Delete(ctx, "certificates/ca/a.test"); err != nil {
		t.Errorf("second Delete: %v, want nil", err)
	}
	if err := s.Delete(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, keys[0]) || !s.Exists(ctx, keys[1]) {
		t.Error("Delete of a key removed the wrong keys")
	}
}

// Lock: a held lock makes a second Lock of its name wait (until the
// context ends, or Unlock), other names are independent, and unlocking a
// lock not held is an error.
func Lock(t *testing.T, s certmagic.Storage) {
	ctx := context.Background()
	if err := s.Lock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := s.Lock(short, "issue_cert_a.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held lock: %v, want the context's deadline", err)
	}
	if err := s.Lock(ctx, "issue_cert_b.test"); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- s.Lock(ctx, "issue_cert_a.test") }()
	if err := s.Unlock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting Lock was not granted after Unlock")
	}
	for _, name := range []string{"issue_cert_a.test", "issue_cert_b.test"} {
		if err := s.Unlock(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Unlock(ctx, "never-locked"); err == nil {
		t.Error("Unlock of a lock not held succeeded")
	}
	if err := s.Unlock(ctx, "issue_cert_a.test"); err == nil {
		t.Error("second Unlock of a lock succeeded")
	}
}

// LockExcludes: one goroutine per storage (the same storage several times,
// or one per node) takes the same lock rounds times each; never are two
// inside at once.
func LockExcludes(t *testing.T, storages []certmagic.Storage, rounds int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var inside, most, entered atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(storages))
	for i, s := range storages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if err := s.Lock(ctx, "issue_cert_shared.test"); err != nil {
					errs <- fmt.Errorf("storage %d, round %d: Lock: %w", i, r, err)
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				entered.Add(1)
				time.Sleep(time.Millisecond) // let another holder in, if the lock would
				inside.Add(-1)
				if err := s.Unlock(ctx, "issue_cert_shared.test"); err != nil {
					errs <- fmt.Errorf("storage %d, round %d: Unlock: %w", i, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if most.Load() != 1 || entered.Load() != int64(len(storages)*rounds) {
		t.Errorf("%d holders at once at most (want 1), %d entries (want %d)", most.Load(), entered.Load(), len(storages)*rounds)
	}
}
