package origin

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/origin/origintest"
	"github.com/turnout/turnout/internal/testkit"
)

// The names these tests give their origins: .test is reserved (RFC 6761),
// so no resolver but the test's knows them.
const testName = "legacy.turnout.test"

func startDNS(t testing.TB) *origintest.DNS {
	t.Helper()
	d, err := origintest.StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var loopback = netip.MustParseAddr("127.0.0.1")

// The goroutine path's dials (a request, a health check) look the
// instance's name up with the pool's resolver: no other knows it. (Their
// questions may be one: a resolver joins concurrent lookups of a name.)
func TestDialersUsePoolResolver(t *testing.T) {
	dns := startDNS(t)
	dns.Set(testName, loopback)
	var checks atomic.Int32
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			checks.Add(1)
		}
		fmt.Fprint(w, "named")
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(o.URL, "http://"))
	p := newTestPool(t, config.Origin{HealthCheck: config.HealthCheck{Path: "/health", Interval: dur(20 * time.Millisecond)}},
		Options{Resolver: dns.Resolver()}, "http://"+testName+":"+port)
	if resp, body := get(t, front(t, p).URL+"/"); resp.StatusCode != 200 || body != "named" {
		t.Fatalf("goroutine path: %d %q", resp.StatusCode, body)
	}
	testkit.Eventually(t, 5*time.Second, "a health check through the pool's resolver", func() bool {
		return checks.Load() > 0
	})
	if st := p.Instances()[0]; !st.Healthy {
		t.Errorf("instance unhealthy: %+v", st)
	}
}

// namedOrigin is an origin on loopback that answers "named", and its URL
// with the host name in place of the address.
func namedOrigin(t testing.TB) (url, port string) {
	t.Helper()
	o := origin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "named") })
	_, port, _ = net.SplitHostPort(strings.TrimPrefix(o.URL, "http://"))
	return "http://" + testName + ":" + port, port
}

// looked waits until in has a lookup's result.
func looked(t testing.TB, in *instance) *wireDest {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, "a lookup's result", func() bool {
		return in.wire.Load() != nil && !in.resolving.Load()
	})
	return in.wire.Load()
}

