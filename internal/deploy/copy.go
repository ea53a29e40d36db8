package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// History is everything a store holds that outlives the nodes: every
// deployment, the audit trail and the active pointer. It is what `turnout
// store copy` moves from one store to another. The nodes' acknowledgements
// are not part of it: each node writes its own again when it starts on the
// new store.
type History struct {
	// Deployments in ascending id order.
	Deployments []Deployment
	// Audit is the audit trail in ascending seq order.
	Audit []AuditEvent
	// Active is the active deployment's id; 0 only when there are no
	// deployments.
	Active uint64
}

// Importer is a Store that can take a History as it is — deployment ids,
// audit seqs and times kept exactly, where Create and Audit would assign
// their own. Both turnout stores implement it.
type Importer interface {
	Store
	// Import writes h into the store, which must hold no deployment and no
	// audit event: otherwise it writes nothing and returns an error
	// wrapping ErrNotEmpty. After Import, Create continues from h.Active
	// and Audit from the last seq of h.Audit. h has been checked by
	// History.Check. A store that cannot write h in one transaction (etcd
	// limits a transaction's size) removes what it wrote when it fails
	// part way.
	Import(ctx context.Context, h History) error
}

// ErrNotEmpty is wrapped by Import's error when the destination already
// holds deployments or audit events: a copy never merges two histories.
var ErrNotEmpty = errors.New("store is not empty")

// ReadHistory reads s's whole history. The active pointer is read before
// and after the listings; when a change lands in between (a node applying
// on a live fleet store), it reads again, and gives up after three tries
// asking for the writes to stop.
func ReadHistory(ctx context.Context, s Store) (History, error) {
	for range 3 {
		before, err := activeID(ctx, s)
		if err != nil {
			return History{}, err
		}
		ds, err := s.List(ctx, 0, 0)
		if err != nil {
			return History{}, err
		}
		evs, err := s.AuditLog(ctx, 0)
		if err != nil {
			return History{}, err
		}
		after, err := activeID(ctx, s)
		if err != nil {
			return History{}, err
		}
		if before != after {
			continue
		}
		slices.Reverse(ds) // List and AuditLog answer newest first
		slices.Reverse(evs)
		h := History{Deployments: ds, Audit: evs, Active: after}
		return h, h.Check()
	}
	return History{}, errors.New("the store kept changing while it was read: stop applying (or stop the nodes) and copy again")
}

func activeID(ctx context.Context, s Store) (uint64, error) {
	d, err := s.Active(ctx)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return d.ID, err
}

// Check reports why h cannot be imported: ids or seqs not strictly
// ascending (or 0), or an active pointer that is not one of the
// deployments.
func (h History) Check() error {
	var last uint64
	for _, d := range h.Deployments {
		if d.ID <= last {
			return fmt.Errorf("history: deployment %d follows %d: ids must be positive and ascending", d.ID, last)
		}
		last = d.ID
	}
	last = 0
	for _, e := range h.Audit {
		if e.Seq <= last {
			return fmt.Errorf("history: audit event %d follows %d: seqs must be positive and ascending", e.Seq, last)
		}
		last = e.Seq
	}
	switch {
	case len(h.Deployments) == 0 && h.Active != 0:
		return fmt.Errorf("history: deployment %d is active but there are no deployments", h.Active)
	case len(h.Deployments) > 0 && h.Active != h.Deployments[len(h.Deployments)-1].ID:
		// Every change, a rollback included, is a new deployment, so the
		// active one is the newest; Create continues from it.
		return fmt.Errorf("history: deployment %d is active but the newest is %d", h.Active, h.Deployments[len(h.Deployments)-1].ID)
	}
	return nil
}

// CopyResult says what Copy moved.
type CopyResult struct {
	Deployments int    `json:"deployments"`
	AuditEvents int    `json:"audit_events"`
	Active      uint64 `json:"active"`
}

// Copy copies from's whole history into to, which must be empty, keeping
// deployment ids, audit seqs and times: `turnout store copy`, to move a
// node from its bolt file to a fleet's etcd, or back. It reads everything
// before writing anything, so a source it cannot read changes nothing;
// then it reads the destination back and compares.
func Copy(ctx context.Context, from, to Store) (CopyResult, error) {
	imp, ok := to.(Importer)
	if !ok {
		return CopyResult{}, fmt.Errorf("the destination store (%T) cannot import a history", to)
	}
	h, err := ReadHistory(ctx, from)
	if err != nil {
		return CopyResult{}, fmt.Errorf("read the source: %w", err)
	}
	if len(h.Deployments) == 0 && len(h.Audit) == 0 {
		return CopyResult{}, errors.New("the source holds no deployment and no audit event: nothing to copy (is it the right store?)")
	}
	if err := imp.Import(ctx, h); err != nil {
		return CopyResult{}, fmt.Errorf("write the destination: %w", err)
	}
	got, err := ReadHistory(ctx, to)
	if err != nil {
		return CopyResult{}, fmt.Errorf("read the destination back: %w", err)
	}
	if len(got.Deployments) != len(h.Deployments) || len(got.Audit) < len(h.Audit) || got.Active != h.Active {
		// Audit may have grown: a node may already be writing to it.
		return CopyResult{}, fmt.Errorf("the destination reads back %d deployments, %d audit events and active %d after the copy of %d, %d and %d",
			len(got.Deployments), len(got.Audit), got.Active, len(h.Deployments), len(h.Audit), h.Active)
	}
	return CopyResult{Deployments: len(h.Deployments), AuditEvents: len(h.Audit), Active: h.Active}, nil
}
