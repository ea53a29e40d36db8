package deploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// What a live node has done with a deployment, as NodeAck.State says it.
const (
	// AckDone: the node serves the deployment, or a later one.
	AckDone = "acked"
	// AckRefused: the node could not compile it (a NACK) and still serves
	// an earlier one.
	AckRefused = "refused"
	// AckWaiting: the node has not acknowledged it yet.
	AckWaiting = "waiting"
)

// NodeAck is where one live node stands with one deployment.
type NodeAck struct {
	Name     string `json:"name"`
	AdminURL string `json:"admin_url,omitempty"`
	// State is AckDone, AckRefused or AckWaiting.
	State string `json:"state"`
	// Deployment is the deployment the node serves.
	Deployment uint64 `json:"deployment"`
	// PropagationMS is how long the deployment took to reach the node: its
	// AppliedAt minus the deployment's Time, in milliseconds. It is set
	// when the node acked this very deployment (not a later one). The two
	// times come from two clocks when the node is not the one that made
	// the deployment: clock skew between machines shows in it.
	PropagationMS *float64 `json:"propagation_ms,omitempty"`
	// Error is why the node refused the deployment.
	Error string `json:"error,omitempty"`
}

// Propagation is how far one deployment has reached the live nodes.
type Propagation struct {
	Deployment uint64 `json:"deployment"`
	// Nodes are every live node, sorted by name.
	Nodes []NodeAck `json:"nodes"`
	// Waiting and Refused name the nodes in those states, sorted.
	Waiting []string `json:"waiting,omitempty"`
	Refused []string `json:"refused,omitempty"`
}

// Settled reports whether every live node has acked or refused the
// deployment: waiting longer changes nothing.
func (p Propagation) Settled() bool { return len(p.Waiting) == 0 }

// PropagationOf says where each of nodes (as Store.Nodes returns them)
// stands with d. A node serving d or a later deployment has acked it;
// one that refused d or a later one without serving d has refused it.
func PropagationOf(d Deployment, nodes []Node) Propagation {
	p := Propagation{Deployment: d.ID, Nodes: make([]NodeAck, 0, len(nodes))}
	for _, n := range nodes {
		a := NodeAck{Name: n.Name, AdminURL: n.AdminURL, Deployment: n.Deployment, State: AckWaiting}
		switch {
		case n.Deployment >= d.ID:
			a.State = AckDone
			if n.Deployment == d.ID && !n.AppliedAt.IsZero() && !d.Time.IsZero() {
				ms := math.Round(float64(n.AppliedAt.Sub(d.Time))/float64(time.Millisecond)*10) / 10
				a.PropagationMS = &ms
			}
		case n.Refused >= d.ID:
			a.State, a.Error = AckRefused, n.Error
			p.Refused = append(p.Refused, n.Name)
		default:
			p.Waiting = append(p.Waiting, n.Name)
		}
		p.Nodes = append(p.Nodes, a)
	}
	return p
}

// AwaitAcks reads st.Nodes until every live node has acked or refused d,
// and returns where they stand. It reads again 2 ms later, then waits
// twice as long before each next read, up to interval: most acks come
// within a few ms of the deployment, and a slow node costs one read per
// interval. When ctx ends first, it returns what it saw last and an error
// saying so (with the store's error, when the last reads failed). A node
// that leaves the fleet meanwhile (its lease expired) is no longer waited
// for; one that joins is.
func AwaitAcks(ctx context.Context, st Store, d Deployment, interval time.Duration) (Propagation, error) {
	pause := min(2*time.Millisecond, interval)
	timer := time.NewTimer(pause)
	defer timer.Stop()
	p := Propagation{Deployment: d.ID, Nodes: []NodeAck{}}
	var lastErr error
	for {
		nodes, err := st.Nodes(ctx)
		switch {
		case err == nil:
			p, lastErr = PropagationOf(d, nodes), nil
			if p.Settled() {
				return p, nil
			}
		case ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			err := ctx.Err()
			if lastErr != nil {
				err = errors.Join(err, fmt.Errorf("listing the nodes: %w", lastErr))
			}
			return p, err
		case <-timer.C:
		}
		pause = min(2*pause, interval)
		timer.Reset(pause)
	}
}
