package h1conformance

import (
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestNetHTTP holds the corpus to net/http's own server: every case passes
// there, or accepts net/http's answer as a documented difference.
func TestNetHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{ReadHeaderTimeout: time.Second, IdleTimeout: time.Second, MaxHeaderBytes: 16 << 10, NetHTTPDeviations: true}
	srv := &http.Server{
		Handler:           Handler(),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go srv.Serve(ln)
	defer srv.Close()
	RunWithOptions(t, ln.Addr().String(), opts)
}
