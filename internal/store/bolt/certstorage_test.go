package bolt

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"
)

func TestCertStorage(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	cs := s.CertStorage()

	if _, err := cs.Load(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := cs.List(ctx, "certificates", true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List of an empty storage: %v, want fs.ErrNotExist", err)
	}
	keys := []string{
		"acme/ca/users/ops@example.com/ops.json",
		"acme/ca/users/ops@example.com/ops.key",
		"certificates/ca/a.test/a.test.crt",
		"certificates/ca/a.test/a.test.key",
		"certificates/ca/b.test/b.test.crt",
	}
	before := time.Now().Add(-time.Second)
	for _, k := range keys {
		if err := cs.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs.Store(ctx, "", []byte("x")); err == nil {
		t.Error("Store with an empty key succeeded")
	}
	v, err := cs.Load(ctx, keys[2])
	if err != nil || string(v) != "value of "+keys[2] {
		t.Fatalf("Load = %q, %v", v, err)
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
	} {
		got, err := cs.List(ctx, tc.path, tc.recursive)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q, %v) = %q, %v; want %q", tc.path, tc.recursive, got, err, tc.want)
		}
	}

	ki, err := cs.Stat(ctx, keys[4])
	if err != nil || !ki.IsTerminal || ki.Size != int64(len("value of "+keys[4])) || ki.Modified.Before(before) || ki.Key != keys[4] {
		t.Errorf("Stat(file) = %+v, %v", ki, err)
	}
	ki, err = cs.Stat(ctx, "certificates/ca")
	if err != nil || ki.IsTerminal {
		t.Errorf("Stat(dir) = %+v, %v; want a directory", ki, err)
	}
	if _, err := cs.Stat(ctx, "certificates/c"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a prefix that is not a directory: %v, want fs.ErrNotExist", err)
	}
	if !cs.Exists(ctx, keys[0]) || !cs.Exists(ctx, "acme") || cs.Exists(ctx, "acm") {
		t.Error("Exists is wrong")
	}

	// Delete removes a directory with everything below it, and nothing else.
	if err := cs.Delete(ctx, "certificates/ca/a.test"); err != nil {
		t.Fatal(err)
	}
	if cs.Exists(ctx, keys[2]) || cs.Exists(ctx, keys[3]) || !cs.Exists(ctx, keys[4]) {
		t.Error("Delete of a directory removed the wrong keys")
	}
	if err := cs.Delete(ctx, "certificates/ca/a.test"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Delete: %v, want fs.ErrNotExist", err)
	}

	// Values survive closing and reopening the store: a restart does not
	// order certificates again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	v, err = s2.CertStorage().Load(ctx, keys[4])
	if err != nil || string(v) != "value of "+keys[4] {
		t.Fatalf("after reopening: Load = %q, %v", v, err)
	}
	// The deployments are untouched by certificate keys.
	if _, err := s2.Active(ctx); err == nil {
		t.Error("a deployment appeared from certificate keys")
	}
}

func TestCertStorageLock(t *testing.T) {
	s, _ := openTemp(t)
	cs := s.CertStorage()
	ctx := context.Background()
	if err := cs.Lock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	// A second Lock of the same name waits: bounded here by a context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := cs.Lock(short, "issue_cert_a.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held lock: %v, want the context's deadline", err)
	}
	// Another name is independent.
	if err := cs.Lock(ctx, "issue_cert_b.test"); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- cs.Lock(ctx, "issue_cert_a.test") }()
	if err := cs.Unlock(ctx, "issue_cert_a.test"); err != nil {
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
	if err := cs.Unlock(ctx, "never-locked"); err == nil {
		t.Error("Unlock of a lock not held succeeded")
	}
}
