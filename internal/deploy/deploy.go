// Package deploy holds turnout's control-plane model: immutable numbered
// deployments, the audit trail, and the operations on them (apply, rollback,
// route off/on, diff). Storage sits behind the Store interface so the embedded
// bolt store and an etcd store for a fleet are interchangeable.
package deploy

import (
	"context"
	"errors"
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

// Store keeps deployments, the active pointer and the audit trail.
// Implementations must be safe for concurrent use and durable: once Create
// returns, the deployment and the new active pointer survive a crash.
type Store interface {
	// Create assigns d the next id, stores it and makes it active in one
	// atomic step, returning the stored deployment.
	Create(ctx context.Context, d Deployment) (Deployment, error)
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
	Close() error
}
