package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/turnout/turnout/internal/store/etcd"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
	"github.com/turnout/turnout/internal/testkit"
)

// fleetConfig is the config of fleet node name on cluster c: a node of its
// own (listeners, store.path for its token and cache) in dir, the shared
// store, and the route on origin target of a and b.
func fleetConfig(c *etcdtest.Cluster, dir, name, a, b, target string) string {
	return fleetConfigRoutes(c, dir, name, a, b, "  - {match: /, origin: "+target+"}\n")
}

// fleetConfigRoutes is fleetConfig with routes of its own (YAML list items).
func fleetConfigRoutes(c *etcdtest.Cluster, dir, name, a, b, routes string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
invoke_api: {listen: "off"}
node: {name: %s}
admin:
  listen: 127.0.0.1:0
  tokens: [{name: e2e, role: admin, sha256: %s}]
store:
  path: %s
  etcd: {endpoints: [%s], dial_timeout: 2s}
origins:
  a: {url: %s}
  b: {url: %s}
routes:
%s`, name, tokenHash(), filepath.Join(dir, "turnout.db"), strings.Join(c.Endpoints(), ", "), a, b, routes)
}

// fleetNode writes node name's config into a directory of its own and
// starts it.
func fleetNode(t *testing.T, c *etcdtest.Cluster, name, a, b string) (n *node, cfgPath string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath = filepath.Join(dir, "turnout.yaml")
	if err := os.WriteFile(cfgPath, []byte(fleetConfig(c, dir, name, a, b, "a")), 0o644); err != nil {
		t.Fatal(err)
	}
	return startNode(t, cfgPath), cfgPath
}

// TestFleetOnEtcd runs three turnout processes on a three-member etcd
// cluster with traffic on all three throughout: an apply on one node is
// acknowledged and served by every node; with etcd's quorum gone, traffic
// goes on untouched, applies fail fast and clearly, and the nodes say they
// are disconnected; with quorum back, applies succeed again. A node
// restarted while etcd is down serves its cached deployment; a node
// without a cache refuses to start; both follow the fleet once etcd is back.
func TestFleetOnEtcd(t *testing.T) {
	cluster := etcdtest.Start(t, 3)
	a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
	n1, _ := fleetNode(t, cluster, "edge-1", a.URL, b.URL)
	n2, _ := fleetNode(t, cluster, "edge-2", a.URL, b.URL)
	n3, cfg3 := fleetNode(t, cluster, "edge-3", a.URL, b.URL)
	nodes := []*node{n1, n2, n3}

	// The test's own view of the fleet, through the store.
	view, err := etcd.Open(etcd.Options{Endpoints: cluster.Endpoints(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	all := []string{"edge-1", "edge-2", "edge-3"}
	waitAcked(t, view, 1, all...)
	// Each record advertises the admin URL the node bound, not a :0.
	testkit.Eventually(t, 10*time.Second, "bound admin URLs in the nodes' records", func() bool {
		ns, err := view.Nodes(context.Background())
		for _, n := range ns {
			if !strings.HasPrefix(n.AdminURL, "http://127.0.0.1:") || strings.HasSuffix(n.AdminURL, ":0") {
				return false
			}
		}
		return err == nil && len(ns) == 3
	})

	// Traffic on the two nodes that stay up for the whole test (edge-3 is
	// restarted): not one request may fail.
	steady := []string{n1.public, n2.public}
	load := abLoad(4, steady...)
	defer load.stop()

	apply := func(on *node, target string) (*http.Response, []byte, error) {
		return on.api("POST", "/deployments", map[string]string{"config": fleetConfig(cluster, t.TempDir(), "x", a.URL, b.URL, target), "message": "to " + target})
	}
	servedBy := func(want string) bool {
		for _, n := range nodes {
			if get(t, "http://"+n.public+"/probe") != want {
				return false
			}
		}
		return true
	}

	// An apply on edge-2 reaches every node.
	if resp, body, err := apply(n2, "b"); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("apply on edge-2: %v %s", err, body)
	}
	waitAcked(t, view, 2, all...)
	testkit.Eventually(t, 5*time.Second, "all three nodes serving b", func() bool { return servedBy("b") })

	// One member of three lost: the fleet does not notice.
	cluster.Kill(0)
	testkit.Eventually(t, 20*time.Second, "an apply succeeding with one etcd member down", func() bool {
		resp, _, err := apply(n3, "a")
		return err == nil && resp.StatusCode == http.StatusCreated
	})
	latest, err := view.Active(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, view, latest.ID, all...)
	testkit.Eventually(t, 5*time.Second, "all three nodes serving a", func() bool { return servedBy("a") })

	// Quorum lost: traffic goes on; an apply fails fast, saying why.
	cluster.Kill(1)
	start := time.Now()
	resp, body, err := apply(n1, "b")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "etcd") {
		t.Fatalf("apply without quorum: %v %v %s; want 503 naming etcd", err, resp, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("apply without quorum took %v; it must fail fast", d)
	}
	testkit.Eventually(t, 20*time.Second, "every node reporting turnout_store_connected 0", func() bool {
		for _, n := range nodes {
			if !strings.Contains(metricsOf(t, n), "turnout_store_connected 0") {
				return false
			}
		}
		return true
	})

	// A node restarted now serves the deployment it cached.
	n3.cmd.Process.Kill()
	n3.cmd.Wait()
	n3 = startNode(t, cfg3)
	nodes[2] = n3
	if got := get(t, "http://"+n3.public+"/probe"); got != "a" {
		t.Fatalf("edge-3 restarted without etcd serves %q, want the cached deployment's a", got)
	}
	if !strings.Contains(n3.logs(), "STORE UNREACHABLE") {
		t.Errorf("edge-3 did not warn that it serves its cache:\n%s", n3.logs())
	}
	// A new node with nothing cached does not start with an empty table.
	dir4 := t.TempDir()
	cfg4 := filepath.Join(dir4, "turnout.yaml")
	os.WriteFile(cfg4, []byte(fleetConfig(cluster, dir4, "edge-4", a.URL, b.URL, "a")), 0o644)
	var stderr bytes.Buffer
	cmd := exec.Command(turnoutBin, "serve", "-c", cfg4, "--access-log", "off")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "not starting with an empty route table") {
		t.Fatalf("a node without etcd or cache: %v\n%s", err, stderr.String())
	}

	// Quorum back: the nodes reconnect, and applies work again.
	cluster.Restart(0)
	cluster.Restart(1)
	cluster.WaitHealthy()
	testkit.Eventually(t, 20*time.Second, "an apply succeeding once quorum is back", func() bool {
		resp, _, err := apply(n1, "b")
		return err == nil && resp.StatusCode == http.StatusCreated
	})
	if latest, err = view.Active(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, view, latest.ID, all...)
	testkit.Eventually(t, 5*time.Second, "all three nodes serving b", func() bool { return servedBy("b") })
	testkit.Eventually(t, 20*time.Second, "every node reporting turnout_store_connected 1", func() bool {
		for _, n := range nodes {
			if !strings.Contains(metricsOf(t, n), "turnout_store_connected 1") {
				return false
			}
		}
		return true
	})

	total := load.check(t, 100)
	t.Logf("%d requests across the fleet, none failed, through an apply, a quorum loss, a node restart and recovery", total)
	if ds, err := view.List(context.Background(), 0, 100); err == nil {
		for i := 1; i < len(ds); i++ {
			if ds[i-1].ID != ds[i].ID+1 {
				t.Errorf("history has a gap or a duplicate: %d after %d", ds[i].ID, ds[i-1].ID)
			}
		}
	}
}

// metricsOf is node n's /metrics page.
func metricsOf(t *testing.T, n *node) string {
	t.Helper()
	req, _ := http.NewRequest("GET", n.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// startFleetNodes starts a three-member etcd cluster and nodes edge-1 to
// edge-n on it, every one with its route on a, and waits until all have
// acknowledged deployment 1.
func startFleetNodes(t *testing.T, n int) (c *etcdtest.Cluster, nodes []*node, view *etcd.Store, a, b *httptest.Server) {
	t.Helper()
	c = etcdtest.Start(t, 3)
	a, b = namedOrigin(t, "a"), namedOrigin(t, "b")
	var names []string
	for i := range n {
		nd, _ := fleetNode(t, c, fmt.Sprintf("edge-%d", i+1), a.URL, b.URL)
		nodes = append(nodes, nd)
		names = append(names, fmt.Sprintf("edge-%d", i+1))
	}
	view, err := etcd.Open(etcd.Options{Endpoints: c.Endpoints(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { view.Close() })
	waitAcked(t, view, 1, names...)
	return c, nodes, view, a, b
}

// waitAcked waits until every named node has acknowledged deployment id.
func waitAcked(t *testing.T, view *etcd.Store, id uint64, names ...string) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("deployment %d acknowledged by %v", id, names), func() bool {
		ns, err := view.Nodes(context.Background())
		if err != nil {
			return false
		}
		got := 0
		for _, n := range ns {
			for _, name := range names {
				if n.Name == name && n.Deployment >= id {
					got++
				}
			}
		}
		return got == len(names)
	})
}

// TestFleetApplies: 100 applies alternating between two configs, made on
// the three nodes in turn under traffic to all three, every one
// acknowledged by every node, none failing a request; then 20 applies at
// once from the three nodes: each either wins an id of its own or is told
// of the conflict, and the history holds exactly the winners, with ids
// strictly increasing, without a gap or a duplicate.
func TestFleetApplies(t *testing.T) {
	c, nodes, view, a, b := startFleetNodes(t, 3)
	all := []string{"edge-1", "edge-2", "edge-3"}
	load := abLoad(3, nodes[0].public, nodes[1].public, nodes[2].public)
	defer load.stop()
	apply := func(on *node, target string) (*http.Response, []byte, error) {
		return on.api("POST", "/deployments", map[string]string{"config": fleetConfig(c, t.TempDir(), "x", a.URL, b.URL, target)})
	}
	for i := range 100 {
		target := map[bool]string{true: "b", false: "a"}[i%2 == 0]
		resp, body, err := apply(nodes[i%3], target)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("apply %d on edge-%d: %v %s", i, i%3+1, err, body)
		}
		waitAcked(t, view, uint64(i+2), all...)
	}
	total := load.check(t, 100)

	// 20 applies at once, from the three nodes.
	var wg sync.WaitGroup
	var won, lost []int
	var outcomes sync.Mutex
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body, err := apply(nodes[i%3], map[bool]string{true: "b", false: "a"}[i%2 == 0])
			outcomes.Lock()
			defer outcomes.Unlock()
			switch {
			case err != nil:
				t.Errorf("concurrent apply %d: %v", i, err)
			case resp.StatusCode == http.StatusCreated:
				won = append(won, i)
			case resp.StatusCode == http.StatusConflict && strings.Contains(string(body), "was made after deployment"):
				lost = append(lost, i)
			case resp.StatusCode == http.StatusOK && strings.Contains(string(body), "no change"):
				lost = append(lost, i) // the same config as the winner's: nothing to do
			default:
				t.Errorf("concurrent apply %d: %d %s", i, resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	ds, err := view.List(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := 101 + len(won); len(ds) != want || ds[0].ID != uint64(want) {
		t.Fatalf("history holds %d deployments (newest %d); want %d: 101, and the %d concurrent applies that won", len(ds), ds[0].ID, want, len(won))
	}
	for i := 1; i < len(ds); i++ {
		if ds[i-1].ID != ds[i].ID+1 {
			t.Fatalf("history: deployment %d after %d, a gap or a duplicate", ds[i-1].ID, ds[i].ID)
		}
	}
	if len(won) == 0 || len(won)+len(lost) != 20 {
		t.Fatalf("%d won and %d were refused, of 20", len(won), len(lost))
	}
	t.Logf("%d requests, none failed, through 100 applies; of 20 concurrent applies %d won, %d were told of the conflict", total, len(won), len(lost))
}

// TestFleetNodeStoppedAndCompacted: a node stopped (SIGSTOP) for longer
// than its lease leaves the fleet's list; meanwhile the fleet moves on and
// etcd compacts the history past the revision the stopped node was
// watching. Resumed, the node rejoins the list and catches up on the
// latest deployment.
func TestFleetNodeStoppedAndCompacted(t *testing.T) {
	c, nodes, view, a, b := startFleetNodes(t, 2)
	stopped := nodes[1]
	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer stopped.cmd.Process.Signal(syscall.SIGCONT)
	testkit.Eventually(t, 30*time.Second, "edge-2 gone from the fleet's list after its lease", func() bool {
		ns, err := view.Nodes(context.Background())
		if err != nil {
			return false
		}
		for _, n := range ns {
			if n.Name == "edge-2" {
				return false
			}
		}
		return len(ns) == 1
	})
	for i, target := range []string{"b", "a", "b"} {
		resp, body, err := nodes[0].api("POST", "/deployments", map[string]string{"config": fleetConfig(c, t.TempDir(), "x", a.URL, b.URL, target)})
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("apply %d: %v %s", i, err, body)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rev, err := cli.Get(ctx, "compact-probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, rev.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if err := stopped.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, view, 4, "edge-1", "edge-2")
	if got := get(t, "http://"+stopped.public+"/probe"); got != "b" {
		t.Fatalf("edge-2 serves %q after resuming, want the latest deployment's b", got)
	}
}

// TestFleetLocalSwitch: with etcd's quorum gone, an operator switches a
// route off on one node with --local: that node sends it to the route's
// fallback, the other node does not; the switch survives a restart of the
// node (still without etcd), and route on --local undoes it.
func TestFleetLocalSwitch(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
	routes := "  - {match: /api/, origin: b, fallback: a}\n  - {match: /, origin: a}\n"
	start := func(name string) (*node, string) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "turnout.yaml")
		if err := os.WriteFile(cfg, []byte(fleetConfigRoutes(c, dir, name, a.URL, b.URL, routes)), 0o644); err != nil {
			t.Fatal(err)
		}
		return startNode(t, cfg), cfg
	}
	n1, cfg1 := start("edge-1")
	n2, _ := start("edge-2")
	c.Kill(0)
	c.Kill(1)
	cli := func(n *node, args ...string) string {
		cmd := exec.Command(turnoutBin, append(args, "--admin", n.admin)...)
		cmd.Env = append(os.Environ(), "TURNOUT_TOKEN="+testToken)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("turnout %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	began := time.Now()
	cli(n1, "route", "off", "/api/", "--local", "-m", "etcd down, function failing")
	// Waiting on etcd would take at least its dial_timeout, 2 s.
	if d := time.Since(began); d >= 2*time.Second {
		t.Errorf("route off --local took %v with etcd down: it must not wait on the store", d)
	}
	if got := get(t, "http://"+n1.public+"/api/x"); got != "a" {
		t.Fatalf("edge-1 after route off --local serves %q, want the fallback a", got)
	}
	if got := get(t, "http://"+n2.public+"/api/x"); got != "b" {
		t.Fatalf("edge-2 serves %q, want b: a local switch stays on its node", got)
	}
	testkit.ContainsAll(t, "status", cli(n1, "status"), "OFF (local)", "STORE DISCONNECTED")

	// A restart, etcd still down: the cached deployment, switch included.
	n1.cmd.Process.Kill()
	n1.cmd.Wait()
	n1 = startNode(t, cfg1)
	if got := get(t, "http://"+n1.public+"/api/x"); got != "a" {
		t.Fatalf("edge-1 restarted serves %q, want the fallback a: the local switch must survive", got)
	}
	cli(n1, "route", "on", "/api/", "--local")
	if got := get(t, "http://"+n1.public+"/api/x"); got != "b" {
		t.Fatalf("edge-1 after route on --local serves %q, want b", got)
	}

	// With the store back, the fleet's list shows a node's local switch.
	c.Restart(0)
	c.Restart(1)
	c.WaitHealthy()
	cli(n2, "route", "off", "/api/", "--local")
	testkit.Eventually(t, 20*time.Second, "turnout nodes showing edge-2's local switch", func() bool {
		return strings.Contains(cli(n1, "nodes"), "LOCAL: node edge-2 has switched off on its own (route off --local): /api/")
	})
}

// abLoad keeps workers sending GETs to the public addresses given, in
// turn, until stop: each must be answered 200 "a" or "b".
func abLoad(workers int, addrs ...string) *loadRun {
	l := &loadRun{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	l.stop = testkit.Load(workers, func(i int) bool {
		resp, err := client.Get("http://" + addrs[i%len(addrs)] + "/load")
		msg := ""
		if err != nil {
			msg = err.Error()
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (string(body) != "a" && string(body) != "b") {
				msg = fmt.Sprintf("%d %s", resp.StatusCode, body)
			}
		}
		l.mu.Lock()
		l.total++
		if msg != "" {
			l.failed = append(l.failed, msg)
		}
		l.mu.Unlock()
		return true
	})
	return l
}

// loadRun is a load started by abLoad.
type loadRun struct {
	stop   func()
	mu     sync.Mutex
	total  int
	failed []string
}

// check stops the load and fails the test if a request failed or fewer
// than least were sent; it returns how many were.
func (l *loadRun) check(t *testing.T, least int) int {
	t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) > 0 || l.total < least {
		t.Fatalf("%d of %d requests failed: %q", len(l.failed), l.total, l.failed[:min(len(l.failed), 5)])
	}
	return l.total
}

// TestFleetACME: three turnout nodes on one etcd cluster manage the same
// name with Pebble's http-01 challenge, which Pebble validates on the first
// node's port only. They start together; the fleet's certmagic lock in etcd
// lets one order reach the CA, the challenge is answered from what the
// ordering node stored in etcd, and all three serve the one certificate.
func TestFleetACME(t *testing.T) {
	c := etcdtest.Start(t, 3)
	httpAddrs := []string{freePort(t), freePort(t), freePort(t)}
	httpsAddrs := []string{freePort(t), freePort(t), freePort(t)}
	_, httpPort, _ := net.SplitHostPort(httpAddrs[0])
	_, httpsPort, _ := net.SplitHostPort(httpsAddrs[0])
	p := testkit.StartPebble(t, atoiT(t, httpPort), atoiT(t, httpsPort))
	legacy := namedOrigin(t, "legacy")
	var cfgs []string
	for i := range 3 {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "turnout.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
tls:
  listen: %s
  domains: [fleet.test]
  email: ops@example.com
  ca: %s
  ca_root: %s
  challenges: [http-01]
node: {name: edge-%d}
invoke_api: {listen: "off"}
admin:
  listen: 127.0.0.1:0
  tokens: [{name: e2e, role: admin, sha256: %s}]
store:
  path: %s
  etcd: {endpoints: [%s]}
origins:
  legacy: {url: %s}
routes:
  - {match: /, origin: legacy}
`, httpAddrs[i], httpsAddrs[i], p.Directory, p.CARoot, i+1, tokenHash(), filepath.Join(dir, "turnout.db"), strings.Join(c.Endpoints(), ", "), legacy.URL)), 0o600)
		cfgs = append(cfgs, cfg)
	}
	// The first node seeds the store; then all three start at once.
	nodes := []*node{startNode(t, cfgs[0])}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, cfg := range cfgs[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := startNode(t, cfg)
			mu.Lock()
			nodes = append(nodes, n)
			mu.Unlock()
		}()
	}
	wg.Wait()

	var serials []string
	for i, addr := range httpsAddrs {
		deadline := time.Now().Add(90 * time.Second)
		for {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: p.Roots, ServerName: "fleet.test"})
			if err == nil {
				serials = append(serials, conn.ConnectionState().PeerCertificates[0].SerialNumber.String())
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("edge-%d: no verified certificate for fleet.test after 90 s: %v\npebble:\n%s", i+1, err, p.Out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if serials[0] != serials[1] || serials[1] != serials[2] {
		t.Errorf("the nodes serve certificates %v, want one", serials)
	}
	time.Sleep(time.Second) // a second order would have reached Pebble by now
	if got := p.Issued(); got != 1 {
		t.Errorf("Pebble issued %d certificates for the fleet, want 1\n%s", got, p.Out)
	}
	obtained := 0
	for _, n := range nodes {
		obtained += strings.Count(n.logs(), `"msg":"certificate obtained successfully"`)
	}
	if obtained != 1 {
		t.Errorf("%d nodes obtained the certificate, want 1", obtained)
	}
}
