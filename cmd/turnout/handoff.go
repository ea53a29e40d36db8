package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/upgrade"
)

// The zero-downtime upgrade (SIGHUP) from serve's side. The embedded store
// takes an exclusive file lock, so the old process gives it up, with the
// admin API that writes to it, before the new binary starts; its data plane
// keeps serving from memory meanwhile. When the new process fails to become
// ready the old one takes both back and carries on.

// handoffStore is the node's store, which can be closed for a new process
// and opened again if that process fails. While it is closed, every call
// fails with errStoreHandedOver.
type handoffStore struct {
	path string
	mu   sync.RWMutex
	st   *bolt.Store // nil while handed over
}

var errStoreHandedOver = errors.New("the store is handed to a new turnout process during an upgrade; try again")

func openHandoffStore(path string) (*handoffStore, error) {
	st, err := bolt.Open(path)
	if err != nil {
		return nil, err
	}
	return &handoffStore{path: path, st: st}, nil
}

func (h *handoffStore) cur() (*bolt.Store, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.st == nil {
		return nil, errStoreHandedOver
	}
	return h.st, nil
}

// release closes the store; watchers' channels close.
func (h *handoffStore) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st == nil {
		return nil
	}
	err := h.st.Close()
	h.st = nil
	return err
}

// reclaim opens the store again.
func (h *handoffStore) reclaim() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st != nil {
		return nil
	}
	st, err := bolt.Open(h.path)
	if err != nil {
		return err
	}
	h.st = st
	return nil
}

// CertStorage is the current store's certificate storage. It is taken
// once, at start: after a failed upgrade certificate renewals resume only
// when the process restarts (the log says so).
func (h *handoffStore) CertStorage() *bolt.CertStorage {
	st, _ := h.cur()
	if st == nil {
		return nil
	}
	return st.CertStorage()
}

func (h *handoffStore) Create(ctx context.Context, d deploy.Deployment) (deploy.Deployment, error) {
	st, err := h.cur()
	if err != nil {
		return deploy.Deployment{}, err
	}
	return st.Create(ctx, d)
}

func (h *handoffStore) Get(ctx context.Context, id uint64) (deploy.Deployment, error) {
	st, err := h.cur()
	if err != nil {
		return deploy.Deployment{}, err
	}
	return st.Get(ctx, id)
}

func (h *handoffStore) Active(ctx context.Context) (deploy.Deployment, error) {
	st, err := h.cur()
	if err != nil {
		return deploy.Deployment{}, err
	}
	return st.Active(ctx)
}

func (h *handoffStore) List(ctx context.Context, before uint64, limit int) ([]deploy.Deployment, error) {
	st, err := h.cur()
	if err != nil {
		return nil, err
	}
	return st.List(ctx, before, limit)
}

func (h *handoffStore) Audit(ctx context.Context, e deploy.AuditEvent) error {
	st, err := h.cur()
	if err != nil {
		return err
	}
	return st.Audit(ctx, e)
}

func (h *handoffStore) AuditLog(ctx context.Context, limit int) ([]deploy.AuditEvent, error) {
	st, err := h.cur()
	if err != nil {
		return nil, err
	}
	return st.AuditLog(ctx, limit)
}

// Watch watches the current store; the channel closes when the store is
// handed over (reclaim starts a new watch).
func (h *handoffStore) Watch(ctx context.Context) <-chan uint64 {
	st, err := h.cur()
	if err != nil {
		ch := make(chan uint64)
		close(ch)
		return ch
	}
	return st.Watch(ctx)
}

func (h *handoffStore) Close() error { return h.release() }

var _ deploy.Store = (*handoffStore)(nil)

// handoff runs serve's side of an upgrade.
type handoff struct {
	log   *slog.Logger
	upg   *upgrade.Upgrader
	store *handoffStore
	// follow starts applying deployments from the store (again).
	follow func()
	// errc receives the admin server's Serve result, as serve's others do.
	errc chan<- error

	mu        sync.Mutex
	admin     *http.Server
	adminLn   net.Listener
	adminSock *os.File // a copy of adminLn's socket, taken at release
}

// adminServer is the admin server serving now (a new one after a failed
// upgrade).
func (h *handoff) adminServer() *http.Server {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.admin
}