func TestWireResolvesName(t *testing.T) {
	dns := startDNS(t)
	dns.Set(testName, loopback)
	url, port := namedOrigin(t)
	p := newTestPool(t, config.Origin{}, Options{Resolver: dns.Resolver()}, url)

	// NewPool starts the lookup: no pick is needed for the address to come.
	looked(t, p.instances[0])
	w, ok := p.PickWire()
	if !ok || w.Addr().String() != "127.0.0.1:"+port || w.Instance() != url {
		t.Fatalf("PickWire after the lookup: ok %v, addr %v, instance %s", ok, w.Addr(), w.Instance())
	}
	if n := dns.Lookups(testName); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
	// The loop connects where Addr says.
	c, err := net.DialTimeout("tcp", w.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Its connect failures name that address, as net.Dial would.
	if e := w.Failed(WireConnect, false, syscall.ECONNREFUSED); !strings.Contains(e.Error(), "dial tcp 127.0.0.1:"+port+": connect:") {
		t.Errorf("connect failure worded %q", e)
	}
	w.Connected()

	// The goroutine path reaches the origin by the same resolver: no
	// other knows the name.
	before := dns.Lookups(testName)
	if resp, body := get(t, front(t, p).URL+"/"); resp.StatusCode != 200 || body != "named" {
		t.Fatalf("goroutine path: %d %q", resp.StatusCode, body)
	}
	if dns.Lookups(testName) == before {
		t.Error("the goroutine path did not ask the pool's resolver")
	}
}

func TestWireNameSeveralAddresses(t *testing.T) {
	for _, addrs := range [][]netip.Addr{
		{loopback, netip.MustParseAddr("127.0.0.2")},
		{loopback, netip.MustParseAddr("::1")},
		{},
	} {
		t.Run(fmt.Sprint(addrs), func(t *testing.T) {
			dns := startDNS(t)
			dns.Set(testName, addrs...)
			url, _ := namedOrigin(t)
			p := newTestPool(t, config.Origin{}, Options{Resolver: dns.Resolver()}, url)
			p.PickWire()
			if d := looked(t, p.instances[0]); d.ok {
				t.Fatalf("lookup result usable: %+v", d)
			}
			for range 10 {
				if w, ok := p.PickWire(); ok {
					t.Fatalf("PickWire ok, addr %v", w.Addr())
				}
			}
			if n := dns.Lookups(testName); n != 1 {
				t.Errorf("%d lookups, want 1 (no retry within resolveEvery)", n)
			}
		})
	}
}

func TestWireNameAppears(t *testing.T) {
	dns := startDNS(t)
	url, port := namedOrigin(t)
	p := newTestPool(t, config.Origin{}, Options{Resolver: dns.Resolver()}, url)
	p.resolveEvery = 300 * time.Millisecond

	p.PickWire()
	if d := looked(t, p.instances[0]); d.ok {
		t.Fatalf("NXDOMAIN gave %+v", d)
	}
	dns.Set(testName, loopback)
	// Within resolveEvery of the failed lookup: no other.
	for range 20 {
		if _, ok := p.PickWire(); ok {
			t.Fatal("PickWire ok before a refresh")
		}
	}
	if n := dns.Lookups(testName); n != 1 {
		t.Fatalf("%d lookups within resolveEvery, want 1", n)
	}
	var w Wire
	testkit.Eventually(t, 5*time.Second, "the name resolving after a refresh", func() bool {
		var ok bool
		w, ok = p.PickWire()
		return ok
	})
	if w.Addr().String() != "127.0.0.1:"+port {
		t.Errorf("Addr %v", w.Addr())
	}
	if n := dns.Lookups(testName); n != 2 {
		t.Errorf("%d lookups, want 2", n)
	}
}

func TestWireNameCache(t *testing.T) {
	dns := startDNS(t)
	dns.Set(testName, loopback)
	url, _ := namedOrigin(t)
	p := newTestPool(t, config.Origin{}, Options{Resolver: dns.Resolver()}, url)
	p.resolveEvery = time.Second

	// Many picks at once, before any result: one lookup.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				p.PickWire()
			}
		})
	}
	wg.Wait()
	start := time.Now()
	looked(t, p.instances[0])
	for range 1000 {
		if _, ok := p.PickWire(); !ok {
			t.Fatal("PickWire not ok after the lookup")
		}
	}
	if time.Since(start) > p.resolveEvery/2 {
		t.Skip("too slow a machine to stay within resolveEvery")
	}
	if n := dns.Lookups(testName); n != 1 {
		t.Fatalf("%d lookups within resolveEvery, want 1", n)
	}
	// Aged: again many picks at once, one refresh.
	time.Sleep(p.resolveEvery)
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if _, ok := p.PickWire(); !ok {
					t.Error("PickWire not ok while the refresh runs")
					return
				}
			}
		})
	}
	wg.Wait()
	looked(t, p.instances[0])
	if n := dns.Lookups(testName); n != 2 {
		t.Fatalf("%d lookups after one resolveEvery, want 2", n)
	}
}

func TestWireNameStaleWhileRevalidate(t *testing.T) {
	dns := startDNS(t)
	dns.Set(testName, loopback)
	url, port := namedOrigin(t)
	p := newTestPool(t, config.Origin{Timeouts: config.OriginTimeouts{Dial: dur(400 * time.Millisecond)}},
		Options{Resolver: dns.Resolver()}, url)
	p.resolveEvery = 200 * time.Millisecond
	in := p.instances[0]
	p.PickWire()
	looked(t, in)

	// The server stops answering; the entry ages.
	dns.Hold(testName, true)
	time.Sleep(p.resolveEvery)
	asked := dns.Asked()
	w, ok := p.PickWire()
	if !ok || w.Addr().String() != "127.0.0.1:"+port {
		t.Fatalf("aged entry: ok %v addr %v, want the old address", ok, w.Addr())
	}
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh after resolveEvery")
	}
	if !in.resolving.Load() {
		t.Fatal("the refresh is not running")
	}
	// While it runs, the old address serves.
	for range 100 {
		if _, ok := p.PickWire(); !ok {
			t.Fatal("PickWire not ok while the refresh runs")
		}
	}
	// It fails at the dial timeout: off the loops.
	if d := looked(t, in); d.ok {
		t.Fatalf("a failed refresh left %+v", d)
	}
	if _, ok := p.PickWire(); ok {
		t.Fatal("PickWire ok after a failed refresh")
	}

	// The name comes back at another address.
	dns.Set(testName, netip.MustParseAddr("127.0.0.2"))
	dns.Hold(testName, false)
	testkit.Eventually(t, 5*time.Second, "the new address", func() bool {
		w, ok := p.PickWire()
		return ok && w.Addr().String() == "127.0.0.2:"+port
	})
}

