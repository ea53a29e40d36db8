package bolt

import (
	"context"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/turnout/turnout/internal/store/certstoragetest"
)

// TestCertStorageContract runs the contract every certmagic storage of
// turnout keeps.
func TestCertStorageContract(t *testing.T) {
	certstoragetest.Run(t, func(t *testing.T) certmagic.Storage {
		s, _ := openTemp(t)
		return s.CertStorage()
	})
}

// TestCertStoragePersists: values survive closing and reopening the store
// (a restart does not order certificates again), beside the deployments
// and untouched by them.
func TestCertStoragePersists(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	const key = "certificates/ca/a.test/a.test.crt"
	if err := s.CertStorage().Store(ctx, key, []byte("cert")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	v, err := s2.CertStorage().Load(ctx, key)
	if err != nil || string(v) != "cert" {
		t.Fatalf("after reopening: Load = %q, %v", v, err)
	}
	if _, err := s2.Active(ctx); err == nil {
		t.Error("a deployment appeared from certificate keys")
	}
}
