package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/storetest"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
	"github.com/turnout/turnout/internal/testkit"
)

// open opens a Store on cluster c under prefix, closed when the test ends.
func open(t testing.TB, c *etcdtest.Cluster, prefix string, opts ...func(*Options)) *Store {
	t.Helper()
	o := Options{Endpoints: c.Endpoints(), Prefix: prefix}
	for _, f := range opts {
		f(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client returns a plain etcd client on c, for doing what an operator (or
// another program) would do to the cluster.
func client(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestContract runs the contract every deploy.Store keeps against a
// 3-member cluster, each clause under a prefix of its own.
func TestContract(t *testing.T) {
	c := etcdtest.Start(t, 3)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) deploy.Store {
		return open(t, c, fmt.Sprintf("/contract/%d/", n.Add(1)))
	})
}

// TestConcurrentCreatesThreeClients: 20 Creates at once from three
// clients (three nodes) on one prefix.
func TestConcurrentCreatesThreeClients(t *testing.T) {
	c := etcdtest.Start(t, 3)
	var stores []deploy.Store
	for i := 0; i < 3; i++ {
		stores = append(stores, open(t, c, "/turnout/"))
	}
	storetest.ConcurrentCreates(t, stores, 20)
}

func TestKeysAndPrefix(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	s := open(t, c, "/fleet-a") // a "/" is added
	other := open(t, c, "/fleet-b/")
	storetest.Create(t, s, "one")
	if err := s.Audit(ctx, deploy.AuditEvent{Actor: "ops", Action: "apply", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, deploy.Node{Name: "edge-1", Deployment: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err := client(t, c).Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	want := "/fleet-a/active /fleet-a/audit-seq /fleet-a/audit/00000000000000000001 /fleet-a/deployments/00000000000000000001 /fleet-a/nodes/edge-1"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("keys:\n got %s\nwant %s", got, want)
	}
	if _, err := other.Active(ctx); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("another prefix sees an active deployment: %v", err)
	}
	if err := s.Ack(ctx, deploy.Node{Name: "a/b"}); err == nil {
		t.Fatal("Ack of a name with a / succeeded")
	}
}

// TestWatchResyncsAfterCompaction: a watch whose revision etcd has
// compacted away (a node cut off while the history moved on and was
// compacted) reads the active key afresh and ends on the latest id.
func TestWatchResyncsAfterCompaction(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	// The node's store talks to one member, the operator compacts
	// through another: the cluster's members apply a compaction one by one.
	s := open(t, c, "/turnout/", func(o *Options) { o.Endpoints = c.Endpoints()[1:2] })
	writer := open(t, c, "/turnout/")
	storetest.Create(t, s, "one")

	var watches atomic.Int32
	s.beforeWatch = func(rev int64) {
		if watches.Add(1) != 1 {
			return
		}
		// Between the read and the watch: the history moves past the
		// read's revision and is compacted, as if the node had been away.
		for i := 0; i < 3; i++ {
			storetest.Create(t, writer, fmt.Sprintf("moved on %d", i))
		}
		cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints()[:1]})
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		cur, err := cl.Get(ctx, "compaction-point")
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := cl.Compact(ctx, cur.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
			t.Error(err)
			return
		}
		if cur.Header.Revision <= rev+1 {
			t.Errorf("compaction at %d is not past the watch's start %d", cur.Header.Revision, rev+1)
		}
		// Compact returns once the member it asked has compacted; the
		// others apply it a moment later, and a watch started on one of
		// them then would still be served from the old revision. Wait
		// until every member has compacted, so the watch meets it.
		for _, ep := range c.Endpoints() {
			waitCompacted(t, ep, rev+1)
		}
	}
	ch := s.Watch(ctx)
	storetest.WaitFor(t, ch, 4, 10*time.Second)
	if n := watches.Load(); n < 2 {
		t.Fatalf("the watch started %d times; a compacted watch must be started again", n)
	}
	// And it keeps following after the resync.
	storetest.Create(t, writer, "after")
	storetest.WaitFor(t, ch, 5, 10*time.Second)
}

// waitCompacted waits until the member at endpoint ep answers a read at
// revision rev with "compacted", that is until it has applied a compaction
// past rev.
func waitCompacted(t *testing.T, ep string, rev int64) {
	t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}})
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Serializable: the member answers from its own store.
		_, err := cl.Get(context.Background(), "compaction-point", clientv3.WithRev(rev), clientv3.WithSerializable())
		if errors.Is(err, rpctypes.ErrCompacted) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("member %s has not compacted past %d after 10s (last read: %v)", ep, rev, err)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestQuorum: with one member of three down, changes go on; with two down
