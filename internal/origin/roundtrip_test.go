package origin

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/turnout/turnout/internal/config"
)

// TestRoundTripHeadFirst: RoundTrip hands back the status and header
// before anything reaches the client; Discard drops the answer unsent and
// still returns the connection to the pool, and Send writes it.
func TestRoundTripHeadFirst(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", "1")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "dropped")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "nope")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p, err := NewPool(config.Origin{Name: "o", URLs: []string{srv.URL}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	rec := httptest.NewRecorder()
	resp, err := p.RoundTrip(rec, httptest.NewRequest("GET", "http://example.test/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("X-A") != "1" || resp.Header.Get("X-Hop") != "" {
		t.Fatalf("head: %d %v", resp.Status, resp.Header)
	}
	if rec.Flushed || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Fatalf("RoundTrip wrote to the client: flushed %v, body %q, header %v", rec.Flushed, rec.Body, rec.Header())
	}
	resp.Discard()
	if rec.Flushed || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Fatalf("Discard wrote to the client: flushed %v, body %q, header %v", rec.Flushed, rec.Body, rec.Header())
	}

	rec = httptest.NewRecorder()
	resp, err = p.RoundTrip(rec, httptest.NewRequest("GET", "http://example.test/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	n, err := resp.Send(rec)
	if err != nil || n != 4 || rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "nope" || rec.Header().Get("X-A") != "1" {
		t.Fatalf("Send: %d bytes, %v; client got %d %q %v", n, err, rec.Code, rec.Body, rec.Header())
	}
	if c := conns.Load(); c != 1 {
		t.Errorf("%d connections to the origin; want 1 (Discard keeps the connection)", c)
	}
}
