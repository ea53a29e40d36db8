package admin

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
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
	failClients = 10000           // addresses tracked; see lockout
	// evictProbe is how many of the least recently seen addresses a new
	// one may pass over, when they are locked out, to find one to forget.
	evictProbe = 16
)

// lockout tracks failed authentications by client address, up to
// failClients addresses. When the table is full, a new address replaces
// the least recently seen one (a request from an address, refused or not,
// counts as seeing it) — unless that one is still locked out: then it is
// kept as if just seen and the next oldest is considered, up to evictProbe
// of them. So a client cycling through source addresses (an IPv6 prefix
// holds plenty) cannot wipe a lockout: each address it spends buys it only
// its own failBurst attempts, and pushing out locked-out addresses would
// need the whole table locked out first, failBurst failures per address.
// (Until issue 13 the table was cleared whole when full, lockouts and all.)
type lockout struct {
	mu sync.Mutex
	m  *simplelru.LRU[netip.Addr, *rate.Limiter] // nil until the first failure
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
	if l.m == nil {
		return 0
	}
	lim, _ := l.m.Get(clientAddr(remote)) // seen: moves it to the front
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
	if l.m == nil {
		l.m, _ = simplelru.NewLRU[netip.Addr, *rate.Limiter](failClients, nil) // only fails for a size <= 0
	}
	lim, ok := l.m.Get(a)
	if !ok {
		if l.m.Len() >= failClients {
			l.forgetOne(now)
		}
		lim = rate.NewLimiter(rate.Every(failEvery), failBurst)
		l.m.Add(a, lim)
	}
	lim.AllowN(now, 1)
}

// forgetOne makes room for one address: it drops the least recently seen
// one that is not locked out, passing over (and keeping, as if just seen)
// up to evictProbe locked-out ones; past those it drops the next oldest,
// locked out or not.
func (l *lockout) forgetOne(now time.Time) {
	for range evictProbe {
		a, lim, _ := l.m.GetOldest()
		if lim.TokensAt(now) >= 1 {
			break
		}
		l.m.Get(a) // still locked out: keep it, move it to the front
	}
	l.m.RemoveOldest()
}

// len is how many addresses the table tracks.
func (l *lockout) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		return 0
	}
	return l.m.Len()
}