func TestCloseStopsLookups(t *testing.T) {
	dns := startDNS(t)
	dns.Set(testName, loopback)
	dns.Hold(testName, true)
	url, _ := namedOrigin(t)
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	time.Sleep(20 * time.Millisecond)
	before := runtime.NumGoroutine()

	asked := dns.Asked()
	// NewPool starts the lookup.
	p, err := NewPool(config.Origin{Name: "x", URLs: []string{url}, Timeouts: config.OriginTimeouts{Dial: dur(30 * time.Second)}},
		Options{Resolver: dns.Resolver()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("no lookup")
	}
	if runtime.NumGoroutine() <= before {
		t.Fatal("no goroutine for the lookup?")
	}
	start := time.Now()
	p.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	testkit.Eventually(t, 2*time.Second, fmt.Sprintf("goroutines back to %d", before), func() bool {
		return runtime.NumGoroutine() <= before
	})
	// A closed pool looks nothing up.
	n := dns.Lookups(testName)
	p.resolveEvery = 0
	for range 10 {
		if _, ok := p.PickWire(); ok {
			t.Fatal("PickWire ok")
		}
	}
	time.Sleep(50 * time.Millisecond)
	if m := dns.Lookups(testName); m != n || runtime.NumGoroutine() > before {
		t.Errorf("after Close: %d lookups (was %d), %d goroutines (was %d)", m, n, runtime.NumGoroutine(), before)
	}
}

func TestWireTargetAndOneAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, ap, name string
		ok             bool
	}{
		{"10.0.0.1:80", "10.0.0.1:80", "", true},
		{"localhost:81", "127.0.0.1:81", "", true},
		{"LocalHost:81", "127.0.0.1:81", "", true},
		{"[::ffff:10.0.0.2]:83", "10.0.0.2:83", "", true},
		{"legacy.internal:8080", "", "legacy.internal", true},
		{"legacy:80", "", "legacy", true},
		{"[fe80::1%eth0]:80", "", "", false},
		{"legacy.internal:http", "", "", false},
		{":80", "", "", false},
	} {
		ap, name, ok := wireTarget(tc.addr)
		got := ""
		if ap.Addr().IsValid() {
			got = ap.String()
		}
		if ok != tc.ok || name != tc.name || got != tc.ap || (ok && ap.Port() == 0) {
			t.Errorf("wireTarget(%q) = %v %q %v, want %s %q %v", tc.addr, ap, name, ok, tc.ap, tc.name, tc.ok)
		}
	}
	for _, tc := range []struct {
		addrs []string
		want  string
	}{
		{[]string{"10.0.0.1"}, "10.0.0.1"},
		{[]string{"::ffff:10.0.0.1"}, "10.0.0.1"},
		{[]string{"10.0.0.1", "::ffff:10.0.0.1"}, "10.0.0.1"},
		{[]string{"2001:db8::1"}, "2001:db8::1"},
		{[]string{"10.0.0.1", "10.0.0.2"}, ""},
		{[]string{"10.0.0.1", "2001:db8::1"}, ""},
		{[]string{"fe80::1%eth0"}, ""},
		{nil, ""},
	} {
		var addrs []netip.Addr
		for _, a := range tc.addrs {
			addrs = append(addrs, netip.MustParseAddr(a))
		}
		got, why := oneAddr(addrs)
		if (why == "") != (tc.want != "") || tc.want != "" && got.String() != tc.want {
			t.Errorf("oneAddr(%v) = %v %q, want %s", tc.addrs, got, why, tc.want)
		}
	}
}
