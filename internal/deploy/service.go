package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/turnout/turnout/internal/config"
)

// Errors the operations return, for callers (the admin API) to map to a
// status. They are wrapped with a message meant for the operator; test with
// errors.Is. An invalid config is reported as a config.ErrorList instead.
var (
	// ErrConflict: the requested change is already in effect (the route is
	// already off, the deployment is already active), or another deployment
	// was made since the one the change was based on (a *ConflictError,
	// which names it; retry).
	ErrConflict = errors.New("already in effect")
	// ErrUnknownRoute: no route of the active config has the given match.
	ErrUnknownRoute = errors.New("unknown route")
	// ErrInvalid: the request itself is malformed (an empty match, no
	// previous deployment to roll back to).
	ErrInvalid = errors.New("invalid request")
	// ErrUnchanged: Apply was given a config that means what the active
	// deployment's means, so it stored nothing. Not a failure: the
	// operation returns the active deployment with an error built by
	// Unchanged.
	ErrUnchanged = errors.New("no change")
)

// Unchanged is the error Apply returns when deployment active already
// serves the config it was given: "no change: deployment 3 is already
// active". It matches ErrUnchanged with errors.Is.
func Unchanged(active uint64) error {
	return errorf(ErrUnchanged, "no change: deployment %d is already active", active)
}

// opError is an operator-facing message that still matches a sentinel with
// errors.Is.
type opError struct {
	kind error
	msg  string
}

