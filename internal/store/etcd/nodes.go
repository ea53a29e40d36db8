package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/turnout/turnout/internal/deploy"
)

// Ack writes n under nodes/<name>, attached to this Store's lease: the
// first Ack grants the lease and starts keeping it alive (the node's
// heartbeat). When the lease is lost — the node was cut off or stopped for
// longer than the TTL — the keeper grants a new one and writes the node's
// last records again, so it rejoins Nodes as soon as it reaches etcd.
func (s *Store) Ack(ctx context.Context, n deploy.Node) error {
	if n.Name == "" {
		return errors.New("ack: the node has no name")
	}
	if strings.Contains(n.Name, "/") {
		return fmt.Errorf("ack: node name %q has a /, which etcd keys use to nest", n.Name)
	}
	v, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	s.mu.Lock()
	s.acks[n.Name] = string(v)
	lease := s.lease
	s.mu.Unlock()

	rctx, cancel := s.request(ctx)
	defer cancel()
	if lease == 0 {
		if lease, err = s.renew(rctx, 0); err != nil {
			return s.fail(rctx, "ack", err)
		}
	}
	_, err = s.client.Put(rctx, s.nodesPrefix()+n.Name, string(v), clientv3.WithLease(lease))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		// Expired before the keeper noticed: take a new one now.
		if lease, err = s.renew(rctx, lease); err == nil {
			_, err = s.client.Put(rctx, s.nodesPrefix()+n.Name, string(v), clientv3.WithLease(lease))
		}
	}
	if err != nil {
		return s.fail(rctx, fmt.Sprintf("ack deployment %d", n.Deployment), err)
	}
	return nil
}

// renew grants a new lease in place of old (0: none yet), writes every
// record of this node under it and, for the first lease, starts the
// keeper. When another caller already replaced old, it returns that lease.
func (s *Store) renew(ctx context.Context, old clientv3.LeaseID) (clientv3.LeaseID, error) {
	s.renewMu.Lock()
	defer s.renewMu.Unlock()
	if s.ctx.Err() != nil {
		return 0, errors.New("the store is closed")
	}
	s.mu.Lock()
	cur := s.lease
	s.mu.Unlock()
	if cur != old {
		return cur, nil
	}
	grant, err := s.client.Grant(ctx, s.leaseTTL)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.lease = grant.ID
	recs := make(map[string]string, len(s.acks))
	for k, v := range s.acks {
		recs[k] = v
	}
	s.mu.Unlock()
	for name, v := range recs {
		if _, err := s.client.Put(ctx, s.nodesPrefix()+name, v, clientv3.WithLease(grant.ID)); err != nil {
			return 0, err
		}
	}
	if old == 0 {
		s.wg.Add(1)
		go s.keep()
	}
	return grant.ID, nil
}

// keep keeps this node's lease alive until the store closes, renewing it
// when it is lost.
func (s *Store) keep() {
	defer s.wg.Done()
	backoff := resyncMinBackoff
	for s.ctx.Err() == nil {
		s.mu.Lock()
		lease := s.lease
		s.mu.Unlock()
		// The channel closes when the lease expires (no answer from etcd
		// for a TTL, or etcd says it is gone) or the store closes.
		if ch, err := s.client.KeepAlive(s.ctx, lease); err == nil {
			for range ch {
				backoff = resyncMinBackoff
				s.answered.Store(time.Now().UnixNano())
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		ctx, cancel := s.request(s.ctx)
		_, err := s.renew(ctx, lease)
		cancel()
		if err != nil && !sleep(s.ctx, backoff) {
			return
		}
		backoff = min(2*backoff, resyncMaxBackoff)
	}
}

// Nodes returns the nodes whose lease is alive, sorted by name.
func (s *Store) Nodes(ctx context.Context) ([]deploy.Node, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.client.Get(rctx, s.nodesPrefix(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, s.fail(rctx, "list nodes", err)
	}
	out := make([]deploy.Node, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var n deploy.Node
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			return nil, fmt.Errorf("decode node %s: %w", kv.Key, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Connected reports whether etcd keeps this node's lease alive: a
// keep-alive answer (one every third of the lease TTL) came within the last
// two thirds of it. Before the node's first Ack there is no lease, and it
// reports whether Open could talk to etcd at all.
func (s *Store) Connected() bool {
	last := s.answered.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < time.Duration(s.leaseTTL)*time.Second*2/3
}
