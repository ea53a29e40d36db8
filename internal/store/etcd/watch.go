package etcd

import (
	"context"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Resync backoff: after a failed read or a broken watch, Watch waits
// before reading again, doubling up to the maximum while etcd stays away.
const (
	resyncMinBackoff = 100 * time.Millisecond
	resyncMaxBackoff = 2 * time.Second
)

// Watch sends the active deployment id at start (when the store is not
// empty) and whenever it changes, until ctx ends or the store is closed; the
// channel is then closed. It has room for one id: a slow receiver misses
// intermediate ids but always gets the latest.
//
// It reads the active key, then watches it from the revision of that read.
// When the watch breaks — the member it is on loses its leader, or etcd
// compacted its history past the watch's revision while the node was away —
// it reads the key afresh and watches again, so a node that was cut off
// ends on the latest deployment, never on a stale one. While etcd is
// unreachable it keeps trying, and the channel stays open.
func (s *Store) Watch(ctx context.Context) <-chan uint64 {
	out := make(chan uint64, 1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer stop()
		defer cancel()
		s.watch(ctx, out)
	}()
	return out
}

func (s *Store) watch(ctx context.Context, out chan uint64) {
	var last uint64
	send := func(id uint64) {
		if id == 0 || id == last {
			return
		}
		last = id
		// Latest wins: this goroutine is the only sender, so after dropping
		// an unread id the send cannot block.
		select {
		case <-out:
		default:
		}
		out <- id
	}
	backoff := resyncMinBackoff
	for ctx.Err() == nil {
		id, rev, err := s.activeID(ctx)
		if err != nil {
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, resyncMaxBackoff)
			continue
		}
		send(id)
		if s.beforeWatch != nil {
			s.beforeWatch(rev)
		}
		// WithRequireLeader: a member cut off from its cluster ends the
		// watch instead of keeping it open with nothing to say.
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range s.client.Watch(wctx, s.activeKey(), clientv3.WithRev(rev+1)) {
			if resp.Err() != nil {
				break // compacted, or cancelled: read afresh
			}
			backoff = resyncMinBackoff
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				if id, err := strconv.ParseUint(string(ev.Kv.Value), 10, 64); err == nil {
					send(id)
				}
			}
		}
		wcancel()
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, resyncMaxBackoff)
	}
}

// sleep waits d, or less if ctx ends first; it reports whether ctx is
// still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
