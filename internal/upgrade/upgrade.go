// Package upgrade replaces a running turnout with a new binary without
// refusing a connection: the old process starts the new one with its
// listening sockets inherited (github.com/cloudflare/tableflip), waits until
// the new one says it is ready, then drains and exits.
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/cloudflare/tableflip"
)

// DefaultTimeout is how long a new process has to become ready before the
// upgrade is called off and the old process carries on.
const DefaultTimeout = time.Minute

// Options configure an Upgrader.
type Options struct {
	// Timeout bounds how long the new process may take to call Ready.
	// Default DefaultTimeout. The new process is killed when it passes.
	Timeout time.Duration
	// PIDFile, when set, receives the pid of the process serving, written
	// atomically each time a process becomes ready, so `kill -HUP $(cat
	// PIDFile)` always reaches the current one.
	PIDFile string
}

// Handoff is what the old process gives up while the new one starts, and
// takes back when the new one fails. Resources only one process may hold
// (turnout's embedded store takes an exclusive file lock) are released
// before the new process starts; the data plane keeps serving from memory
// meanwhile.
type Handoff struct {
	// Release gives up the exclusive resources. On error the upgrade is
	// not attempted and Reclaim runs.
	Release func() error
	// Reclaim takes them back after a failed upgrade.
	Reclaim func() error
}

// Upgrader hands listening sockets across an upgrade. One per process.
type Upgrader struct {
	tf *tableflip.Upgrader

	mu      sync.Mutex
	tracked []*Listener // from ListenTracked, for Quiesce
}

// New returns the process's Upgrader. In a process started by an upgrade
// it holds the sockets inherited from the old process.
func New(opts Options) (*Upgrader, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	tf, err := tableflip.New(tableflip.Options{UpgradeTimeout: opts.Timeout, PIDFile: opts.PIDFile})
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	return &Upgrader{tf: tf}, nil
}

// Inherited reports whether this process was started by an upgrade.
func (u *Upgrader) Inherited() bool { return u.tf.HasParent() }

// Listen returns the listener the old process passed under name for addr,
// or a new one. The name keeps apart listeners whose address is the same
// string (several "127.0.0.1:0" in tests); a changed address in the new
// config gets a fresh socket, and the old one is closed at Ready.
func (u *Upgrader) Listen(name, network, addr string) (net.Listener, error) {
	key := name + " " + addr
	ln, err := u.tf.Fds.Listener(network, key)
	if err != nil || ln != nil {
		return ln, err
	}
	if ln, err = net.Listen(network, addr); err != nil {
		return nil, err
	}
	if err := u.tf.Fds.AddListener(network, key, ln.(tableflip.Listener)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("upgrade: keep %s listener for handing over: %w", name, err)
	}
	return ln, nil
}

// ListenTracked is Listen, with the listener wrapped for quiescing (Track,
// or TrackTLS when the server terminates TLS on it) and kept, so that
// Quiesce stops it together with the process's other listeners.
func (u *Upgrader) ListenTracked(name, network, addr string, tls bool) (*Listener, error) {
	ln, err := u.Listen(name, network, addr)
	if err != nil {
		return nil, err
	}
	t := Track(ln)
	if tls {
		t = TrackTLS(ln)
	}
	u.mu.Lock()
	u.tracked = append(u.tracked, t)
	u.mu.Unlock()
	return t, nil
}

// Quiesce quiesces every listener ListenTracked returned, at once, and
// returns when all are quiet or ctx ends (see Listener.Quiesce); the
// servers' Shutdown that follows then answers every accepted connection.
func (u *Upgrader) Quiesce(ctx context.Context) {
	u.mu.Lock()
	lns := append([]*Listener(nil), u.tracked...)
	u.mu.Unlock()
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() { defer wg.Done(); ln.Quiesce(ctx) }()
	}
	wg.Wait()
}

// Ready tells the old process, if any, that this one serves, and writes
// the PID file. Inherited sockets not claimed by Listen are closed.
func (u *Upgrader) Ready() error { return u.tf.Ready() }

// Upgrade starts the binary at os.Args[0] with the same arguments and the
// listening sockets, after h.Release, and waits until it is ready. On nil
// the caller stops accepting, drains and exits. On error the new process is
// gone (killed if it was still starting), h.Reclaim has run, and the caller
// carries on serving.
func (u *Upgrader) Upgrade(h Handoff) error {
	if h.Release != nil {
		if err := h.Release(); err != nil {
			err = fmt.Errorf("release for the new process: %w", err)
			if h.Reclaim != nil {
				if rerr := h.Reclaim(); rerr != nil {
					err = errors.Join(err, fmt.Errorf("reclaim: %w", rerr))
				}
			}
			return err
		}
	}
	err := u.tf.Upgrade()
	if err == nil {
		return nil
	}
	err = fmt.Errorf("new process (%s) did not become ready: %w", os.Args[0], err)
	if h.Reclaim != nil {
		if rerr := h.Reclaim(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("reclaim: %w", rerr))
		}
	}
	return err
}

// Stop ends upgrades for a process that shuts down for good; a running
// Upgrade is called off.
func (u *Upgrader) Stop() { u.tf.Stop() }
