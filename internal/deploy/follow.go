package deploy

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/turnout/turnout/internal/config"
)

// Follower keeps a node's data plane serving the store's active deployment:
// the one the node starts with, and every one activated later elsewhere —
// another process on the same store, or another node of a fleet store.
// Deployments made through this node's Service are already served when the
// store reports them; the Follower sees they are and skips them.
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
}

// Activate parses d's config and applies it.
func (f *Follower) Activate(d Deployment) error {
	c, err := config.Parse(fmt.Sprintf("deployment %d", d.ID), []byte(d.Config))
	if err != nil {
		return fmt.Errorf("deployment %d does not parse: %w", d.ID, err)
	}
	return f.Apply(d.ID, c)
}

// Run activates each deployment the store reports active, until ctx ends
// or the store closes its watch (a store handed to a new process during an
// upgrade; Run again to resume). A deployment that cannot be activated is
// logged and the previous one stays served.
func (f *Follower) Run(ctx context.Context) {
	log := f.Log
	if log == nil {
		log = slog.Default()
	}
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
