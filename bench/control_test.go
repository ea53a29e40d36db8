package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/gateway"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/store/bolt"
)

const token = "bench-token"

// node is one turnout assembled in-process the way `turnout serve` wires it:
// bolt store, gateway, deploy service and admin API, on loopback sockets.
type node struct {
	gw     *gateway.Gateway
	svc    *deploy.Service
	client *admin.Client
	public string
	a, b   string // origin URLs answering "a" and "b"
}

func newNode(tb testing.TB) *node {
	tb.Helper()
	quiet := slog.New(slog.DiscardHandler)
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "turnout.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	gw := gateway.New(gateway.Options{Metrics: metrics.New(), Logger: quiet, RetireGrace: 10 * time.Millisecond})
	svc := &deploy.Service{Store: st, Activate: func(_ context.Context, d deploy.Deployment, c *config.Config) error {
		return gw.Apply(d.ID, c)
	}}
	sum := sha256.Sum256([]byte(token))
	adm, err := admin.New(admin.Options{Service: svc, Store: st, Logger: quiet,
		Tokens: []config.Token{{Name: "bench", Role: "admin", SHA256: hex.EncodeToString(sum[:])}}})
	if err != nil {
		tb.Fatal(err)
	}
	as := httptest.NewServer(adm.Handler())
	ps := httptest.NewServer(gw)
	oa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	ob := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") }))
	tb.Cleanup(func() { ps.Close(); as.Close(); oa.Close(); ob.Close(); gw.Close() })
	return &node{gw: gw, svc: svc, public: ps.URL, a: oa.URL, b: ob.URL,
		client: &admin.Client{BaseURL: as.URL, Token: token, HTTP: &http.Client{}}}
}

func (n *node) config(target string) string {
	return fmt.Sprintf("origins:\n  a: {url: %s}\n  b: {url: %s}\nroutes:\n  - {match: \"GET /user/{id}\", origin: %s, fallback: a}\n  - {match: /, origin: a}\n", n.a, n.b, target)
}

// visible measures, after a control-plane call returns, how long until the
// first request is answered by want.
func visible(tb testing.TB, c *http.Client, url, want string) time.Duration {
	start := time.Now()
	for i := 0; i < 1000; i++ {
		resp, err := c.Get(url)
		if err != nil {
			tb.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == want {
			return time.Since(start)
		}
	}
	tb.Fatalf("%s never served by %q", url, want)
	return 0
}

func report(b *testing.B, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(ds)), "µs-visible-mean")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds()), "µs-visible-max")
}

// BenchmarkSwitchVisible: admin API apply returns → first request served by
// the new table (target ≤ 10 ms). The op is the apply (fsync included).
func BenchmarkSwitchVisible(b *testing.B) {
	n := newNode(b)
	ctx := context.Background()
	c := &http.Client{}
	var ds []time.Duration
	for i := 0; i < b.N; i++ {
		target := []string{"b", "a"}[i%2]
		if _, err := n.client.Apply(ctx, admin.ApplyRequest{Config: n.config(target), Message: "bench"}); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, visible(b, c, n.public+"/user/1", target))
	}
	report(b, ds)
}

// BenchmarkRollbackVisible: `turnout rollback` and `route off`, as API calls,
// until the first request goes to the legacy origin.
func BenchmarkRollbackVisible(b *testing.B) {
	n := newNode(b)
	ctx := context.Background()
	c := &http.Client{}
	if _, err := n.client.Apply(ctx, admin.ApplyRequest{Config: n.config("a"), Message: "start"}); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for i := 0; i < b.N; i++ {
		if _, err := n.client.Apply(ctx, admin.ApplyRequest{Config: n.config("b"), Message: "move"}); err != nil {
			b.Fatal(err)
		}
		visible(b, c, n.public+"/user/1", "b")
		var err error
		if i%2 == 0 {
			_, err = n.client.Rollback(ctx, 0, "bench rollback")
		} else {
			_, err = n.client.RouteOff(ctx, "GET /user/{id}", "bench route off")
		}
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, visible(b, c, n.public+"/user/1", "a"))
	}
	report(b, ds)
}

// BenchmarkApply10kRoutes: validate, store (fsync) and swap in a config of
// 10,000 routes through deploy.Service, as `turnout apply` does (target ≤ 200 ms).
func BenchmarkApply10kRoutes(b *testing.B) {
	n := newNode(b)
	var sb strings.Builder
	fmt.Fprintf(&sb, "origins:\n  a: {url: %s}\n  b: {url: %s}\nroutes:\n", n.a, n.b)
	for i := 0; i < 2500; i++ {
		fmt.Fprintf(&sb, "  - {match: \"GET /svc%d/items\", origin: b}\n  - {match: \"GET /svc%d/items/{id}\", origin: b}\n", i, i)
		fmt.Fprintf(&sb, "  - {match: \"GET /svc%d/items/{id}/history\", origin: b}\n  - {match: \"POST /svc%d/items\", origin: b}\n", i, i)
	}
	// Two configs that differ in the catch-all's origin, applied in turn:
	// applying the active config again stores nothing.
	srcs := [][]byte{[]byte(sb.String() + "  - {match: /, origin: a}\n"), []byte(sb.String() + "  - {match: /, origin: b}\n")}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.svc.Apply(ctx, srcs[i%2], "bench.yaml", "bench", "10k routes"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if t := n.gw.Active(); t == nil || len(t.Config.Routes) != 10001 {
		b.Fatal("10k table not active")
	}
}
