package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/gateway"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/store/etcd"
)

// nodeStore is the deployment store a node serves from — the embedded bolt
// file, or a fleet's etcd cluster — with what the node needs beside it.
type nodeStore struct {
	deploy.Store
	kind      string // "bolt" or "etcd", for logs
	certs     certmagic.Storage
	connected func() bool
	// release and reclaim give the store to the new process of an upgrade
	// and take it back: the bolt file allows one process; a fleet store is
	// shared anyway, so they do nothing.
	release, reclaim func() error
	// cache, for a fleet store, is the node's copy of the last deployment
	// it served ("" for bolt, whose file is the copy).
	cache string
}

// openStore opens the store the node settings name.
func openStore(node *config.Config) (*nodeStore, error) {
	if node.Store.Etcd == nil {
		h, err := bolt.OpenHandover(node.Store.Path)
		if err != nil {
			return nil, err
		}
		return &nodeStore{Store: h, kind: "bolt", certs: h.CertStorage(), connected: func() bool { return true },
			release: h.Release, reclaim: h.Reclaim}, nil
	}
	o, err := etcd.OptionsFrom(node.Store.Etcd)
	if err != nil {
		return nil, err
	}
	st, err := etcd.Open(o)
	if err != nil {
		return nil, err
	}
	nothing := func() error { return nil }
	return &nodeStore{Store: st, kind: "etcd", certs: st.CertStorage(), connected: st.Connected,
		release: nothing, reclaim: nothing, cache: node.Store.Path + ".cache"}, nil
}

// seed returns the deployment a starting node serves: the store's active
// one (seeding an empty store from the config file), or — when a fleet
// store cannot be reached — the last one this node served, from its cache,
// with a loud warning. With neither, the node does not start: an edge that
// serves an empty table would answer 404 to every request.
func (s *nodeStore) seed(ctx context.Context, log *slog.Logger, svc *deploy.Service, data []byte, name string) (deploy.Deployment, error) {
	active, seeded, err := svc.Seed(ctx, data, name)
	switch {
	case err == nil && seeded:
		log.Info("store was empty: seeded deployment 1 from the config file", "file", name, "store", s.kind)
		return active, nil
	case err == nil:
		log.Info("serving the store's active deployment; the config file's routes and origins are not applied (use `turnout apply`)",
			"deployment", active.ID, "store", s.kind)
		return active, nil
	case s.cache == "" || !errors.Is(err, deploy.ErrUnavailable):
		return deploy.Deployment{}, err
	}
	cached, cerr := deploy.LoadCache(s.cache)
	if cerr != nil {
		return deploy.Deployment{}, fmt.Errorf("%w; and no deployment cached at %s to serve meanwhile (%v): not starting with an empty route table", err, s.cache, cerr)
	}
	log.Warn("STORE UNREACHABLE: serving the last deployment this node served, from its cache; it follows the fleet again once etcd answers",
		"deployment", cached.ID, "cached", s.cache, "created", cached.Time.Format(time.RFC3339), "error", err)
	return cached, nil
}

// watchConnection logs each change of the store's reachability, checked
// every second until ctx ends: the data plane keeps serving either way.
func (s *nodeStore) watchConnection(ctx context.Context, log *slog.Logger, serving func() uint64) {
	was := true
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.connected()
		switch {
		case was && !now:
			log.Warn("store disconnected: still serving from memory; applies, rollbacks and route switches fail until it is back",
				"store", s.kind, "deployment", serving())
		case !was && now:
			log.Info("store connected again", "store", s.kind, "deployment", serving())
		}
		was = now
	}
}

// following is how this node follows the store's active deployment.
type following struct {
	*deploy.Follower
	local  *localSwitching
	served atomic.Pointer[deploy.Deployment] // the last one swapped in, for status while the store is away
	// onServed, when set before the first deployment is served, is told
	// every deployment swapped in (the rollout controller).
	onServed func(deploy.Deployment)
}

// follow builds the Follower that keeps gw on the store's active
// deployment: every deployment it swaps in — from this node's admin API or
// from the store's watch — gets the node's local route switches (route off
// --local), is acknowledged in the store under node.name, counted in m,
// and, on a fleet store, cached on local disk.
func (s *nodeStore) follow(node *config.Config, gw *gateway.Gateway, m *metrics.Metrics, log *slog.Logger) (*following, error) {
	local, err := deploy.OpenLocalSwitches(deploy.LocalSwitchFile(node.Store.Path))
	if err != nil {
		return nil, err
	}
	f := &following{local: &localSwitching{gw: gw, local: local, log: log}}
	started, name := time.Now(), node.NodeName()
	f.Follower = &deploy.Follower{Store: s, Apply: f.local.apply, Log: log,
		Serving: func() uint64 {
			if t := gw.Active(); t != nil {
				return t.Deployment
			}
			return 0
		},
		Node: deploy.Node{Name: name, AdminURL: adminURL(node.Admin), Version: version()},
		Served: func(d deploy.Deployment, at time.Time) {
			f.served.Store(&d)
			if f.onServed != nil {
				f.onServed(d)
			}
			m.NodeActiveDeployment.WithLabelValues(name).Set(float64(d.ID))
			if d.Time.After(started) {
				m.Propagation.Observe(at.Sub(d.Time).Seconds())
			}
			if s.cache != "" {
				if err := deploy.SaveCache(s.cache, d); err != nil {
					log.Warn("could not cache the deployment on local disk", "deployment", d.ID, "error", err)
				}
			}
		}}
	f.SetLocal(f.local.matches())
	f.local.changed = f.SetLocal
	return f, nil
}

// localSwitching serves every deployment with this node's local route
// switches (route off --local) applied, and changes them.
type localSwitching struct {
	gw    *gateway.Gateway
	local *deploy.LocalSwitches
	log   *slog.Logger
	// changed is told the matches switched off locally after each change
	// (the node's record in the store lists them).
	changed func(matches []string)

	mu  sync.Mutex
	id  uint64         // the deployment served
	cfg *config.Config // its config, without the local switches
}

// apply swaps in deployment id with the local switches applied: the
// Follower's Apply.
func (l *localSwitching) apply(id uint64, c *config.Config) error {
	if stale := l.local.Stale(c); len(stale) > 0 {
		l.log.Warn("local route switches not applied: no such route in this deployment, or nowhere else to go", "deployment", id, "routes", stale)
	}
	if err := l.gw.Apply(id, l.local.Apply(c)); err != nil {
		return err
	}
	l.mu.Lock()
	if id >= l.id {
		l.id, l.cfg = id, c
	}
	l.mu.Unlock()
	return nil
}

// set switches a route off or on on this node only and rebuilds the
// served table at once: the admin API's route off/on with local=1.
func (l *localSwitching) set(_ context.Context, req deploy.LocalSwitchRequest) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg == nil {
		return "", errors.New("this node serves no deployment yet")
	}
	detail, err := l.local.Set(l.cfg, l.id, req)
	if err != nil {
		return "", err
	}
	if l.changed != nil {
		l.changed(l.matches())
	}
	return detail, l.gw.Rebuild(l.id, l.local.Apply(l.cfg))
}

// matches are the routes switched off locally, by match.
func (l *localSwitching) matches() []string {
	var out []string
	for _, r := range l.local.List() {
		out = append(out, r.Match)
	}
	return out
}
