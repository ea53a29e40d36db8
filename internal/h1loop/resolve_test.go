//go:build linux

package h1loop

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/origin"
	"github.com/turnout/turnout/internal/origin/origintest"
	"github.com/turnout/turnout/internal/testkit"
)

// An origin named by a host name is served by the loops once the name
// resolved, which the pool does when it is made: no request is handed
// over after that, and the name is asked once.
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
	r := newRigOpts(t, "http://"+name+":"+port, origin.Options{Resolver: dns.Resolver()}, nil)

	// A new connection per request: one handed over stays with the
	// goroutine server.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://" + r.addr
	// The pool looked the name up when it was made.
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