// they fail within the timeout, saying etcd is unavailable, and a watch
// stays open; when the members come back, the watch ends on the latest
// deployment.
func TestQuorum(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	const timeout = 2 * time.Second
	s := open(t, c, "/turnout/", func(o *Options) { o.Timeout = timeout })
	watcher := open(t, c, "/turnout/", func(o *Options) { o.Timeout = timeout })
	storetest.Create(t, s, "one")
	ch := watcher.Watch(ctx)
	storetest.WaitFor(t, ch, 1, 10*time.Second)

	c.Kill(0)
	// The client may have been talking to the member killed: its first
	// request can time out while it moves to another (keep-alives notice in
	// ~2 s), as an operator's first apply after a member dies may get a
	// 503. Then writes succeed on the two left.
	testkit.Eventually(t, 15*time.Second, "a write with one member of three down", func() bool {
		if act, err := s.Active(ctx); err == nil && act.ID == 2 {
			return true // an attempt given up on was stored after all
		}
		_, err := s.Create(ctx, 1, deploy.Deployment{Config: "two, one member down", Author: "ops", Cause: "apply"})
		return err == nil
	})
	storetest.WaitFor(t, ch, 2, 10*time.Second)

	c.Kill(1)
	start := time.Now()
	_, err := s.Create(ctx, 2, deploy.Deployment{Config: "three, no quorum", Author: "ops", Cause: "apply"})
	took := time.Since(start)
	if !errors.Is(err, deploy.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer within 2s") {
		t.Fatalf("Create without quorum: err = %v, want one wrapping deploy.ErrUnavailable that names the timeout", err)
	}
	// Bounded by the timeout, with room for a loaded machine: not a hang.
	if took > 3*timeout {
		t.Fatalf("Create without quorum took %v, timeout %v", took, timeout)
	}
	if err := s.Audit(ctx, deploy.AuditEvent{Actor: "ops", Action: "apply", Result: "error"}); !errors.Is(err, deploy.ErrUnavailable) {
		t.Fatalf("Audit without quorum: err = %v", err)
	}
	t.Logf("without quorum: %v after %v", err, took)

	c.Restart(0)
	c.Restart(1)
	c.WaitHealthy()
	// The refused Create may have been stored after all (its outcome was
	// unknown); either way the next change is based on what is active.
	testkit.Eventually(t, 15*time.Second, "a change accepted after the restart", func() bool {
		act, err := s.Active(ctx)
		if err != nil {
			return false
		}
		_, err = s.Create(ctx, act.ID, deploy.Deployment{Config: "after restart", Author: "ops", Cause: "apply"})
		return err == nil
	})
	act, err := s.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	storetest.WaitFor(t, ch, act.ID, 15*time.Second)
}

// TestNodesLease: an ack lists the node on every store of the fleet; when
// its lease is lost (expired as etcd sees it), the node writes its record
// again under a new one; when it stops heartbeating, it leaves the list
// after the TTL; a closed store leaves at once.
func TestNodesLease(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	ttl := func(o *Options) { o.LeaseTTL = 2 * time.Second }
	a := open(t, c, "/turnout/", ttl)
	b := open(t, c, "/turnout/", ttl)
	observer := open(t, c, "/turnout/")
	if err := a.Ack(ctx, deploy.Node{Name: "a", Deployment: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, deploy.Node{Name: "b", Deployment: 1}); err != nil {
		t.Fatal(err)
	}
	names := func() string {
		nodes, err := observer.Nodes(ctx)
		if err != nil {
			return err.Error()
		}
		var out []string
		for _, n := range nodes {
			out = append(out, n.Name)
		}
		return strings.Join(out, " ")
	}
	if got := names(); got != "a b" {
		t.Fatalf("nodes = %q, want \"a b\"", got)
	}

	// etcd forgets a's lease: a notices and writes its record again.
	a.mu.Lock()
	lease := a.lease
	a.mu.Unlock()
	if _, err := client(t, c).Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "a back in the list under a new lease", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.lease != lease && names() == "a b"
	})

	// b stops heartbeating (as a stopped process would): it leaves after
	// the TTL, not before it is over.
	b.cancel()
	b.wg.Wait()
	stopped := time.Now()
	testkit.Eventually(t, 10*time.Second, "b gone after its lease TTL", func() bool { return names() == "a" })
	if gone := time.Since(stopped); gone < time.Second {
		t.Fatalf("b left %v after it stopped heartbeating, TTL 2s", gone)
	}

	// A store closed cleanly revokes its lease.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := names(); got != "" {
		t.Fatalf("nodes after a closed = %q, want none", got)
	}
}

// BenchmarkCreateSeen: a Create through one client of a 3-member cluster
// on loopback, until another client's Watch has seen it.
func BenchmarkCreateSeen(b *testing.B) {
	c := etcdtest.Start(b, 3)
	storetest.BenchmarkCreateSeen(b, open(b, c, "/turnout/"), open(b, c, "/turnout/"))
}

