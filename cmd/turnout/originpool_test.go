package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/admin"
)

// TestDeploymentKeepsOriginPool: an apply that leaves an origin as it was, a
// rollback and a route switch keep that origin's pool, so its keep-alive
// connections (counted as the distinct client ports the origin sees) and
// its health verdicts (an instance found down stays down) survive them.
func TestDeploymentKeepsOriginPool(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	ports := map[string]bool{} // remote addresses of forwarded requests
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			mu.Lock()
			ports[r.RemoteAddr] = true
			mu.Unlock()
		}
		fmt.Fprint(w, "legacy")
	}))
	t.Cleanup(good.Close)
	conns := func() int { mu.Lock(); defer mu.Unlock(); return len(ports) }
	// Where GET /report goes while switched off (a route already on legacy
	// has nowhere else to go); its connections are not counted.
	spare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "legacy") }))
	t.Cleanup(spare.Close)
	dead := freePort(t) // nothing listens there

	// The dead instance is found unhealthy by the first checks; a pool built
	// anew would start it healthy again and check it 200 ms later.
	body := func(extra string) string {
		return fmt.Sprintf(`origins:
  legacy:
    urls: [%s, http://%s]
    health_check: {path: /health, interval: 200ms, timeout: 100ms, unhealthy_threshold: 2}
  spare: {url: %s}
routes:
  - {match: "GET /report", origin: legacy, fallback: spare}
%s  - {match: /, origin: legacy}
`, good.URL, dead, spare.URL, extra)
	}
	cfgPath := writeNodeConfig(t, dir, "off", body(""))
	n := startNode(t, cfgPath)
	base := "http://" + n.public

	deadHealthy := func() (bool, bool) {
		_, b, err := n.api("GET", "/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		var st admin.Status
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("status: %v: %s", err, b)
		}
		for _, o := range st.Origins {
			for _, in := range o.Instances {
				if in.URL == "http://"+dead {
					return in.Healthy, true
				}
			}
		}
		return false, false
	}
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if h, ok := deadHealthy(); ok && !h {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the dead instance was not found unhealthy within 10s")
		}
	}

	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	send := func(step string) {
		t.Helper()
		for i := 0; i < 20; i++ {
			for _, path := range []string{"/", "/report"} {
				resp, err := client.Get(base + path)
				if err != nil {
					t.Fatalf("%s: GET %s: %v", step, path, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "legacy" {
					t.Fatalf("%s: GET %s: %d %q", step, path, resp.StatusCode, b)
				}
			}
		}
	}
	send("first deployment")
	// One connection from each of the two server paths: the event loops
	// forward the first GET / on their own connection, and GET /report (a
	// route with a fallback) moves the client's connection to the
	// goroutine server, whose requests go through the pool's.
	first := conns()
	if first < 1 || first > 2 {
		t.Fatalf("40 sequential requests used %d upstream connections, want one per server path", first)
	}
	check := func(step string, code int, resp *http.Response, b []byte, err error) {
		t.Helper()
		if err != nil || resp.StatusCode != code {
			t.Fatalf("%s: %v %s", step, err, b)
		}
		if h, ok := deadHealthy(); !ok || h {
			t.Errorf("after %s the dead instance is healthy=%v (listed %v): its health was forgotten", step, h, ok)
		}
		send(step)
		if c := conns(); c != first {
			t.Errorf("after %s the origin has seen %d connections, want the first %d kept", step, c, first)
		}
	}
	resp, b, err := n.api("POST", "/deployments", map[string]string{"config": body("  - {match: \"GET /unrelated\", origin: legacy}\n"), "message": "unrelated route"})
	check("an apply adding an unrelated route", http.StatusCreated, resp, b, err)
	resp, b, err = n.api("POST", "/rollback", map[string]any{"message": "back"})
	check("a rollback", http.StatusCreated, resp, b, err)
	resp, b, err = n.api("POST", "/routes/off", map[string]any{"match": "GET /report"})
	check("a route switched off", http.StatusCreated, resp, b, err)
	resp, b, err = n.api("POST", "/routes/on", map[string]any{"match": "GET /report"})
	check("a route switched on", http.StatusCreated, resp, b, err)
}
