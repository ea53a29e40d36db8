package upgrade

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/testkit"
)

// TestServerResume: a server stopped for an upgrade serves again on the
// same socket, with TLS if it had it, and a client that connects while it
// is stopped is answered once it resumes, not refused.
func TestServerResume(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "TLS"}[useTLS]
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{
				Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "admin") }),
				ReadHeaderTimeout: 7 * time.Second,
			}
			scheme := "http://"
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			if useTLS {
				srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
				scheme = "https://"
				client.Transport = &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
			}
			url := scheme + ln.Addr().String() + "/"
			errc := make(chan error, 2)
			s := NewServer(srv, ln, errc)
			s.Serve()
			defer s.Shutdown(context.Background())
			get := func() error {
				resp, err := client.Get(url)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if b, _ := io.ReadAll(resp.Body); string(b) != "admin" {
					return fmt.Errorf("body %q", b)
				}
				return nil
			}
			if err := get(); err != nil {
				t.Fatal(err)
			}

			if err := s.KeepSocket(); err != nil {
				t.Fatal(err)
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("Serve returned %v, want ErrServerClosed", err)
			}
			answered := make(chan error, 1)
			go func() { answered <- get() }()
			select {
			case err := <-answered:
				t.Fatalf("answered while stopped: %v", err)
			case <-time.After(100 * time.Millisecond):
			}

			if err := s.Resume(); err != nil {
				t.Fatal(err)
			}
			if err := testkit.Receive(t, answered, 5*time.Second, "the request made while stopped to be answered after Resume"); err != nil {
				t.Fatalf("the request made while stopped: %v", err)
			}
			if err := get(); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			resumed := s.srv
			s.mu.Unlock()
			if resumed == srv || resumed.ReadHeaderTimeout != srv.ReadHeaderTimeout || hasCertificate(resumed) != useTLS {
				t.Fatalf("resumed server: new %v, ReadHeaderTimeout %v, TLS %v", resumed != srv, resumed.ReadHeaderTimeout, hasCertificate(resumed))
			}
			if err := s.Resume(); err == nil {
				t.Fatal("a second Resume without KeepSocket succeeded")
			}
		})
	}
}
