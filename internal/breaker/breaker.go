// Package breaker is a circuit breaker for one route's primary target: it
// says whether the next request may go to the target (OK) and learns from
// how each one went (Record), the two-method shape of Caddy's
// reverseproxy.CircuitBreaker. It knows nothing of HTTP; the gateway decides
// what counts as a failure.
package breaker

import (
	"sync"
	"time"
)

// State is where a breaker stands. Its value is turnout_breaker_state's.
type State int

const (
	// Closed: requests go to the target.
	Closed State = iota
	// Open: requests are kept from the target until the cooldown ends.
	Open
	// HalfOpen: one probe request at a time goes to the target.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// Result is what one request that went to the target says about it.
type Result int

const (
	// Success: the target answered.
	Success Result = iota
	// Failure: the target failed; it counts against it.
	Failure
	// Inconclusive: the request reached the target but says nothing about
	// it — the client went away, the target was at its concurrency limit,
	// the request was bad. Nothing is counted; in half-open the probe slot
	// is freed so that the next request probes instead (without that the
	// breaker would wait for a verdict that never comes and keep the route
	// on its fallback for good).
	Inconclusive
)

// The thresholds: Envoy's consecutive-5xx default and the common
// 50 %-over-10 s failure rate.
const (
	consecutiveMax = 5               // failures in a row that open the breaker
	minRequests    = 20              // requests in the window before the rate counts
	failureRate    = 0.5             // failed share of the window that opens it
	cooldown       = 5 * time.Second // open → half-open
	probes         = 3               // probe successes in a row that close it
)

// Breaker is one target's circuit breaker. It opens when the target fails
// consecutiveMax times in a row, or when at least minRequests in the last
// 10 s failed at failureRate or more. After cooldown it lets probe requests
// through one at a time; probes successes in a row close it, one failure
// opens it again. The zero value is a closed breaker nobody is told about.
// It is safe for concurrent use.
type Breaker struct {
	onChange func(from, to State)
	now      func() time.Time // time.Now; tests set it

	mu          sync.Mutex
	state       State
	openedAt    time.Time
	consecutive int
	buckets     [10]bucket // one per second of the window
	probing     bool       // a half-open probe is in flight
	probeOK     int
}

type bucket struct {
	sec        int64
	ok, failed int
}

// New returns a closed breaker. onChange, when not nil, is told of every
// transition; it runs with the breaker locked, so it must be quick and must
// not call the breaker.
func New(onChange func(from, to State)) *Breaker {
	return &Breaker{onChange: onChange}
}

func (b *Breaker) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// OK reports whether a request may go to the target now. In half-open it
// hands out the one probe slot; the caller that got it must Record how the
// probe went, whatever the Result.
func (b *Breaker) OK() bool {
	now := b.clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Closed:
		return true
	case Open:
		if now.Sub(b.openedAt) < cooldown {
			return false
		}
		b.set(HalfOpen)
		b.probeOK = 0
		fallthrough
	default: // half-open: one probe at a time
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
}

// Record tells the breaker how a request that OK let through went. A
// request OK refused must not be recorded.
func (b *Breaker) Record(r Result) {
	now := b.clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == HalfOpen {
		b.probing = false
		switch r {
		case Failure:
			b.open(now)
		case Success:
			if b.probeOK++; b.probeOK >= probes {
				b.set(Closed)
				b.consecutive = 0
				b.buckets = [10]bucket{}
			}
		}
		return
	}
	if r == Inconclusive {
		return
	}
	sec := now.Unix()
	bk := &b.buckets[sec%int64(len(b.buckets))]
	if bk.sec != sec {
		*bk = bucket{sec: sec}
	}
	if r == Success {
		bk.ok++
		b.consecutive = 0
		return
	}
	bk.failed++
	b.consecutive++
	if b.state != Closed {
		return
	}
	total, failed := 0, 0
	for _, x := range b.buckets {
		if sec-x.sec < int64(len(b.buckets)) {
			total += x.ok + x.failed
			failed += x.failed
		}
	}
	if b.consecutive >= consecutiveMax || total >= minRequests && float64(failed) >= failureRate*float64(total) {
		b.open(now)
	}
}

// State returns where the breaker stands.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *Breaker) open(now time.Time) {
	b.openedAt = now
	b.set(Open)
}

func (b *Breaker) set(s State) {
	if b.state != s && b.onChange != nil {
		b.onChange(b.state, s)
	}
	b.state = s
}