// wait returns when ctx ends (SIGTERM: upgraded false), after an upgrade
// the new process finished (upgraded true), or with the first fatal error
// of a server. A failed upgrade is logged and waiting goes on.
func (h *handoff) wait(ctx context.Context, hup <-chan os.Signal, errc <-chan error) (upgraded bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				continue // the admin server, stopped for an upgrade
			}
			return false, err
		case <-hup:
			h.log.Info("upgrade: starting the new binary with the listening sockets; the store and the admin API go to it", "binary", os.Args[0])
			start := time.Now()
			err := h.upg.Upgrade(upgrade.Handoff{Release: h.release, Reclaim: h.reclaim})
			if err != nil {
				h.log.Error("upgrade failed: this process took the store and the admin API back and carries on serving", "error", err)
				continue
			}
			h.log.Info("upgrade: the new process is ready; this one stops accepting and drains", "took", time.Since(start).Round(time.Millisecond).String())
			return true, nil
		}
	}
}

// release stops the admin API (its socket stays open for the new process)
// and closes the store, which also ends the store watcher.
func (h *handoff) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	sock, err := upgrade.File(h.adminLn)
	if err != nil {
		return fmt.Errorf("keep the admin socket: %w", err)
	}
	h.adminSock = sock
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.admin.Shutdown(ctx); err != nil {
		h.log.Warn("upgrade: admin requests still running were cut off", "error", err)
	}
	if err := h.store.release(); err != nil {
		return fmt.Errorf("close the store: %w", err)
	}
	return nil
}

// reclaim opens the store again, resumes following it and serves the
// admin API on the same socket.
func (h *handoff) reclaim() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.store.reclaim(); err != nil {
		return fmt.Errorf("reopen the store: %w", err)
	}
	h.follow()
	if h.adminSock == nil {
		return errors.New("admin listener: no copy of its socket was kept")
	}
	ln, err := net.FileListener(h.adminSock)
	h.adminSock.Close()
	h.adminSock = nil
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	old := h.admin
	srv := &http.Server{
		Handler:           old.Handler,
		TLSConfig:         old.TLSConfig,
		ReadHeaderTimeout: old.ReadHeaderTimeout,
		ReadTimeout:       old.ReadTimeout,
		WriteTimeout:      old.WriteTimeout,
		IdleTimeout:       old.IdleTimeout,
		MaxHeaderBytes:    old.MaxHeaderBytes,
		ErrorLog:          old.ErrorLog,
	}
	h.admin, h.adminLn = srv, ln
	// net/http fills in TLSConfig for HTTP/2 on a plain server too, so
	// whether admin serves TLS is whether it has a certificate.
	useTLS := old.TLSConfig != nil && (len(old.TLSConfig.Certificates) > 0 || old.TLSConfig.GetCertificate != nil)
	if !useTLS {
		srv.TLSConfig = nil
	}
	go func() {
		if useTLS {
			h.errc <- srv.ServeTLS(ln, "", "")
		} else {
			h.errc <- srv.Serve(ln)
		}
	}()
	h.log.Warn("upgrade: store and admin API taken back; certificate renewals resume at the next restart")
	return nil
}

// upgrader hands listening sockets across an upgrade; serve sets it before
// any listener opens. Nil (tests of other commands) binds plain sockets.
var upgrader *upgrade.Upgrader

var (
	trackedMu sync.Mutex
	tracked   []*upgrade.Listener
)

// handoverListen returns the socket a previous process passed under name,
// or a new one, tracked so that quiesceListeners can stop it cleanly.
func handoverListen(name, network, addr string) (net.Listener, error) {
	var ln net.Listener
	var err error
	if upgrader != nil {
		ln, err = upgrader.Listen(name, network, addr)
	} else {
		ln, err = net.Listen(network, addr)
	}
	if err != nil {
		return nil, err
	}
	t := upgrade.Track(ln)
	if name == "HTTPS" {
		t = upgrade.TrackTLS(ln)
	}
	trackedMu.Lock()
	tracked = append(tracked, t)
	trackedMu.Unlock()
	return t, nil
}

// quiesceListeners stops accepting on every listener and waits until the
// connections already accepted have sent their first request (see
// upgrade.Listener), so the servers' Shutdown that follows answers them.
func quiesceListeners(ctx context.Context) {
	trackedMu.Lock()
	lns := append([]*upgrade.Listener(nil), tracked...)
	trackedMu.Unlock()
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() { defer wg.Done(); ln.Quiesce(ctx) }()
	}
	wg.Wait()
}