// TestUnreachable: a node opens its store while etcd is down (it serves
// what it had meanwhile); every call then fails within the timeout, saying
// etcd is unavailable, and a Watch waits for it with its channel open.
func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Options{Endpoints: []string{testkit.RefusedURL(t)}, Timeout: time.Second})
	if err != nil {
		t.Fatalf("Open with etcd down: %v", err)
	}
	defer s.Close()
	ch := s.Watch(ctx)
	calls := map[string]func() error{
		"Create":   func() error { _, err := s.Create(ctx, 0, deploy.Deployment{Config: "x"}); return err },
		"Active":   func() error { _, err := s.Active(ctx); return err },
		"List":     func() error { _, err := s.List(ctx, 0, 10); return err },
		"Audit":    func() error { return s.Audit(ctx, deploy.AuditEvent{Actor: "ops"}) },
		"AuditLog": func() error { _, err := s.AuditLog(ctx, 10); return err },
		"Ack":      func() error { return s.Ack(ctx, deploy.Node{Name: "edge-1"}) },
		"Nodes":    func() error { _, err := s.Nodes(ctx); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, deploy.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer within 1s") {
			t.Errorf("%s with etcd down: err = %v, want deploy.ErrUnavailable naming the timeout", name, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s with etcd down took %v, timeout 1s", name, took)
		}
	}
	select {
	case id, ok := <-ch:
		t.Fatalf("Watch with etcd down sent %d (open %v)", id, ok)
	default:
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{Endpoints: []string{"http://127.0.0.1:1"}, Username: "root"},
	} {
		if s, err := Open(o); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

// TestTLSFromSettings: store.etcd settings with tls {ca, cert, key}, as a
// node reads them, reach a cluster that requires client certificates; with
// the CA alone etcd refuses the node, and the store says etcd did not
// answer rather than hanging.
func TestTLSFromSettings(t *testing.T) {
	c, files := etcdtest.StartTLS(t, 1)
	settings := func(tls string) *config.Etcd {
		t.Helper()
		src := fmt.Sprintf("store:\n  etcd:\n    endpoints: [%s]\n    dial_timeout: 2s\n    tls: %s\norigins: {legacy: {url: http://127.0.0.1:9000}}\n", c.Endpoints()[0], tls)
		cfg, err := config.Parse("node.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.WithDefaults().Store.Etcd
	}
	o, err := OptionsFrom(settings(fmt.Sprintf("{ca: %s, cert: %s, key: %s}", files.CA, files.Cert, files.Key)))
	if err != nil {
		t.Fatal(err)
	}
	if o.Prefix != "/turnout/" || o.Timeout != 2*time.Second {
		t.Fatalf("options = %+v", o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := storetest.Create(t, s, "over TLS"); d.ID != 1 {
		t.Fatalf("id = %d", d.ID)
	}

	o, err = OptionsFrom(settings(fmt.Sprintf("{ca: %s}", files.CA)))
	if err != nil {
		t.Fatal(err)
	}
	anon, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Active(context.Background()); !errors.Is(err, deploy.ErrUnavailable) {
		t.Fatalf("Active without a client certificate: err = %v, want deploy.ErrUnavailable", err)
	} else {
		t.Logf("without a client certificate: %v", err)
	}

	if _, err := OptionsFrom(settings("{ca: /nonexistent/ca.pem}")); err == nil || !strings.Contains(err.Error(), "store.etcd.tls.ca") {
		t.Fatalf("missing CA file: err = %v", err)
	}
	if _, err := OptionsFrom(settings(fmt.Sprintf("{ca: %s, cert: %s, key: %s}", files.CA, files.Key, files.Cert))); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("cert and key swapped: err = %v", err)
	}
}

// TestAuth: with etcd's auth enabled, a user whose role may read and write
// the prefix runs the store; a wrong password is refused at Open.
func TestAuth(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	admin := client(t, c)
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "fleet"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "fleet", "/turnout/", clientv3.GetPrefixRangeEnd("/turnout/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "turnout", "node-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "turnout", "fleet"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
	s := open(t, c, "/turnout/", func(o *Options) { o.Username, o.Password = "turnout", "node-pw" })
	storetest.Create(t, s, "with a login")
	if err := s.Ack(ctx, deploy.Node{Name: "edge-1", Deployment: 1}); err != nil {
		t.Fatal(err)
	}
	if nodes, err := s.Nodes(ctx); err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes = %v, %v", nodes, err)
	}

	wrong, err := Open(Options{Endpoints: c.Endpoints(), Username: "turnout", Password: "guess", Timeout: 2 * time.Second})
	if err == nil {
		wrong.Close()
		t.Fatal("Open with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: err = %v", err)
	}
	t.Logf("wrong password: %v", err)
}