func (e *opError) Error() string { return e.msg }
func (e *opError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &opError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// ActivateError reports a deployment that was stored (and is the active one
// in the store) but that the local data plane failed to activate. The stored
// deployment stays the record: other nodes watching the store will serve it,
// and this node serves it once the cause is fixed and it is activated again
// (a restart, or the next deployment).
type ActivateError struct {
	Deployment Deployment
	Err        error
}

func (e *ActivateError) Error() string {
	return fmt.Sprintf("deployment %d is stored and active in the store, but activating it on this node failed: %v", e.Deployment.ID, e.Err)
}

func (e *ActivateError) Unwrap() error { return e.Err }

// Service implements the deployment operations shared by the admin API, the
// CLI (through the API) and the rollout controller. Each operation validates
// the config first, so only valid configs are ever stored, then stores a new
// deployment and activates it locally.
//
// Operations on one Service are serialised: a route switch reads the active
// config and writes an edited copy, and two concurrent switches must not
// lose one another's edit. With several Services on one store (a fleet) that
// read-modify-write is not atomic across nodes.
type Service struct {
	// Store keeps the deployments. Required.
	Store Store
	// Activate is the local data plane: it compiles and swaps the route
	// table. It is called after the deployment is stored, so that when an
	// operation returns, the new deployment is already served here. cfg has
	// been parsed and validated, without defaults applied. Nil means no
	// local data plane (tests, a pure control-plane node).
	Activate func(ctx context.Context, d Deployment, cfg *config.Config) error
	// Now returns the deployment time. Default time.Now.
	Now func() time.Time

	mu sync.Mutex
	// applied is the settings of the deployment Apply last stored, so the
	// next Apply compares against it without parsing the active config
	// again (a 10,000-route config takes ~100 ms to parse).
	applied struct {
		id       uint64
		settings []byte
	}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// create stores a deployment of source (already validated as cfg), made
// from deployment prev, and activates it. The caller holds s.mu, so
// activations happen in id order.
func (s *Service) create(ctx context.Context, prev uint64, source, author, message, cause string, cfg *config.Config) (Deployment, error) {
	d, err := s.Store.Create(ctx, prev, Deployment{
		Config:  source,
		Author:  author,
		Message: message,
		Cause:   cause,
		Time:    s.now(),
	})
	if err != nil {
		return Deployment{}, err
	}
	if s.Activate != nil {
		if err := s.Activate(ctx, d, cfg); err != nil {
			return d, &ActivateError{Deployment: d, Err: err}
		}
	}
	return d, nil
}

// Apply validates source and, when it is valid, stores it as a new active
// deployment with cause "apply" and activates it. An invalid config changes
// nothing and returns the config.ErrorList from config.Parse unchanged.
// fileName is used in error positions only.
//
// A config with the active deployment's settings — compared with defaults
// applied, so comments, layout and defaults spelled out do not count, while
// any setting and the order of origins, functions and routes do — is not
// stored: Apply
// returns the active deployment and Unchanged(its id), so re-running the
// same apply (a script, `make quickstart` on a kept store) does not grow the
// history. The active deployment is still handed to Activate, which serves
// it if this node does not yet (its activation failed earlier).
func (s *Service) Apply(ctx context.Context, source []byte, fileName, author, message string) (Deployment, error) {
	cfg, err := config.Parse(fileName, source)
	if err != nil {
		return Deployment{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	active, err := s.Store.Active(ctx)
	if errors.Is(err, ErrNotFound) {
		return s.create(ctx, 0, string(source), author, message, "apply", cfg)
	}
	if err != nil {
		return Deployment{}, fmt.Errorf("apply: %w", err)
	}
	next := settings(cfg)
	if string(source) == active.Config || next != nil && bytes.Equal(next, s.settings(active)) {
		if s.Activate != nil {
			if err := s.Activate(ctx, active, cfg); err != nil {
				return active, &ActivateError{Deployment: active, Err: err}
			}
		}
		return active, Unchanged(active.ID)
	}
	d, err := s.create(ctx, active.ID, string(source), author, message, "apply", cfg)
	if d.ID != 0 {
		s.applied.id, s.applied.settings = d.ID, next
	}
	return d, err
}

// settings is what a config sets, for telling whether two configs differ:
// its JSON with defaults applied. Every setting has a JSON form, and what
// JSON leaves out is only where a value was written (Pos), so comments,
// layout and defaults spelled out do not count, while any setting and the
// order of origins, functions and routes do. (diffConfigs describes changes
// for people and leaves some route settings out.) Nil when it cannot be
// encoded, which compares unequal to any config.
func settings(cfg *config.Config) []byte {
	b, err := json.Marshal(cfg.WithDefaults())
	if err != nil {
		return nil
	}
	return b
}

// settings returns the settings of deployment d: remembered when this
// Service stored it, parsed from its config otherwise (nil when that config
// no longer parses, so that anything is a change from it). The caller holds
// s.mu.
func (s *Service) settings(d Deployment) []byte {
	if d.ID == s.applied.id && s.applied.settings != nil {
		return s.applied.settings
	}
	cfg, err := config.Parse(configName(d.ID), []byte(d.Config))
	if err != nil {
		return nil
	}
	return settings(cfg)
}

// Rollback stores a new deployment whose config is that of deployment to,
// with cause "rollback to N", and activates it.
//
// to == 0 means the previous deployment, defined as the one whose id is one
// below the active id. Rolling back twice therefore toggles between the two
// latest configs — rollback, then rollback again undoes the rollback — which
// is what an operator typing `turnout rollback` twice expects. To go further
// back, name the id.
//
// Rolling back to the active deployment itself is refused (ErrConflict);
// to a missing id returns an error wrapping ErrNotFound.
func (s *Service) Rollback(ctx context.Context, to uint64, author, message string) (Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	active, err := s.Store.Active(ctx)
	if err != nil {
		return Deployment{}, fmt.Errorf("rollback: %w", err)
	}
	if to == 0 {
		if active.ID <= 1 {
			return Deployment{}, errorf(ErrInvalid, "rollback: deployment %d is the first one; there is nothing before it", active.ID)
		}
		to = active.ID - 1
	}
	if to == active.ID {
		return Deployment{}, errorf(ErrConflict, "rollback: deployment %d is the active deployment", to)
	}
	target, err := s.Store.Get(ctx, to)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Deployment{}, errorf(ErrNotFound, "rollback: deployment %d does not exist (the latest is %d; see `turnout history`)", to, active.ID)
		}
		return Deployment{}, fmt.Errorf("rollback to %d: %w", to, err)
	}
	// The config was valid when stored; validate again so that a config the
	// current version no longer accepts never reaches the data plane.
	cfg, err := config.Parse(configName(to), []byte(target.Config))
	if err != nil {
		return Deployment{}, err
	}
	return s.create(ctx, active.ID, target.Config, author, message, "rollback to "+strconv.FormatUint(to, 10), cfg)
}

// configName names a stored deployment's config in error positions.
func configName(id uint64) string { return "deployment-" + strconv.FormatUint(id, 10) + ".yaml" }

// Seed makes source deployment 1, with cause "seed from FILE", when the
// store is empty, returning it and true. Otherwise it returns the active
// deployment and false, leaving the store alone: once a store holds
// deployments, they, not the file, are what a node serves. Nodes of a
// fleet starting together on an empty store all seed: one wins, and the
// others return its deployment as the active one.
//
// Seed does not call Activate in either case; the caller (turnout serve)
// activates the returned deployment when it starts its data plane.
func (s *Service) Seed(ctx context.Context, source []byte, fileName string) (Deployment, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	active, err := s.Store.Active(ctx)
	if err == nil {
		return active, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Deployment{}, false, err
	}
	if _, err := config.Parse(fileName, source); err != nil {
		return Deployment{}, false, err
	}
	d, err := s.Store.Create(ctx, 0, Deployment{
		Config: string(source),
		Author: "turnout",
		Cause:  "seed from " + fileName,
		Time:   s.now(),
	})
	var conflict *ConflictError
	if errors.As(err, &conflict) && conflict.Active.ID != 0 {
		return conflict.Active, false, nil
	}
	if err != nil {
		return Deployment{}, false, err
	}
	return d, true, nil
}
