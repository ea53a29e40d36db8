package admin

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/dashboard"
	"github.com/turnout/turnout/internal/traffic"
)

// send makes one request with extra headers and an optional Host.
func (f *fixture) send(t *testing.T, method, path, host string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

// TestCrossSiteRefused: a page on another site cannot make a signed-in
// browser mutate anything, whichever headers its browser sends; the same
// request from the dashboard itself, or from the CLI, goes through.
func TestCrossSiteRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.request(t, "POST", "/api/v1/deployments", adminToken, ApplyRequest{Config: v2, Message: "second"})
	before := f.activeID(t)
	host := strings.TrimPrefix(f.srv.URL, "http://")

	for name, hdr := range map[string]map[string]string{
		"modern browser": {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
		"same-site":      {"Origin": "http://other.localhost:1234", "Sec-Fetch-Site": "same-site"},
		"old browser":    {"Origin": "https://evil.example"},
	} {
		for _, path := range []string{"/api/v1/rollback", "/api/v1/routes/off", "/api/v1/deployments"} {
			resp, body := f.send(t, "POST", path, "", hdr, `{"to":1,"match":"GET /user/{id}","config":"routes: []"}`)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cross-site request refused") {
				t.Errorf("%s POST %s: %d %s, want 403 cross-site request refused", name, path, resp.StatusCode, body)
			}
		}
	}
	if got := f.activeID(t); got != before {
		t.Fatalf("a refused cross-site request changed the active deployment: %d → %d", before, got)
	}
	// Reads stay open to cross-site GETs only in the sense that CORS keeps
	// their answers from the page; the token is still required.
	if resp, _ := f.send(t, "GET", "/api/v1/status", "", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, ""); resp.StatusCode != 200 {
		t.Errorf("cross-site GET status: %d", resp.StatusCode)
	}

	// The dashboard: same origin.
	resp, body := f.send(t, "POST", "/api/v1/rollback", "", map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, `{}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("same-origin rollback: %d %s", resp.StatusCode, body)
	}
	// An old browser on the same origin: Origin matches Host.
	resp, body = f.send(t, "POST", "/api/v1/rollback", "", map[string]string{"Origin": "http://" + host}, `{}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("same-origin rollback without Sec-Fetch-Site: %d %s", resp.StatusCode, body)
	}
	// The CLI: no Origin, no Sec-Fetch-Site.
	c := &Client{BaseURL: f.srv.URL, Token: deployerToken}
	d, err := c.Rollback(context.Background(), 0, "from the CLI")
	if err != nil {
		t.Fatalf("CLI rollback: %v", err)
	}
	if got := f.activeID(t); got != d.ID || got != before+3 {
		t.Fatalf("active %d after three accepted rollbacks from %d (last %d)", got, before, d.ID)
	}
}

// TestHostCheck: DNS rebinding makes a hostile name resolve to loopback;
// its requests carry that name in Host and are refused before anything
// else runs.
func TestHostCheck(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Hosts = []string{"Admin.Internal.", "ops.example:8443"}
		o.Listen = "turnout-admin.lan:8081"
	})
	before := f.activeID(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(f.srv.URL, "http://"), ":")

	refused := []string{"evil.example", "evil.example:" + port, "localhost.evil.example", "127.0.0.1.nip.io:" + port, "admin.internal.evil.example"}
	for _, h := range refused {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/api/v1/status", ""},
			{"POST", "/api/v1/rollback", `{}`},
			{"GET", "/ui/", ""},
			{"GET", "/healthz", ""},
		} {
			resp, body := f.send(t, c.method, c.path, h, nil, c.body)
			if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, "admin.hosts") {
				t.Errorf("Host %s: %s %s → %d %s, want 421 naming admin.hosts", h, c.method, c.path, resp.StatusCode, body)
			}
		}
	}
	if got := f.activeID(t); got != before {
		t.Fatalf("a refused Host changed the active deployment: %d → %d", before, got)
	}

	allowed := []string{"127.0.0.1:" + port, "127.9.8.7", "localhost:" + port, "LOCALHOST", "dash.localhost:" + port,
		"[::1]:" + port, "10.0.0.5:8081", "admin.internal:" + port, "admin.internal", "ops.example", "turnout-admin.lan:8081"}
	for _, h := range allowed {
		if resp, body := f.send(t, "GET", "/api/v1/status", h, nil, ""); resp.StatusCode != 200 {
			t.Errorf("Host %s: %d %s, want 200", h, resp.StatusCode, body)
		}
	}
	if resp, body := f.send(t, "POST", "/api/v1/routes/off", "localhost:"+port, nil, `{"match":"GET /user/{id}"}`); resp.StatusCode != http.StatusCreated {
		t.Errorf("route off with Host localhost: %d %s", resp.StatusCode, body)
	}
}

