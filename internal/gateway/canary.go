package gateway

import (
	"math"
	"math/bits"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/metrics"
)

// splitBuckets is the split's resolution: a request's sticky key hashes
// to one of 10,000 buckets, and the buckets below the weight (in
// hundredths of a percent) are the canary's. A weight of 0.01 % is one
// bucket.
const splitBuckets = 10000

// canary is a route's second target (config.Canary): side is what serves
// its requests, weight how many of the splitBuckets go to it.
//
// The split is a pure function of the request's sticky key and the
// weight, with no state: every node, and the same node after a restart,
// puts a client on the same side, and since the canary's buckets are
// those below the weight, raising it (5 % → 25 %) only moves clients into
// the canary, never out. It takes no lock and allocates nothing.
type canary struct {
	side
	weight uint32 // of splitBuckets; 0 keeps everything on the primary
	// The sticky key: the client's address (stickyIP), a request header
	// (name canonical) or a cookie; without it, the address.
	sticky string
	name   string

	metrics  *metrics.Metrics
	observer atomic.Pointer[metrics.Split] // the route's per-side children, on first request
	compare  *comparison                   // both sides' counts, for judging the canary
}

// setSplit sets c's weight and sticky key from its configuration; c.side
// is already built.
func (c *canary) setSplit(cfg config.Canary) {
	// Parse keeps Weight within 0–100; a hand-built value is clamped.
	c.weight = uint32(min(max(math.Round(cfg.Weight*splitBuckets/100), 0), splitBuckets))
	c.sticky, c.name = cfg.StickyKey()
	if c.sticky == config.StickyHeader {
		c.name = http.CanonicalHeaderKey(c.name)
	}
	c.servedByValue = []string{c.target() + "; canary"}
}

// pick returns the side r goes to.
func (c *canary) pick(r *http.Request) turnout.Side {
	switch {
	case c.weight == 0:
		return turnout.Baseline
	case c.weight >= splitBuckets || bucket(c.key(r)) < c.weight:
		return turnout.Canary
	}
	return turnout.Baseline
}

// key returns r's sticky key: the header's first value or the cookie's
// value when the route is sticky on one and r has it, else the client's
// address (the connection's peer, as a function's sourceIp is).
func (c *canary) key(r *http.Request) string {
	switch c.sticky {
	case config.StickyHeader:
		if v := r.Header[c.name]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	case config.StickyCookie:
		if v, ok := cookieValue(r.Header["Cookie"], c.name); ok && v != "" {
			return v
		}
	}
	return peerHost(r.RemoteAddr)
}

// bucket maps key to one of splitBuckets, the same on every node and
// every run: FNV-1a (fixed, unlike maphash's per-process seed) finished
// with MurmurHash3's fmix64 so that keys differing in their last bytes
// (10.0.0.1, 10.0.0.2) spread over all the bits, then scaled to the
// buckets by multiply-shift (Lemire), which has no modulo bias worth
// speaking of. hash/fnv is not used as its Write takes a []byte, and the
// conversion of a request's key would allocate.
func bucket(key string) uint32 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime64
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	hi, _ := bits.Mul64(h, splitBuckets)
	return uint32(hi)
}

// peerHost is the host part of a RemoteAddr ("192.0.2.1:1234",
// "[2001:db8::1]:1234"), without allocating; remote itself when it has no
// port.
func peerHost(remote string) string {
	i := strings.LastIndexByte(remote, ':')
	if i < 0 || strings.IndexByte(remote[i:], ']') >= 0 {
		return remote
	}
	host := remote[:i]
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host
}

// cookieValue finds cookie name in a request's Cookie header lines
// without allocating (http.Request.Cookie parses every cookie into a
// new value): the first "name=value" pair, its value unquoted.
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// observe counts one request of the route on side s in its per-side
// series (turnout_canary_requests_total and its duration), the numbers a
// rollout compares.
func (c *canary) observe(pattern string, s turnout.Side, o turnout.Outcome, seconds float64) {
	sp := c.observer.Load()
	if sp == nil {
		sp = c.metrics.Split(pattern)
		c.observer.Store(sp)
	}
	sp.Observe(s, o, seconds)
}
