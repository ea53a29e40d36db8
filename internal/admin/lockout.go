package admin

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed authentications (a wrong token; a missing one is not a guess) are
// limited per client address: a client may fail failBurst times at once and
// then once per failEvery; past that every
// request from it — a right token included — gets 429 until the bucket
// refills, so guessing tokens cannot go faster than that. Tokens are 256
// random bits, so this is defence in depth, and it keeps a guessing client
// from filling the audit trail's rate-limited share.
const (
	failBurst   = 20
	failEvery   = 6 * time.Second // 10 a minute once the burst is spent
	failClients = 10000           // addresses tracked; past it the table starts afresh
)

// lockout tracks failed authentications by client address.
type lockout struct {
	mu sync.Mutex
	m  map[netip.Addr]*rate.Limiter
}

func clientAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// wait is how long the client at remote must wait before it may try again;
// 0 when it may try now.
func (l *lockout) wait(remote string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[clientAddr(remote)]
	if lim == nil || lim.TokensAt(now) >= 1 {
		return 0
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// fail records a failed authentication from remote.
func (l *lockout) fail(remote string, now time.Time) {
	a := clientAddr(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[a]
	if lim == nil {
		if l.m == nil || len(l.m) >= failClients {
			l.m = make(map[netip.Addr]*rate.Limiter)
		}
		lim = rate.NewLimiter(rate.Every(failEvery), failBurst)
		l.m[a] = lim
	}
	lim.AllowN(now, 1)
}
