package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/deploy"
)

// Bounds of a mutation's wait=1.
const (
	// DefaultWaitTimeout is how long a mutation with wait=1 waits for the
	// nodes' acks when it names no wait_timeout.
	DefaultWaitTimeout = 30 * time.Second
	// MaxWaitTimeout is the longest wait_timeout accepted.
	MaxWaitTimeout = 10 * time.Minute
	// waitInterval is how often a wait reads the nodes' acks.
	waitInterval = 20 * time.Millisecond
)

// Fleet is the answer to GET /api/v1/nodes: the live nodes and what they
// serve.
type Fleet struct {
	// Active is the fleet's active deployment, 0 when there is none.
	Active uint64 `json:"active"`
	// Nodes are the live nodes (those heartbeating to the store), sorted
	// by name.
	Nodes []NodeStatus `json:"nodes"`
}

// NodeStatus is one live node: its record in the store and how far it is
// behind the fleet.
type NodeStatus struct {
	deploy.Node
	// Lag is how many deployments the node is behind the fleet's active
	// one: 0 when it serves it.
	Lag uint64 `json:"lag"`
}

// Applied is the answer to a mutation (apply, rollback, route off/on): the
// deployment it made (201), and with wait=1 how it reached the live nodes.
//
// An apply of a config with the active deployment's settings (comments and
// layout aside) stores nothing: the answer is 200 with the active
// deployment, Unchanged true and Detail saying so ("no change: deployment
// 3 is already active").
type Applied struct {
	deploy.Deployment
	Unchanged bool   `json:"unchanged,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// Propagation is set with wait=1.
	Propagation *deploy.Propagation `json:"propagation,omitempty"`
}

func (s *Server) fleet(r *http.Request) (any, error) {
	ctx := r.Context()
	var f Fleet
	active, err := s.store.Active(ctx)
	switch {
	case err == nil:
		f.Active = active.ID
	case !errors.Is(err, deploy.ErrNotFound):
		return nil, err
	}
	nodes, err := s.store.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	f.Nodes = make([]NodeStatus, 0, len(nodes))
	for _, n := range nodes {
		ns := NodeStatus{Node: n}
		if f.Active > n.Deployment {
			ns.Lag = f.Active - n.Deployment
		}
		f.Nodes = append(f.Nodes, ns)
	}
	return f, nil
}

// waitOf parses a mutation's wait=1 and wait_timeout=DURATION: 0 when it
// does not wait.
func waitOf(r *http.Request) (time.Duration, error) {
	q := r.URL.Query()
	w, t := q.Get("wait"), q.Get("wait_timeout")
	on := false
	if w != "" {
		var err error
		if on, err = strconv.ParseBool(w); err != nil {
			return 0, badRequest("query parameter wait=%q: want 1 or 0", w)
		}
	}
	if t == "" {
		if on {
			return DefaultWaitTimeout, nil
		}
		return 0, nil
	}
	if !on {
		return 0, badRequest("query parameter wait_timeout needs wait=1")
	}
	d, err := time.ParseDuration(t)
	if err != nil || d <= 0 || d > MaxWaitTimeout {
		return 0, badRequest("query parameter wait_timeout=%q: want a duration like 30s, above 0 and at most %v", t, MaxWaitTimeout)
	}
	return d, nil
}

// propagationError is a wait that ended with a node that refused the
// deployment or did not ack it in time.
type propagationError struct {
	status int
	msg    string
}

func (e *propagationError) Error() string { return e.msg }

// await waits up to timeout for every live node to ack or refuse d. The
// error, when not nil, is a *propagationError: 502 when a node refused d,
// 504 when a node did not ack it in time (or the store could not be read).
func (s *Server) await(ctx context.Context, d deploy.Deployment, timeout time.Duration) (deploy.Propagation, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p, err := deploy.AwaitAcks(ctx, s.store, d, waitInterval)
	var msgs []string
	for _, a := range p.Nodes {
		if a.State == deploy.AckRefused {
			msgs = append(msgs, fmt.Sprintf("node %s refused it (it still serves deployment %d): %s", a.Name, a.Deployment, a.Error))
		}
	}
	status := http.StatusBadGateway
	switch {
	case err != nil && len(p.Waiting) == 0 && len(p.Nodes) == 0:
		// Not one read of the nodes succeeded.
		msgs = append(msgs, fmt.Sprintf("no acks read in %v: %v", timeout, err))
		status = http.StatusGatewayTimeout
	case err != nil:
		msgs = append(msgs, fmt.Sprintf("not acked in %v by %s", timeout, strings.Join(p.Waiting, ", ")))
		if errors.Is(err, deploy.ErrUnavailable) {
			msgs[len(msgs)-1] += fmt.Sprintf(" (%v)", err)
		}
		if len(p.Refused) == 0 {
			status = http.StatusGatewayTimeout
		}
	}
	if len(msgs) == 0 {
		return p, nil
	}
	return p, &propagationError{status: status, msg: fmt.Sprintf("deployment %d is stored and active, but %s", d.ID, strings.Join(msgs, "; "))}
}
