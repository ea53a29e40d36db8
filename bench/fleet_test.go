package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/gateway"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/store/etcd"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
)

// fleetNode is one node of a fleet assembled in-process the way `turnout
// serve` wires a node with store.etcd: its own store client, a gateway, a
// Follower that swaps in what the store makes active and acks it under the
// node's name, and the Service an apply on this node goes through. public
// is its data plane's URL ("" for nodes that serve no HTTP).
type fleetNode struct {
	name   string
	st     deploy.Store
	gw     *gateway.Gateway
	svc    *deploy.Service
	public string
}

// origins answers "a" and "b", the two targets the benchmark configs
// switch the route between.
type origins struct{ a, b string }

func newOrigins(tb testing.TB) origins {
	oa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	ob := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") }))
	tb.Cleanup(func() { oa.Close(); ob.Close() })
	return origins{oa.URL, ob.URL}
}

// config routes every request to target ("a" or "b"), with comment n.
// Applying the served config again is "no change", so successive applies
// alternate targets (see flip).
func (o origins) config(target string, n int) []byte {
	return fmt.Appendf(nil, "# %d\norigins:\n  a: {url: %s}\n  b: {url: %s}\nroutes:\n  - {match: /, origin: %s}\n", n, o.a, o.b, target)
}

// flip is the config of the i-th apply of a run: the route on b, then a,
// then b...
func (o origins) flip(i int) []byte {
	if i%2 == 1 {
		return o.config("a", i+1)
	}
	return o.config("b", i+1)
}

// startNode assembles node name on store st, seeds an empty store with
// o's config on a, serves the active deployment and follows the store.
func startNode(tb testing.TB, ctx context.Context, st deploy.Store, name string, o origins, listen bool) *fleetNode {
	tb.Helper()
	quiet := slog.New(slog.DiscardHandler)
	gw := gateway.New(gateway.Options{Metrics: metrics.New(), Logger: quiet, RetireGrace: 10 * time.Millisecond})
	serving := func() uint64 {
		if t := gw.Active(); t != nil {
			return t.Deployment
		}
		return 0
	}
	f := &deploy.Follower{Store: st, Apply: gw.Apply, Serving: serving, Log: quiet, Node: deploy.Node{Name: name}}
	svc := &deploy.Service{Store: st, Activate: func(_ context.Context, d deploy.Deployment, c *config.Config) error { return f.Serve(d, c) }}
	active, _, err := svc.Seed(ctx, o.config("a", 0), "bench.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Activate(active); err != nil {
		tb.Fatal(err)
	}
	go f.Run(ctx)
	n := &fleetNode{name: name, st: st, gw: gw, svc: svc}
	if listen {
		ps := httptest.NewServer(gw)
		tb.Cleanup(ps.Close)
		n.public = ps.URL
	}
	tb.Cleanup(gw.Close)
	return n
}

