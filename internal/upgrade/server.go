package upgrade

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
)

// Server is an HTTP server that stops for an upgrade, keeping its socket,
// and serves again on that socket if the upgrade fails. turnout's admin API
// is one: it writes to the store, which only one process may hold, so it
// goes with the store to the new process, and comes back with it.
type Server struct {
	errc chan<- error

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	sock *os.File // a copy of ln's socket, taken by Pause
}

// NewServer returns a Server for srv on ln. Serve's results (one per
// Serve or Resume) go to errc; http.ErrServerClosed is one of them after
// Shutdown.
func NewServer(srv *http.Server, ln net.Listener, errc chan<- error) *Server {
	return &Server{srv: srv, ln: ln, errc: errc}
}

// Serve starts serving, with TLS when the server has a certificate.
func (s *Server) Serve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serve()
}

func (s *Server) serve() {
	srv, ln := s.srv, s.ln
	useTLS := hasCertificate(srv)
	go func() {
		if useTLS {
			s.errc <- srv.ServeTLS(ln, "", "")
		} else {
			s.errc <- srv.Serve(ln)
		}
	}()
}

// KeepSocket keeps a copy of the socket, so that after Shutdown (for an
// upgrade) Resume can serve on it again.
func (s *Server) KeepSocket() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sock, err := File(s.ln)
	if err != nil {
		return err
	}
	s.sock = sock
	return nil
}

// Resume serves again on the socket KeepSocket kept, with a new http.Server
// configured as the old one.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock == nil {
		return errors.New("no copy of its socket was kept")
	}
	ln, err := net.FileListener(s.sock)
	s.sock.Close()
	s.sock = nil
	if err != nil {
		return err
	}
	old := s.srv
	srv := &http.Server{
		Handler:           old.Handler,
		ReadHeaderTimeout: old.ReadHeaderTimeout,
		ReadTimeout:       old.ReadTimeout,
		WriteTimeout:      old.WriteTimeout,
		IdleTimeout:       old.IdleTimeout,
		MaxHeaderBytes:    old.MaxHeaderBytes,
		ErrorLog:          old.ErrorLog,
	}
	if hasCertificate(old) {
		srv.TLSConfig = old.TLSConfig
	}
	s.srv, s.ln = srv, ln
	s.serve()
	return nil
}

// Shutdown shuts down the server serving now (see http.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	return srv.Shutdown(ctx)
}

// hasCertificate reports whether srv serves TLS. net/http fills in
// TLSConfig for HTTP/2 on a plain server too, so TLSConfig alone does not
// say.
func hasCertificate(srv *http.Server) bool {
	return srv.TLSConfig != nil && (len(srv.TLSConfig.Certificates) > 0 || srv.TLSConfig.GetCertificate != nil)
}
