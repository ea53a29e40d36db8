package origin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/testkit"
)

func TestNewPoolRejects(t *testing.T) {
	tests := []struct {
		name string
		o    config.Origin
		want string
	}{
		{"no urls", config.Origin{Name: "x"}, "no urls"},
		{"scheme", config.Origin{Name: "x", URLs: []string{"ftp://h"}}, "scheme"},
		{"query", config.Origin{Name: "x", URLs: []string{"http://h/?a=1"}}, "without user, query"},
		{"fragment", config.Origin{Name: "x", URLs: []string{"http://h/#f"}}, "without user, query"},
		{"host header", config.Origin{Name: "x", URLs: []string{"http://h"}, HostHeader: "backend"}, "host_header"},
		{"expect status", config.Origin{Name: "x", URLs: []string{"http://h"},
			HealthCheck: config.HealthCheck{Path: "/h", ExpectStatus: "2xx"}}, "expect_status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPool(tt.o, Options{})
			if err == nil {
				p.Close()
				t.Fatalf("NewPool succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseStatusRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"", 200, 399, true},
		{"200-299", 200, 299, true},
		{"204", 204, 204, true},
		{" 200 - 204 ", 200, 204, true},
		{"300-200", 0, 0, false},
		{"99", 0, 0, false},
		{"200-1000", 0, 0, false},
		{"abc", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, err := parseStatusRange(tt.in)
		if (err == nil) != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("parseStatusRange(%q) = %d, %d, %v; want %d, %d, ok=%v", tt.in, lo, hi, err, tt.lo, tt.hi, tt.ok)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var urls []string
			for i := 0; i < n; i++ {
				id := fmt.Sprint(i)
				urls = append(urls, origin(t, func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprint(w, id)
				}).URL)
			}
			p := newTestPool(t, config.Origin{}, Options{}, urls...)
			f := front(t, p)
			var seq []string
			counts := map[string]int{}
			for i := 0; i < 3*n; i++ {
				_, body := get(t, f.URL+"/")
				seq = append(seq, body)
				counts[body]++
			}
			for i := 0; i < n; i++ {
				if counts[fmt.Sprint(i)] != 3 {
					t.Fatalf("counts %v over %d requests, want 3 each (sequence %v)", counts, 3*n, seq)
				}
			}
			for i := n; i < len(seq); i++ {
				if seq[i] != seq[i-n] {
					t.Fatalf("sequence %v is not a rotation", seq)
				}
			}
		})
	}
}

func TestPassiveEjectionAndRecovery(t *testing.T) {
	good := origin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "good") })
	bad := testkit.RefusedURL(t)
	p := newTestPool(t, config.Origin{
		Passive: config.Passive{MaxConnectFailures: 2, EjectFor: dur(300 * time.Millisecond)},
	}, Options{}, good.URL, bad)
	f := front(t, p)

	// Until the bad instance has failed twice it is still picked.
	failures := 0
	for i := 0; i < 6 && failures < 2; i++ {
		resp, _ := get(t, f.URL+"/")
		if resp.StatusCode == http.StatusBadGateway {
			if k := resp.Header.Get("X-Error-Kind"); k != "connect" {
				t.Fatalf("error kind %q, want connect", k)
			}
			failures++
		}
	}
	if failures != 2 {
		t.Fatalf("saw %d connect failures, want 2 before ejection", failures)
	}
	st := p.Instances()[1]
	if !st.Ejected || st.ConsecutiveFailures != 2 || st.LastError == "" {
		t.Fatalf("bad instance status %+v, want ejected after 2 failures", st)
	}
	// Ejected: every request goes to the good instance.
	for i := 0; i < 10; i++ {
		if resp, body := get(t, f.URL+"/"); resp.StatusCode != 200 || body != "good" {
			t.Fatalf("request %d while ejected: %d %q", i, resp.StatusCode, body)
		}
	}

	// The instance comes back: listen on its address again.
	ln, err := net.Listen("tcp", strings.TrimPrefix(bad, "http://"))
	if err != nil {
		t.Skipf("cannot rebind %s: %v", bad, err)
	}
	back := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "back") })}
	go back.Serve(ln)
	defer back.Close()

	testkit.Eventually(t, 2*time.Second, "the instance to serve again", func() bool {
		_, body := get(t, f.URL+"/")
		return body == "back"
	})
	st = p.Instances()[1]
	if st.Ejected || st.ConsecutiveFailures != 0 {
		t.Fatalf("recovered instance status %+v, want not ejected, 0 failures", st)
	}
}

