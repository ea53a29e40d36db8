package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/storetest"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/store/etcd"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
	"github.com/turnout/turnout/internal/testkit"
)

// writeBolt makes the bolt file at path hold h, and the certificate and
// ACME account of a node that had obtained one.
func writeBolt(t *testing.T, path string, h deploy.History) {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Import(ctx, h); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"certificates/acme/edge.example.com/edge.example.com.crt": "CERT", "acme/account.json": "ACCOUNT"} {
		if err := st.CertStorage().Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
}

// readBolt returns the history in the bolt file at path.
func readBolt(t *testing.T, path string) deploy.History {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := deploy.ReadHistory(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestStoreCopy runs `turnout store copy` from a bolt file to etcd and
// back, through main's command table, then the refusals: each leaves the
// stores as they were.
func TestStoreCopy(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 1)
	etcdLoc := "etcd:" + strings.Join(c.Endpoints(), ",")
	dir := t.TempDir()
	src := filepath.Join(dir, "turnout.db")
	want := storetest.History(12)
	writeBolt(t, src, want)

	var out, errb bytes.Buffer
	if code := run([]string{"store", "copy", "--from", "bolt:" + src, "--to", etcdLoc, "--prefix", "/fleet/"}, &out, &errb); code != 0 {
		t.Fatalf("store copy bolt → etcd: exit %d, stderr %s", code, errb.String())
	}
	if got := out.String(); !strings.Contains(got, "copied 12 deployments and 24 audit events") || !strings.Contains(got, "deployment 12 is active; 2 certificate storage keys") {
		t.Errorf("store copy said %q", got)
	}
	es, err := etcd.Open(etcd.Options{Endpoints: c.Endpoints(), Prefix: "/fleet/"})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if v, err := es.CertStorage().Load(ctx, "certificates/acme/edge.example.com/edge.example.com.crt"); err != nil || string(v) != "CERT" {
		t.Errorf("the certificate in etcd: %q, %v", v, err)
	}
	got, err := deploy.ReadHistory(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	storetest.SameHistory(t, got, want)

	back := filepath.Join(dir, "back.db")
	r := runCLI(cmdStore, "copy", "--from", etcdLoc, "--prefix", "/fleet/", "--to", "bolt:"+back, "-o", "json")
	if r.err != nil || !strings.Contains(r.stdout, `"deployments": 12`) {
		t.Fatalf("store copy etcd → bolt: %+v", r)
	}
	storetest.SameHistory(t, readBolt(t, back), want)

	// Refusals: one line each, nothing written.
	unreachable := "etcd:" + testkit.RefusedURL(t)
	missing := filepath.Join(dir, "missing.db")
	fresh := filepath.Join(dir, "fresh.db")
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"non-empty etcd", "bolt:" + src, etcdLoc, "not empty"},
		{"non-empty bolt", etcdLoc, "bolt:" + back, "not empty"},
		{"unknown scheme", "s3:bucket/turnout.db", "bolt:" + fresh, `unknown store "s3"`},
		{"no scheme", src, "bolt:" + fresh, "write bolt:PATH or etcd:URL"},
		{"bad endpoint", "bolt:" + src, "etcd:10.0.0.1:2379", "not an etcd client URL"},
		{"missing source", "bolt:" + missing, "bolt:" + fresh, "no such file"},
		{"same store", "bolt:" + src, "bolt:" + src, "the same store"},
		{"unreachable etcd", unreachable, "bolt:" + fresh, "did not answer"},
	} {
		r := runCLI(cmdStore, "copy", "--from", tc.from, "--to", tc.to, "--prefix", "/fleet/", "--etcd-timeout", "1s")
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) || strings.Contains(r.err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line containing %q", tc.name, r.err, tc.want)
		}
	}
	for _, p := range []string{missing, fresh} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after the refused copies (%v)", p, err)
		}
	}
	if got, err = deploy.ReadHistory(ctx, es); err != nil {
		t.Fatal(err)
	}
	storetest.SameHistory(t, got, want)
	storetest.SameHistory(t, readBolt(t, back), want)

	if r := runCLI(cmdStore, "copy", "--from", "bolt:"+src); !errors.Is(r.err, errUsage) {
		t.Errorf("store copy without --to: %+v, want a usage error", r)
	}
	if r := runCLI(cmdStore, "move"); !errors.Is(r.err, errUsage) {
		t.Errorf("store move: %+v, want a usage error", r)
	}
}

// TestStoreCopyTLS: store copy into an etcd that wants TLS client
// certificates, with the --etcd-ca, --etcd-cert and --etcd-key files; a
// copy without the client certificate is refused in one line.
func TestStoreCopyTLS(t *testing.T) {
	ctx := context.Background()
	c, files := etcdtest.StartTLS(t, 1)
	loc := "etcd:" + strings.Join(c.Endpoints(), ",")
	src := filepath.Join(t.TempDir(), "turnout.db")
	want := storetest.History(3)
	writeBolt(t, src, want)

	r := runCLI(cmdStore, "copy", "--from", "bolt:"+src, "--to", loc, "--etcd-ca", files.CA, "--etcd-timeout", "2s")
	if r.err == nil || strings.Contains(r.err.Error(), "\n") {
		t.Fatalf("copy without a client certificate: %v, want a one-line error", r.err)
	}
	t.Logf("without a client certificate: %v", r.err)
	r = runCLI(cmdStore, "copy", "--from", "bolt:"+src, "--to", "etcd:http://127.0.0.1:2379", "--etcd-ca", files.CA)
	if r.err == nil || !strings.Contains(r.err.Error(), "https://") {
		t.Fatalf("TLS files with an http endpoint: %v", r.err)
	}
	r = runCLI(cmdStore, "copy", "--from", "bolt:"+src, "--to", loc, "--etcd-ca", files.CA, "--etcd-cert", files.Cert, "--etcd-key", files.Key)
	if r.err != nil {
		t.Fatalf("copy with TLS: %+v", r)
	}
	tlsOpts, err := etcd.OptionsFrom(&config.Etcd{Endpoints: c.Endpoints(), Prefix: etcd.DefaultPrefix, TLS: &config.EtcdTLS{CA: files.CA, Cert: files.Cert, Key: files.Key}})
	if err != nil {
		t.Fatal(err)
	}
	es, err := etcd.Open(tlsOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	got, err := deploy.ReadHistory(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	storetest.SameHistory(t, got, want)
}
