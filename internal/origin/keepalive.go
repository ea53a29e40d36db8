package origin

import "time"

// settleTime is how long after its answer a connection waits before it
// carries a request that cannot be replayed (Pool has a copy so tests can
// change it).
const settleTime = 5 * time.Millisecond

// unsafeIdle is the longest a connection may have sat idle and still carry
// a request that cannot be replayed, unless the origin announced a
// Keep-Alive timeout (Pool has a copy so tests can change it).
const unsafeIdle = time.Second

// limitMemory is how long a lesson of silentCloses is kept without a new
// close teaching it again.
const limitMemory = time.Minute

// reuseWindow is how long after an answer a connection may still carry a
// request when the origin announced "Keep-Alive: timeout=t": t less a
// margin for the round trip and the origin's timer (a quarter of t, at most
// a second), so a request never arrives as the origin closes.
func reuseWindow(t time.Duration) time.Duration {
	return t - min(t/4, time.Second)
}

// silentCloses is what an instance's unannounced closes taught. Zero fields
// are unknown. It is guarded by the instance's idleMu.
type silentCloses struct {
	uses  int64         // the fewest requests after which a connection was found closed
	idle  time.Duration // the shortest idle time after which one was found closed
	since time.Time     // when a close last taught something
}

// closedSilently records that the origin closed cc (found by the probe, or
// by a request that read nothing back) while it sat in the pool.
func (in *instance) closedSilently(cc *upConn, now time.Time) {
	idle := now.Sub(cc.lastUsed)
	in.idleMu.Lock()
	s := &in.closes
	if s.uses == 0 || cc.uses < s.uses {
		s.uses = cc.uses
	}
	if idle > 0 && (s.idle == 0 || idle < s.idle) {
		s.idle = idle
	}
	s.since = now
	in.idleMu.Unlock()
}

// survived refutes what cc's last exchange contradicts: it carried more
// requests than a connection was found closed after, or answered after a
// longer idle time.
func (s *silentCloses) survived(cc *upConn) {
	if s.uses != 0 && cc.uses > s.uses {
		s.uses = 0
	}
	if s.idle != 0 && cc.idleBefore >= s.idle {
		s.idle = 0
	}
}

// forget drops lessons older than limitMemory.
func (s *silentCloses) forget(now time.Time) {
	if !s.since.IsZero() && now.Sub(s.since) > limitMemory {
		*s = silentCloses{}
	}
}

// risky reports whether cc should not carry a request that cannot be
// replayed: its answer is too recent for a close to have shown, or it is
// of a kind the origin was seen to close.
func (s *silentCloses) risky(cc *upConn, now time.Time, p *Pool) bool {
	idle := now.Sub(cc.lastUsed)
	return idle < p.settle ||
		idle >= p.unsafeIdle && cc.expires.IsZero() ||
		s.uses != 0 && cc.uses >= s.uses ||
		s.idle != 0 && idle >= s.idle/2
}