func TestPassiveEjectionDisabled(t *testing.T) {
	p := newTestPool(t, config.Origin{Passive: config.Passive{MaxConnectFailures: -1}}, Options{}, testkit.RefusedURL(t))
	for i := 0; i < 5; i++ {
		rec := httptest.NewRecorder()
		p.Forward(rec, httptest.NewRequest("GET", "/", nil))
	}
	if st := p.Instances()[0]; st.Ejected || st.ConsecutiveFailures != 5 {
		t.Fatalf("status %+v, want 5 failures and no ejection", st)
	}
}

func TestAllDownStillTried(t *testing.T) {
	// Both instances fail their health checks, but the API works: requests
	// still go through (see pick).
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(500)
			return
		}
		fmt.Fprint(w, "ok")
	}
	a, b := origin(t, h), origin(t, h)
	p := newTestPool(t, config.Origin{HealthCheck: config.HealthCheck{
		Path: "/healthz", Interval: dur(10 * time.Millisecond), UnhealthyThreshold: 1,
	}}, Options{}, a.URL, b.URL)
	testkit.Eventually(t, 2*time.Second, "both instances unhealthy", func() bool {
		st := p.Instances()
		return !st[0].Healthy && !st[1].Healthy
	})
	f := front(t, p)
	if resp, body := get(t, f.URL+"/x"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("all-unhealthy pool answered %d %q, want 200 ok", resp.StatusCode, body)
	}
}

func TestActiveHealthCheck(t *testing.T) {
	tests := []struct {
		name                 string
		healthy, unhealthy   int
		expect               string
		goodCode, badCode    int
		wantChecksToUnhealth int
	}{
		{"defaults range", 2, 3, "", 204, 503, 3},
		{"custom range", 1, 2, "200-200", 200, 204, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code atomic.Int32
			code.Store(int32(tt.goodCode))
			var checks atomic.Int32
			o := origin(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/base/healthz" {
					checks.Add(1)
					w.WriteHeader(int(code.Load()))
					return
				}
				fmt.Fprint(w, "served")
			})
			other := origin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "other") })
			p := newTestPool(t, config.Origin{HealthCheck: config.HealthCheck{
				Path: "/healthz", Interval: dur(15 * time.Millisecond), Timeout: dur(time.Second),
				HealthyThreshold: tt.healthy, UnhealthyThreshold: tt.unhealthy, ExpectStatus: tt.expect,
			}}, Options{}, o.URL+"/base", other.URL)
			testkit.Eventually(t, 2*time.Second, "a first check", func() bool { return !p.Instances()[0].LastCheck.IsZero() })
			if !p.Instances()[0].Healthy {
				t.Fatal("instance unhealthy while its check passes")
			}

			code.Store(int32(tt.badCode))
			before := checks.Load()
			testkit.Eventually(t, 2*time.Second, "unhealthy", func() bool { return !p.Instances()[0].Healthy })
			if n := checks.Load() - before; n < int32(tt.wantChecksToUnhealth) {
				t.Fatalf("unhealthy after %d failed checks, want at least %d", n, tt.wantChecksToUnhealth)
			}
			if st := p.Instances()[0]; !strings.Contains(st.LastError, fmt.Sprint(tt.badCode)) {
				t.Fatalf("LastError %q does not mention status %d", st.LastError, tt.badCode)
			}
			// Traffic avoids the unhealthy instance.
			f := front(t, p)
			for i := 0; i < 4; i++ {
				if _, body := get(t, f.URL+"/"); body != "other" {
					t.Fatalf("request went to the unhealthy instance (%q)", body)
				}
			}

			code.Store(int32(tt.goodCode))
			before = checks.Load()
			testkit.Eventually(t, 2*time.Second, "healthy again", func() bool { return p.Instances()[0].Healthy })
			if n := checks.Load() - before; n < int32(tt.healthy) {
				t.Fatalf("healthy after %d passing checks, want at least %d", n, tt.healthy)
			}
		})
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	a := origin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "a") })
	b := origin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "b") })
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	time.Sleep(20 * time.Millisecond)
	before := runtime.NumGoroutine()

	p, err := NewPool(config.Origin{Name: "x", URLs: []string{a.URL, b.URL},
		HealthCheck: config.HealthCheck{Path: "/", Interval: dur(5 * time.Millisecond)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		rec := httptest.NewRecorder()
		if err := p.Forward(rec, httptest.NewRequest("GET", "/", nil)); err != nil {
			t.Fatal(err)
		}
	}
	during := runtime.NumGoroutine()
	if during < before+2 {
		t.Fatalf("%d goroutines with health checks running, %d before: checks not running?", during, before)
	}
	p.Close()
	testkit.Eventually(t, 2*time.Second, fmt.Sprintf("goroutines back to %d", before), func() bool {
		return runtime.NumGoroutine() <= before
	})
}

func TestCloseLetsInFlightFinish(t *testing.T) {
	release := make(chan struct{})
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, "done")
	})
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	errc := make(chan error, 1)
	rec := httptest.NewRecorder()
	go func() { errc <- p.Forward(rec, httptest.NewRequest("GET", "/", nil)) }()
	time.Sleep(30 * time.Millisecond)
	p.Close()
	close(release)
	if err := <-errc; err != nil || rec.Body.String() != "done" {
		t.Fatalf("in-flight Forward after Close: %v %q", err, rec.Body.String())
	}
	// Forward still works after Close, without pooling.
	rec = httptest.NewRecorder()
	if err := p.Forward(rec, httptest.NewRequest("GET", "/", nil)); err != nil || rec.Body.String() != "done" {
		t.Fatalf("Forward after Close: %v %q", err, rec.Body.String())
	}
	if n := len(p.instances[0].idle); n != 0 {
		t.Fatalf("%d idle conns pooled after Close", n)
	}
}