func TestDashboardRoutes(t *testing.T) {
	live := dashboard.NewLive(0)
	table := traffic.NewTable(traffic.Options{})
	f := newFixture(t, func(o *Options) {
		o.Live = live
		o.Traffic = table
	})
	// / redirects to the UI; the UI needs no token.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d Location %q, want 302 /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := f.request(t, "GET", "/ui/", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "turnout") {
		t.Errorf("GET /ui/: %d", resp.StatusCode)
	}

	now := time.Now()
	for i := range 5 {
		o := &turnout.Observation{Time: now.Add(-2 * time.Second), Method: "GET", Host: "api.example.com", Path: "/user/" + string(rune('1'+i)),
			Route: "GET /user/{id}", Target: "function:user", Outcome: turnout.Served, Status: 200, Duration: time.Millisecond, RequestBytes: -1}
		live.Observe(o)
		table.Observe(o)
	}
	table.Observe(&turnout.Observation{Time: now, Method: "GET", Host: "api.example.com", Path: "/search", RawQuery: "ids=1;2",
		Route: "/", Target: "origin:legacy", Outcome: turnout.Served, Status: 200, RequestBytes: -1})

	resp, body = f.request(t, "GET", "/api/v1/live?since=0", viewerToken, nil)
	var pts dashboard.Points
	if resp.StatusCode != 200 || json.Unmarshal(body, &pts) != nil {
		t.Fatalf("live: %d %s", resp.StatusCode, body)
	}
	if len(pts.Routes) != 1 || pts.Routes[0].Route != "GET /user/{id}" || pts.Routes[0].Total != 5 {
		t.Errorf("live routes = %+v, want GET /user/{id} with 5 requests", pts.Routes)
	}

	c := &Client{BaseURL: f.srv.URL, Token: viewerToken}
	rep, err := c.Traffic(context.Background(), traffic.Query{Sort: "calls", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Calls != 5 || !strings.Contains(rep.Rows[0].Template, "{") {
		t.Fatalf("traffic rows = %+v, want the /user/{…} template first with 5 calls", rep.Rows)
	}
	rep, err = c.Traffic(context.Background(), traffic.Query{Risky: true})
	if err != nil || len(rep.Rows) != 1 || rep.Rows[0].Template != "/search" {
		t.Errorf("risky rows = %+v, %v; want /search (';' in the query)", rep.Rows, err)
	}
	rep, err = c.Traffic(context.Background(), traffic.Query{UnusedFor: time.Hour})
	if err != nil || len(rep.Rows) != 0 {
		t.Errorf("unused for 1h: %+v, %v; want none", rep.Rows, err)
	}

	for _, q := range []string{"sort=nope", "limit=-1", "limit=x", "unused_for=soon", "unused_for=-1h", "risky=maybe"} {
		resp, body := f.request(t, "GET", "/api/v1/traffic?"+q, viewerToken, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "error") {
			t.Errorf("traffic?%s: %d %s, want 400", q, resp.StatusCode, body)
		}
	}
	for _, q := range []string{"since=x", "since=-5", "since=99999999999999999"} {
		if resp, body := f.request(t, "GET", "/api/v1/live?"+q, viewerToken, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("live?%s: %d %s, want 400", q, resp.StatusCode, body)
		}
	}
}

// FuzzHostAllowed: no Host value panics, and every accepted one is an IP
// literal, a localhost name or a configured name, with or without a port.
func FuzzHostAllowed(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8081", "[::1]:1", "localhost", "a.localhost:9", "evil.example", "admin.internal.", "[", ":80", "", "127.0.0.1.nip.io", "[fe80::1%eth0]:80"} {
		f.Add(s)
	}
	s := &Server{hosts: allowedHosts("turnout-admin.lan:8081", []string{"admin.internal"})}
	f.Fuzz(func(t *testing.T, host string) {
		if !s.hostAllowed(host) {
			return
		}
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
		if _, err := netip.ParseAddr(h); err == nil {
			return
		}
		if h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "admin.internal" || h == "turnout-admin.lan" {
			return
		}
		t.Fatalf("Host %q accepted", host)
	})
}
