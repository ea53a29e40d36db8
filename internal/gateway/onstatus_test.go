package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestFallbackOnStatusSlowBody: a primary answer held back for
// fallback_on_status whose body arrives in pieces is dropped whole. (When
// the gateway learned the status by intercepting writes, the first flush
// of the dropped body reached the client's connection and sent a 200 head
// before the fallback answered.)
func TestFallbackOnStatusSlowBody(t *testing.T) {
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.Header().Set("X-Primary", "yes")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "down ")
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "down.")
	}))
	defer primary.Close()
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "legacy")
	}))
	defer legacy.Close()
	h := newHarness(t, withLegacy(legacy.URL, []string{"primary", primary.URL},
		`{match: "/", origin: primary, fallback: legacy, fallback_on_status: [503]}`))
	for range 3 {
		resp, err := http.Get("http://" + h.addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "legacy" || resp.Header.Get("X-Primary") != "" ||
			resp.Header.Get("X-Turnout-Served-By") != "origin:legacy; fallback=status" {
			t.Fatalf("%d %q, X-Primary %q, served by %q; want 200 \"legacy\" from the fallback",
				resp.StatusCode, b, resp.Header.Get("X-Primary"), resp.Header.Get("X-Turnout-Served-By"))
		}
	}
}
