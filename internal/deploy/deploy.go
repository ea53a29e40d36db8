// Package deploy holds turnout's control-plane model: immutable numbered
// deployments, the audit trail, and the operations on them (apply, rollback,
// route off/on, diff). Storage sits behind the Store interface so the embedded
// bolt store and an etcd store for a fleet are interchangeable.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Deployment is one immutable, numbered configuration. Every change to what
// is served — an apply, a rollback, a route switch — is a new Deployment.
type Deployment struct {
	ID uint64 `json:"id"`
	// Config is the YAML source of the configuration, exactly as applied
	// (route off/on edit it structurally, keeping comments).
	Config  string `json:"config"`
	Author  string `json:"author"`
	Message string `json:"message,omitempty"`
	// Cause says why the deployment exists: "apply", "rollback to 12",
	// "route off GET /user/{id}", "seed from turnout.yaml", ...
	Cause string    `json:"cause"`
	Time  time.Time `json:"time"`
}

// AuditEvent is one entry of the audit trail: every mutation and every refused
// attempt at the admin API.
type AuditEvent struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`            // token name, or "anonymous"
	Action string    `json:"action"`           // "apply", "rollback", "route.off", "auth", ...
	Result string    `json:"result"`           // "ok", "denied", "invalid", "error"
	Detail string    `json:"detail,omitempty"` // what was done or why it was refused
	Remote string    `json:"remote,omitempty"` // client address
	// Deployment is the deployment the action created, if any.
	Deployment uint64 `json:"deployment,omitempty"`
}

// ErrNotFound is returned for a deployment id the store does not hold.
var ErrNotFound = errors.New("deployment not found")

// ErrUnavailable is wrapped in the errors of a store that could not reach
// its backend in time: a fleet store whose etcd cluster is down or has lost
// its quorum. The data plane does not need the store and keeps serving;
// changes wait until it is back.
var ErrUnavailable = errors.New("store unavailable")

// ConflictError is what Store.Create returns when the active deployment is
// no longer the one the change was based on: another node (or process)
// created a deployment first. Nothing was stored. It matches ErrConflict
// with errors.Is; the operator reviews the winner and retries.
type ConflictError struct {
	// Based is the deployment the refused change was based on.
	Based uint64
	// Active is the deployment active when Create looked: the winner, or one
	// made after it. Its ID is 0 when it could not be read.
	Active Deployment
}

func (e *ConflictError) Error() string {
	if e.Active.ID == 0 {
		return fmt.Sprintf("another deployment was made after deployment %d, on which this change was based; nothing was stored: see `turnout history` and retry", e.Based)
	}
	return fmt.Sprintf("deployment %d (%s by %s at %s) was made after deployment %d, on which this change was based; nothing was stored: review it and retry",
		e.Active.ID, e.Active.Cause, e.Active.Author, e.Active.Time.UTC().Format(time.RFC3339), e.Based)
}

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Node is one gateway node as the store knows it: who it is, where its
// admin API answers, and its acknowledgement of what it serves.
type Node struct {
	// Name is the node's stable name (the node.name setting; default the
	// host name). It identifies the node in the store: one record per name.
	Name string `json:"name"`
	// AdminURL is where the node's admin API answers, for a client that
	// wants to ask it directly.
	AdminURL string `json:"admin_url,omitempty"`
	// Version is the turnout version the node runs.
	Version string `json:"version,omitempty"`
	// Deployment is the deployment the node serves, 0 before its first;
	// AppliedAt is when it started serving it.
	Deployment uint64    `json:"deployment"`
	AppliedAt  time.Time `json:"applied_at,omitzero"`
	// Refused and Error, when set, are a negative acknowledgement: the node
	// could not compile deployment Refused, for the reason in Error, and
	// still serves Deployment.
	Refused uint64 `json:"refused,omitempty"`
	Error   string `json:"error,omitempty"`
	// LocalSwitches are the routes this node has switched off on its own
	// (`route off --local`), whatever its deployment says.
	LocalSwitches []string `json:"local_switches,omitempty"`
}

// Store keeps deployments, the active pointer, the audit trail and the
// nodes' acknowledgements. The embedded bolt store is a fleet of one; the
// etcd store is shared by every node of a fleet. Implementations must be
// safe for concurrent use and durable: once Create returns, the deployment
// and the new active pointer survive a crash.
type Store interface {
	// Create stores d as the deployment after prev — the active deployment
	// the change was based on, 0 when the store is empty — and makes it
	// active, in one atomic step, returning it with its id (prev+1). When
	// the active deployment is no longer prev, Create stores nothing and
	// returns a *ConflictError naming it, so two concurrent changes never
	// get one id nor silently overwrite one another.
	Create(ctx context.Context, prev uint64, d Deployment) (Deployment, error)
	// Get returns deployment id, or ErrNotFound.
	Get(ctx context.Context, id uint64) (Deployment, error)
	// Active returns the active deployment, or ErrNotFound when the store is empty.
	Active(ctx context.Context) (Deployment, error)
	// List returns up to limit deployments, newest first, with ids below
	// before (0 means from the newest).
	List(ctx context.Context, before uint64, limit int) ([]Deployment, error)
	// Audit appends e to the audit trail, assigning Seq (and Time if zero).
	Audit(ctx context.Context, e AuditEvent) error
	// AuditLog returns up to limit events, newest first.
	AuditLog(ctx context.Context, limit int) ([]AuditEvent, error)
	// Watch sends the active deployment id whenever it changes (and once at
	// start), until ctx ends. Slow receivers may miss intermediate ids but
	// always see the latest.
	Watch(ctx context.Context) <-chan uint64
	// Ack records n as what node n.Name serves now, replacing its previous
	// record, and keeps the node listed by Nodes while this Store is open:
	// a fleet store holds it under a lease the Store keeps alive, so a node
	// that stops (or cannot reach the store) leaves the list when the
	// lease expires, and comes back with its record when it can renew.
	Ack(ctx context.Context, n Node) error
	// Nodes returns the live nodes, sorted by name.
	Nodes(ctx context.Context) ([]Node, error)
	Close() error
}
