package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/store/etcd"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
	"github.com/turnout/turnout/internal/testkit"
)

// fleetConfig is the config of fleet node name on cluster c: a node of its
// own (listeners, store.path for its token and cache) in dir, the shared
// store, and the route on origin target of a and b.
func fleetConfig(c *etcdtest.Cluster, dir, name, a, b, target string) string {
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
  - {match: /, origin: %s}
`, name, tokenHash(), filepath.Join(dir, "turnout.db"), strings.Join(c.Endpoints(), ", "), a, b, target)
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
	acked := func(id uint64, names ...string) bool {
		ns, err := view.Nodes(context.Background())
		if err != nil {
			return false
		}
		got := 0
		for _, n := range ns {
			for _, name := range names {
				if n.Name == name && n.Deployment >= id && strings.HasPrefix(n.AdminURL, "http://127.0.0.1:") && !strings.HasSuffix(n.AdminURL, ":0") {
					got++
				}
			}
		}
		return got == len(names)
	}
	all := []string{"edge-1", "edge-2", "edge-3"}
	testkit.Eventually(t, 10*time.Second, "three nodes acknowledging deployment 1", func() bool { return acked(1, all...) })

	// Traffic on the two nodes that stay up for the whole test (edge-3 is
	// restarted): not one request may fail.
	steady := []string{n1.public, n2.public}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	var mu sync.Mutex
	total, failed := 0, []string{}
	stop := testkit.Load(4, func(i int) bool {
		resp, err := client.Get("http://" + steady[i%2] + "/load")
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
		mu.Lock()
		total++
		if msg != "" {
			failed = append(failed, msg)
		}
		mu.Unlock()
		return true
	})
	defer stop()

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
	testkit.Eventually(t, 10*time.Second, "deployment 2 acknowledged by all three", func() bool { return acked(2, all...) })
	testkit.Eventually(t, 5*time.Second, "all three nodes serving b", func() bool { return servedBy("b") })

	// Quorum lost: traffic goes on; an apply fails fast, saying why.
	cluster.Kill(0)
	cluster.Kill(1)
	start := time.Now()
	resp, body, err := apply(n1, "a")
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
	if got := get(t, "http://"+n3.public+"/probe"); got != "b" {
		t.Fatalf("edge-3 restarted without etcd serves %q, want the cached deployment's b", got)
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
		resp, _, err := apply(n1, "a")
		return err == nil && resp.StatusCode == http.StatusCreated
	})
	latest, err := view.Active(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the latest deployment acknowledged by all three", func() bool { return acked(latest.ID, all...) })
	testkit.Eventually(t, 5*time.Second, "all three nodes serving a", func() bool { return servedBy("a") })
	testkit.Eventually(t, 20*time.Second, "every node reporting turnout_store_connected 1", func() bool {
		for _, n := range nodes {
			if !strings.Contains(metricsOf(t, n), "turnout_store_connected 1") {
				return false
			}
		}
		return true
	})

	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 || total < 100 {
		t.Fatalf("%d of %d requests failed: %q", len(failed), total, failed[:min(len(failed), 5)])
	}
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