func TestConnectRefusedIsFast(t *testing.T) {
	p := newTestPool(t, config.Origin{}, Options{}, testkit.RefusedURL(t))
	start := time.Now()
	err := p.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	elapsed := time.Since(start)
	var oe *Error
	if !errors.As(err, &oe) || oe.Kind != KindConnect || oe.StatusCode() != 502 {
		t.Fatalf("err = %v, want *Error KindConnect (502)", err)
	}
	// A refusal is answered at once; only a dial timeout (2s) would take
	// a second or more.
	if elapsed > time.Second {
		t.Fatalf("refused connection took %v, want well under the 2s dial timeout", elapsed)
	}
}

func TestCanceledContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	o := origin(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := p.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	var oe *Error
	if !errors.As(err, &oe) || oe.Kind != KindTimeout || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want KindTimeout wrapping context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancellation took %v to end the exchange", d)
	}
}

// TestKey: the pool key ignores where an origin was written (each
// deployment is parsed under a file name of its own) and changes with
// everything a pool is built from.
func TestKey(t *testing.T) {
	const base = `origins:
  legacy:
    urls: [http://127.0.0.1:8080]
    timeouts: {dial: 1s}
routes:
  - {match: /, origin: legacy}
`
	key := func(file, yaml string, trusted ...string) string {
		t.Helper()
		cfg, err := config.Parse(file, []byte(yaml))
		if err != nil {
			t.Fatalf("parse %s: %v", file, err)
		}
		return Key(cfg.Origins[0], Options{TrustedProxies: mustPrefixes(t, trusted...)})
	}
	k := key("deployment-1.yaml", base)
	if k2 := key("deployment-2.yaml", "# moved down a line\n"+base); k2 != k {
		t.Fatalf("the same origin at another position has another key:\n%s\n%s", k, k2)
	}
	for _, tc := range []struct{ what, old, new string }{
		{"an instance", "8080]", "8081]"},
		{"a timeout", "dial: 1s", "dial: 2s"},
		{"the name", "legacy:", "legacy2:"},
		{"health checks", "timeouts: {dial: 1s}", "timeouts: {dial: 1s}\n    health_check: {path: /h}"},
		{"the idle limit", "timeouts: {dial: 1s}", "timeouts: {dial: 1s}\n    max_idle_conns: 3"},
	} {
		changed := strings.Replace(base, tc.old, tc.new, 1)
		changed = strings.Replace(changed, "origin: legacy}", "origin: "+strings.TrimSuffix(strings.Fields(strings.Split(changed, "\n")[1])[0], ":")+"}", 1)
		if key("deployment-3.yaml", changed) == k {
			t.Errorf("changing %s keeps the key", tc.what)
		}
	}
	if key("deployment-4.yaml", base, "10.0.0.0/8") == k {
		t.Error("changing the trusted proxies keeps the key")
	}
}
