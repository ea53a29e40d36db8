//go:build linux

package h1loop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/origin"
	"github.com/turnout/turnout/internal/origin/origintest"
	"github.com/turnout/turnout/internal/testkit"
)

// newRigOpts is newRig with the pool's options given (newRig's pool has
// none).
func newRigOpts(t testing.TB, originURL string, opts origin.Options) *rig {
	t.Helper()
	r := &rig{t: t, endc: make(chan ended, 1024)}
	srv := &Server{
		ReadHeaderTimeout: 2 * time.Second,
		IdleTimeout:       5 * time.Second,
		Loops:             2,
	}
	srv.Fallback = &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.fellTo.Add(1)
		io.Copy(io.Discard, req.Body)
		fmt.Fprintf(w, "fallback %s %s", req.Method, req.URL.Path)
	})}
	pool, err := origin.NewPool(config.Origin{Name: "legacy", URLs: []string{originURL}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	r.pool = pool
	srv.Route = func(req *h1.Request, remote string) (Exchange, bool) {
		w, ok := pool.PickWire()
		if !ok {
			return nil, false
		}
		path, q, _ := strings.Cut(string(req.Target), "?")
		r.routed.Add(1)
		return &testExchange{r: r, w: w, path: path, q: []byte(q), id: "id-" + strconv.FormatInt(r.routed.Load(), 10)}, true
	}
	r.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		ln.Close()
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	r.addr = ln.Addr().String()
	return r
}

// An origin named by a host name is served by the loops once the name
// resolved; before, its requests are handed over.
func TestServesNamedOrigin(t *testing.T) {
	const name = "legacy.turnout.test"
	dns, err := origintest.StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	dns.Set(name, netip.MustParseAddr("127.0.0.1"))
	o := testOrigin(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(o.URL, "http://"))
	r := newRigOpts(t, "http://"+name+":"+port, origin.Options{Resolver: dns.Resolver()})

	// A new connection per request: one handed over stays with the
	// goroutine server.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://" + r.addr
	// The first request finds no address yet: handed over, and the
	// lookup starts.
	if _, body := get(t, c, base+"/len/5"); body != "fallback GET /len/5" {
		t.Fatalf("before the lookup: %q", body)
	}
	testkit.Eventually(t, 5*time.Second, "the name resolved", func() bool {
		_, ok := r.pool.PickWire()
		return ok
	})
	fell := r.fellTo.Load()
	for range 3 {
		resp, body := get(t, c, base+"/len/5")
		if resp.StatusCode != 200 || body != "aaaaa" || resp.Header.Get("X-Origin") != "yes" {
			t.Fatalf("after the lookup: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if e := r.endFor("/len/5"); e.status != 200 || e.n != 5 || e.failure != nil {
			t.Fatalf("End: %+v", e)
		}
	}
	if n := r.fellTo.Load() - fell; n != 0 {
		t.Fatalf("%d requests handed over after the name resolved", n)
	}
	_, body := get(t, c, base+"/echo")
	if !strings.HasPrefix(body, "GET /echo host="+r.addr+" ") {
		t.Fatalf("/echo: %q", body)
	}
	if n := dns.Lookups(name); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
}