// boltNode is a single node on the embedded bolt store, stopped when b ends.
func boltNode(b *testing.B, o origins, listen bool) *fleetNode {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	st, err := bolt.Open(filepath.Join(b.TempDir(), "turnout.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return startNode(b, ctx, st, "node-1", o, listen)
}

// startFleet starts n nodes on cluster c, each with its own etcd client.
func startFleet(tb testing.TB, ctx context.Context, c *etcdtest.Cluster, n int, o origins, listen bool) []*fleetNode {
	tb.Helper()
	nodes := make([]*fleetNode, n)
	for i := range nodes {
		st, err := etcd.Open(etcd.Options{Endpoints: c.Endpoints()})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { st.Close() })
		nodes[i] = startNode(tb, ctx, st, "node-"+strconv.Itoa(i+1), o, listen)
	}
	return nodes
}

// allAcked polls st every millisecond until n nodes acknowledge deployment
// id, or fails after 30 s.
func allAcked(tb testing.TB, st deploy.Store, id uint64, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ns, err := st.Nodes(context.Background())
		got := 0
		for _, node := range ns {
			if node.Deployment >= id {
				got++
			}
		}
		if err == nil && got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("deployment %d: %d of %d nodes acknowledged it after 30 s (%v)", id, got, n, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// reportQuantiles reports the p50, p99 and max of ds in milliseconds.
func reportQuantiles(b *testing.B, ds []time.Duration, what string) {
	slices.Sort(ds)
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms-"+what)
	b.ReportMetric(q(0.99), "p99-ms-"+what)
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms-"+what)
}

// BenchmarkFleetPropagation: three nodes with their data planes on
// loopback, a three-member etcd cluster; each iteration applies on the
// next node (round robin) a config moving the route between origins a and
// b, then times from the apply's return until every node answers with
// the new target. Run with -benchtime 200x for the README's figures.
func BenchmarkFleetPropagation(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := etcdtest.Start(b, 3)
	o := newOrigins(b)
	nodes := startFleet(b, ctx, c, 3, o, true)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	answers := func(url, want string) bool {
		resp, err := client.Get(url + "/p")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(body) == want
	}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		target := "b"
		if i%2 == 1 {
			target = "a"
		}
		if _, err := nodes[i%3].svc.Apply(ctx, o.flip(i), "bench.yaml", "bench", ""); err != nil {
			b.Fatal(err)
		}
		applied := time.Now()
		for _, n := range nodes {
			for deadline := applied.Add(30 * time.Second); !answers(n.public, target); {
				if time.Now().After(deadline) {
					b.Fatalf("apply %d: %s does not serve %s after 30 s", i, n.name, target)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		ds = append(ds, time.Since(applied))
	}
	b.StopTimer()
	reportQuantiles(b, ds, "all-serve")
}

// BenchmarkApplyWait: from an apply on one node until every node of the
// fleet has acknowledged it in the store (what `apply --wait` waits for):
// one node on the embedded bolt store, three on a three-member etcd.
func BenchmarkApplyWait(b *testing.B) {
	o := newOrigins(b)
	run := func(b *testing.B, nodes []*fleetNode) {
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			d, err := nodes[i%len(nodes)].svc.Apply(ctx, o.flip(i), "bench.yaml", "bench", "")
			if err != nil {
				b.Fatal(err)
			}
			allAcked(b, nodes[0].st, d.ID, len(nodes))
		}
	}
	b.Run("bolt", func(b *testing.B) {
		run(b, []*fleetNode{boltNode(b, o, false)})
	})
	b.Run("etcd", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		run(b, startFleet(b, ctx, etcdtest.Start(b, 3), 3, o, false))
	})
}

// BenchmarkFleet50: fifty nodes — fifty independent etcd sessions in this
// process, each running a node's watch, compile, swap and ack loop on its
// own gateway (no listeners) — on a three-member etcd cluster. Each
// iteration applies on node 1 and times until all fifty have acknowledged
// the deployment; the etcd members' CPU time per apply is read from /proc.
// Every apply is one watch event to each of the fifty watchers and fifty
// ack writes.
func BenchmarkFleet50(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := etcdtest.Start(b, 3)
	o := newOrigins(b)
	nodes := startFleet(b, ctx, c, 50, o, false)
	etcdCPU := func() time.Duration {
		var sum time.Duration
		for i := range 3 {
			sum += procCPU(c.Member(i).Pid())
		}
		return sum
	}
	ds := make([]time.Duration, 0, b.N)
	cpu0 := etcdCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		d, err := nodes[0].svc.Apply(ctx, o.flip(i), "bench.yaml", "bench", "")
		if err != nil {
			b.Fatal(err)
		}
		allAcked(b, nodes[0].st, d.ID, len(nodes))
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	reportQuantiles(b, ds, "all-acked")
	b.ReportMetric(float64((etcdCPU()-cpu0).Microseconds())/1000/float64(b.N), "etcd-cpu-ms/apply")
}

// BenchmarkDataPlaneStore: requests through a node's data plane with the
// embedded bolt store and with an etcd store: the request path never
// touches the store, so the two must not differ.
func BenchmarkDataPlaneStore(b *testing.B) {
	o := newOrigins(b)
	run := func(b *testing.B, n *fleetNode) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(n.public + "/p")
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	b.Run("bolt", func(b *testing.B) {
		run(b, boltNode(b, o, true))
	})
	b.Run("etcd", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		run(b, startFleet(b, ctx, etcdtest.Start(b, 3), 1, o, true)[0])
	})
}

// procCPU is the user and system CPU time process pid has used (0 for a
// process that is gone).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}
