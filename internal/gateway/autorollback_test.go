package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/testkit"
)

// TestAutoRollbackMaxP99: a route whose primary answers slower than its
// max_p99 — an origin or a hosted function, both answering 200 — is rolled
// back with a p99 cause; a route under its max_p99 is not.
func TestAutoRollbackMaxP99(t *testing.T) {
	slowOrigin := func(d time.Duration) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(d)
			io.WriteString(w, "ok")
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	dir := testkit.BuildFunctions(t, "sleep")
	host, err := fnhost.New(fnhost.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	legacy := newOrigin(t, "legacy")
	// A 2 s window: the check, once a second, sees the last two seconds.
	h := newHarnessWith(t, Options{Functions: &invoke.Router{Hosted: host}}, fmt.Sprintf(`
legacy: legacy
origins:
  legacy: {url: %s}
  slow: {url: %s}
  quick: {url: %s}
functions:
  slowfn: {handler: %[4]s, env: {SLEEP_MS: "300"}}
  quickfn: {handler: %[4]s}
routes:
  - match: "GET /slow"
    origin: slow
    auto_rollback: {max_p99: 100ms, window: 2s, min_requests: 3}
  - match: "GET /quick"
    origin: quick
    auto_rollback: {max_p99: 100ms, window: 2s, min_requests: 3}
  - match: "GET /slowfn"
    function: slowfn
    auto_rollback: {max_p99: 100ms, window: 2s, min_requests: 3}
  - match: "GET /quickfn"
    function: quickfn
    # Generous: the quick function's first request starts its process.
    auto_rollback: {max_p99: 5s, window: 2s, min_requests: 3}
  - {match: /, origin: legacy}
`, legacy.srv.URL, slowOrigin(300*time.Millisecond), slowOrigin(0), filepath.Join(dir, "sleep")))

	var mu sync.Mutex
	causes := map[string]string{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.gw.RunAutoRollback(ctx, func(_ context.Context, match, reason string) error {
			mu.Lock()
			causes[match] = reason
			mu.Unlock()
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	rolledBack := func(match string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		c, ok := causes[match]
		return c, ok
	}

	// Every route gets steady traffic until both slow routes are rolled
	// back: the quick ones are judged on the same ticks, on more requests.
	paths := []string{"/slow", "/quick", "/slowfn", "/quickfn"}
	client := &http.Client{Timeout: 10 * time.Second}
	stop := testkit.Load(len(paths), func(i int) bool {
		path := paths[i]
		resp, err := client.Get("http://" + h.addr + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
			return false
		}
		return true
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		_, slow := rolledBack("GET /slow")
		_, slowfn := rolledBack("GET /slowfn")
		if slow && slowfn {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// One more tick of traffic for the quick routes.
	time.Sleep(1100 * time.Millisecond)
	stop()

	for _, match := range []string{"GET /slow", "GET /slowfn"} {
		cause, ok := rolledBack(match)
		if !ok {
			t.Errorf("%s answers in 300 ms, over its max_p99 of 100 ms, and was not rolled back", match)
			continue
		}
		if !strings.HasPrefix(cause, "p99 ") || !strings.Contains(cause, "> 100ms over 2s") {
			t.Errorf("%s rolled back because %q, want a p99 over 100ms cause", match, cause)
		}
	}
	for _, match := range []string{"GET /quick", "GET /quickfn"} {
		if cause, ok := rolledBack(match); ok {
			t.Errorf("%s is under its max_p99 and was rolled back: %s", match, cause)
		}
	}
}
