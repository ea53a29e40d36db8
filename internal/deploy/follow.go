package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/turnout/turnout/internal/config"
)

// Follower keeps a node's data plane serving the store's active deployment:
// the one the node starts with, and every one activated later elsewhere —
// another process on the same store, or another node of a fleet store.
// Deployments made through this node's Service are already served when the
// store reports them; the Follower sees they are and skips them.
//
// With Node.Name set, the Follower acknowledges in the store every
// deployment it swaps in (Store.Ack: the deployment and when), and one it
// cannot compile (Refused and the error, still serving the previous one),
// so that `turnout nodes` and `apply --wait` know where each deployment is
// live.
type Follower struct {
	// Store is watched for a new active deployment. Required.
	Store Store
	// Apply compiles cfg and swaps it in as deployment id (the gateway's
	// Apply). cfg has been parsed, without defaults applied. Required.
	Apply func(id uint64, cfg *config.Config) error
	// Serving returns the deployment the data plane serves now, 0 before
	// the first. Required.
	Serving func() uint64
	// Log receives the deployments that could not be activated. Default
	// slog.Default().
	Log *slog.Logger
	// Node is this node's record in the store (Name, AdminURL, Version);
	// the Follower fills in the rest. No acks when Name is "".
	Node Node
	// Served, when set, is told of each deployment this node starts
	// serving and when (metrics, the local cache of a fleet node).
	Served func(d Deployment, at time.Time)

	serving  sync.Mutex // one activation at a time
	flushing sync.Mutex // one background record write at a time
	mu       sync.Mutex
	last     Node     // the last ack written
	adminURL string   // set by Advertise
	local    []string // set by SetLocal
}

// Activate parses d's config and serves it.
func (f *Follower) Activate(d Deployment) error {
	c, err := config.Parse(fmt.Sprintf("deployment %d", d.ID), []byte(d.Config))
	if err != nil {
		err = fmt.Errorf("deployment %d does not parse: %w", d.ID, err)
		f.ack(d, err)
		return err
	}
	return f.Serve(d, c)
}

// Serve swaps in d, whose config is c, and acknowledges it. The Service's
// Activate is this for deployments made through this node.
// A deployment at or below the one served is an echo (the store's watch
// reporting what the Service already swapped in) and changes nothing.
func (f *Follower) Serve(d Deployment, c *config.Config) error {
	f.serving.Lock()
	defer f.serving.Unlock()
	if d.ID <= f.Serving() {
		return nil
	}
	err := f.Apply(d.ID, c)
	f.ack(d, err)
	return err
}

// ack records in the store that this node serves d, or, with err, that it
// refused d and serves what it served before. A store that cannot be
// reached is logged: the node keeps serving, and acks again with the next
// deployment (and a fleet store rewrites the record when it reconnects).
func (f *Follower) ack(d Deployment, err error) {
	now := time.Now()
	if err == nil && f.Served != nil {
		f.Served(d, now)
	}
	if f.Node.Name == "" {
		return
	}
	f.mu.Lock()
	n := f.last
	n.Name, n.AdminURL, n.Version = f.Node.Name, f.Node.AdminURL, f.Node.Version
	if f.adminURL != "" {
		n.AdminURL = f.adminURL
	}
	n.LocalSwitches = f.local
	if err == nil {
		n.Deployment, n.AppliedAt, n.Refused, n.Error = max(d.ID, n.Deployment), now, 0, ""
	} else {
		n.Refused, n.Error = d.ID, err.Error()
	}
	f.last = n
	f.mu.Unlock()
	f.write(n)
}

func (f *Follower) write(n Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Store.Ack(ctx, n); err != nil {
		f.log().Warn("could not acknowledge the deployment in the store; serving it regardless", "deployment", n.Deployment, "error", err)
	}
}

// Advertise sets the admin URL this node's record gives, once its listener
// is bound (a configured port 0 is only known then), and rewrites the
// record when there is one.
func (f *Follower) Advertise(adminURL string) {
	f.update(func(n *Node) { f.adminURL, n.AdminURL = adminURL, adminURL })
}

// SetLocal sets the routes this node's record lists as switched off on this
// node only (route off --local), and rewrites the record when there is one.
func (f *Follower) SetLocal(matches []string) {
	f.update(func(n *Node) { f.local, n.LocalSwitches = matches, matches })
}

// update changes this node's record with change, under f.mu, and writes
// it again, in the background, when one was written before: the caller
// (a route switched off with --local, perhaps because the store is down)
// does not wait on the store.
func (f *Follower) update(change func(n *Node)) {
	f.mu.Lock()
	n := f.last
	change(&n)
	f.last = n
	f.mu.Unlock()
	if n.Name != "" {
		go f.flush()
	}
}

// flush writes this node's newest record. Flushes run one at a time, each
// writing the record as it is when its turn comes, so the last to run
// writes the newest.
func (f *Follower) flush() {
	f.flushing.Lock()
	defer f.flushing.Unlock()
	f.mu.Lock()
	n := f.last
	f.mu.Unlock()
	f.write(n)
}

func (f *Follower) log() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}

// Run activates each deployment the store reports active, until ctx ends
// or the store closes its watch (a store handed to a new process during an
// upgrade; Run again to resume). A deployment that cannot be activated is
// logged and the previous one stays served.
func (f *Follower) Run(ctx context.Context) {
	log := f.log()
	for id := range f.Store.Watch(ctx) {
		// Ids only grow (a rollback is a new deployment), so an id at or
		// below the served one is an echo of what Activate already swapped in.
		if f.Serving() >= id {
			continue
		}
		d, err := f.Store.Get(ctx, id)
		if err == nil {
			err = f.Activate(d)
		}
		if err != nil {
			log.Error("cannot activate deployment from the store; still serving the previous one", "deployment", id, "error", err)
		}
	}
}
