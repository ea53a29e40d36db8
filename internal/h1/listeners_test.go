package h1

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestListeners: Close closes every listener added (a Serve blocked in
// Accept returns), a listener removed is left open, and one added after
// Close is refused, which makes a Serve started after Shutdown return
// http.ErrServerClosed.
func TestListeners(t *testing.T) {
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	var ls Listeners
	a, b, c := listen(), listen(), listen()
	if !ls.Add(a) || !ls.Add(b) {
		t.Fatal("Add refused before Close")
	}
	ls.Remove(b)
	accepted := make(chan error, 1)
	go func() { _, err := a.Accept(); accepted <- err }()
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept on a closed listener: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left an added listener open")
	}
	if conn, err := net.Dial("tcp", b.Addr().String()); err != nil {
		t.Fatalf("Close closed a removed listener: %v", err)
	} else {
		conn.Close()
	}
	if ls.Add(c) {
		t.Fatal("Add after Close succeeded")
	}

	s := &Server{Handler: http.NotFoundHandler()}
	s.Shutdown(t.Context())
	if err := s.Serve(listen()); err != http.ErrServerClosed {
		t.Fatalf("Serve after Shutdown: %v, want http.ErrServerClosed", err)
	}
}
