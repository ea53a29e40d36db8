package bolt

import (
	"context"
	"errors"
	"sync"

	"github.com/turnout/turnout/internal/deploy"
)

// ErrHandedOver is what a Handover answers while its file belongs to the
// new process of an upgrade.
var ErrHandedOver = errors.New("the store is handed to a new turnout process during an upgrade; try again")

// Handover is a Store that can be handed to another process and taken back:
// bbolt locks its file exclusively, so during a zero-downtime upgrade (see
// package upgrade) the old process closes the file before the new binary
// starts, and opens it again if that binary fails to become ready. While it
// is handed over every call fails with ErrHandedOver and Watch channels are
// closed; the data plane keeps serving from memory meanwhile.
//
// It is safe for concurrent use.
type Handover struct {
	path string
	mu   sync.RWMutex
	st   *Store                 // nil while handed over
	acks map[string]deploy.Node // this node's acks, written again after Reclaim
}

var _ deploy.Store = (*Handover)(nil)

// OpenHandover opens the store file at path, as Open does.
func OpenHandover(path string) (*Handover, error) {
	st, err := Open(path)
	if err != nil {
		return nil, err
	}
	return &Handover{path: path, st: st, acks: make(map[string]deploy.Node)}, nil
}

func (h *Handover) cur() (*Store, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.st == nil {
		return nil, ErrHandedOver
	}
	return h.st, nil
}

// Release closes the file, releasing its lock for another process;
// watchers' channels close. Releasing a released store does nothing.
func (h *Handover) Release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st == nil {
		return nil
	}
	err := h.st.Close()
	h.st = nil
	return err
}

// Reclaim opens the file again after Release. Watches must be started
// again. Reclaiming an open store does nothing.
func (h *Handover) Reclaim() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st != nil {
		return nil
	}
	st, err := Open(h.path)
	if err != nil {
		return err
	}
	// Acks live in memory, with the Store value: the new one has none.
	for _, n := range h.acks {
		st.Ack(context.Background(), n)
	}
	h.st = st
	return nil
}

// CertStorage is the current store's certificate storage, nil while handed
// over. The caller takes it once, at start, so after a failed upgrade it
// refers to the closed file: certificate renewals resume only when the
// process restarts (turnout serve logs so).
func (h *Handover) CertStorage() *CertStorage {
	st, _ := h.cur()
	if st == nil {
		return nil
	}
	return st.CertStorage()
}

func (h *Handover) Create(ctx context.Context, prev uint64, d deploy.Deployment) (deploy.Deployment, error) {
	st, err := h.cur()
	if err != nil {
		return deploy.Deployment{}, err
	}
	return st.Create(ctx, prev, d)
}

func (h *Handover) Get(ctx context.Context, id uint64) (deploy.Deployment, error) {
	st, err := h.cur()
	if err != nil {
		return deploy.Deployment{}, err
	}
	return st.Get(ctx, id)
}

func (h *Handover) Active(ctx context.Context) (deploy.Deployment, error) {
	st, err := h.cur()
	if err != nil {
		return deploy.Deployment{}, err
	}
	return st.Active(ctx)
}

func (h *Handover) List(ctx context.Context, before uint64, limit int) ([]deploy.Deployment, error) {
	st, err := h.cur()
	if err != nil {
		return nil, err
	}
	return st.List(ctx, before, limit)
}

func (h *Handover) Audit(ctx context.Context, e deploy.AuditEvent) error {
	st, err := h.cur()
	if err != nil {
		return err
	}
	return st.Audit(ctx, e)
}

func (h *Handover) AuditLog(ctx context.Context, limit int) ([]deploy.AuditEvent, error) {
	st, err := h.cur()
	if err != nil {
		return nil, err
	}
	return st.AuditLog(ctx, limit)
}

// Watch watches the current store; the channel closes when the store is
// handed over (after Reclaim, watch again).
func (h *Handover) Watch(ctx context.Context) <-chan uint64 {
	st, err := h.cur()
	if err != nil {
		ch := make(chan uint64)
		close(ch)
		return ch
	}
	return st.Watch(ctx)
}

func (h *Handover) Ack(ctx context.Context, n deploy.Node) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st == nil {
		return ErrHandedOver
	}
	if err := h.st.Ack(ctx, n); err != nil {
		return err
	}
	h.acks[n.Name] = n
	return nil
}

func (h *Handover) Nodes(ctx context.Context) ([]deploy.Node, error) {
	st, err := h.cur()
	if err != nil {
		return nil, err
	}
	return st.Nodes(ctx)
}

// Close releases the store for good.
func (h *Handover) Close() error { return h.Release() }
