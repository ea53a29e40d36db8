package dashboard

import (
	"sync"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/histogram"
)

const (
	// Window is how far back the live series reach: one bucket per second.
	Window = 300
	// DefaultMaxKeys bounds the (route, target) pairs a Live keeps; past it
	// new pairs are counted under OverflowRoute/OverflowTarget.
	DefaultMaxKeys = 2000
	// OverflowRoute and OverflowTarget name the series that collects the
	// pairs beyond MaxKeys.
	OverflowRoute  = "(other routes)"
	OverflowTarget = "(other)"
)

// latencyBounds are the upper bounds, in milliseconds, of the per-second
// latency histogram; a last, unbounded bucket follows. Percentiles are
// interpolated within a bucket, so they are estimates: close enough to see
// a p99 move on a chart, not a benchmark figure.
var latencyBounds = [...]float64{0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

const histBuckets = len(latencyBounds) + 1

var latencyLayout = histogram.Bounds(latencyBounds[:])

// bucket is one second of one series.
type bucket struct {
	sec                                                               int64
	requests, errors, fallbacks, throttles, breakerOpen, clientClosed uint32
	hist                                                              [histBuckets]uint32
}

func (b *bucket) add(o *bucket) {
	b.requests += o.requests
	b.errors += o.errors
	b.fallbacks += o.fallbacks
	b.throttles += o.throttles
	b.breakerOpen += o.breakerOpen
	b.clientClosed += o.clientClosed
	for i := range b.hist {
		b.hist[i] += o.hist[i]
	}
}

// series is the ring of one (route, target) pair. Its own mutex keeps
// writers of different pairs from contending.
type series struct {
	mu   sync.Mutex
	ring [ringSize]bucket
}

// ringSize holds Window complete seconds and the current one.
const ringSize = Window + 1

type seriesKey struct{ route, target string }

// Live keeps per-second counters and latency histograms per route and
// target for the last Window seconds, for the dashboard's charts. Observe
// is safe for concurrent use and cheap enough for the request path: a
// read-locked map lookup and a per-pair mutex, no allocation once a pair
// is known.
type Live struct {
	maxKeys int
	now     func() time.Time

	mu       sync.RWMutex
	series   map[seriesKey]*series
	overflow *series
}

// NewLive returns an empty Live keeping at most maxKeys (route, target)
// pairs (DefaultMaxKeys when maxKeys <= 0).
func NewLive(maxKeys int) *Live {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Live{maxKeys: maxKeys, now: time.Now, series: make(map[seriesKey]*series, 64), overflow: &series{}}
}

// Observe counts one answered request. o is not retained.
func (l *Live) Observe(o *turnout.Observation) {
	if o == nil || o.Outcome == turnout.Rejected {
		return // refused before routing: no route to chart
	}
	end := l.now()
	if !o.Time.IsZero() {
		end = o.Time.Add(o.Duration)
	}
	sec := end.Unix()
	s := l.seriesFor(seriesKey{o.Route, o.Target})

	s.mu.Lock()
	b := &s.ring[sec%ringSize]
	switch {
	case b.sec == sec:
	case b.sec < sec:
		*b = bucket{sec: sec}
	default:
		// Older than the ring reaches (a request longer than the window):
		// its second has been overwritten already.
		s.mu.Unlock()
		return
	}
	b.requests++
	if o.Status >= 500 {
		b.errors++
	}
	// A request the breaker kept from the primary, or a throttled one that
	// spilled over, was answered by the fallback: it counts as a fallback
	// and under its reason.
	if o.Outcome == turnout.Fallback || o.Outcome == turnout.BreakerOpen {
		b.fallbacks++
	}
	if o.Outcome == turnout.Throttled || o.Reason == turnout.ReasonThrottled {
		b.throttles++
	}
	if o.Outcome == turnout.BreakerOpen || o.Reason == turnout.ReasonBreakerOpen {
		b.breakerOpen++
	}
	// A client that went away is its own figure: not an error (status
	// 499 is below 500) and not the backend's doing.
	if o.Outcome == turnout.ClientClosed {
		b.clientClosed++
	}
	b.hist[latencyIndex(o.Duration)]++
	s.mu.Unlock()
}

func latencyIndex(d time.Duration) int {
	return latencyLayout.Index(float64(d) / float64(time.Millisecond))
}

func (l *Live) seriesFor(k seriesKey) *series {
	l.mu.RLock()
	s := l.series[k]
	l.mu.RUnlock()
	if s != nil {
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s = l.series[k]; s != nil {
		return s
	}
	if len(l.series) >= l.maxKeys {
		return l.overflow
	}
	s = &series{}
	l.series[k] = s
	return s
}

// Points is the answer of GET /api/v1/live: one value per second from From
// to To (Unix seconds, both included), column by column. The current,
// incomplete second is left out.
type Points struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Series are the (route, target) pairs with requests in the window.
	Series []SeriesPoints `json:"series"`
	// Routes are the same figures summed over each route's targets, with
	// percentiles from the merged histograms.
	Routes []SeriesPoints `json:"routes"`
	// Overflow is true when more pairs were seen than the series keep; the
	// rest are counted under route OverflowRoute.
	Overflow bool `json:"overflow,omitempty"`
}

// SeriesPoints are one series' values, one per second of the range.
type SeriesPoints struct {
	Route  string `json:"route"`
	Target string `json:"target,omitempty"`
	// Total is the requests over the range.
	Total uint64 `json:"total"`
	// Fallbacks counts requests the fallback answered, whatever the reason;
	// Throttles the throttled ones (spilled over or refused with 429);
	// BreakerOpen those the open breaker kept from the primary;
	// ClientClosed those whose client went away before the answer (outcome
	// client_closed, status 499), which are not errors.
	// Recent sums the last RecentWindow complete seconds, whatever the range.
	Recent       Summary  `json:"recent"`
	Requests     []uint32 `json:"requests"`
	Errors       []uint32 `json:"errors"`
	Fallbacks    []uint32 `json:"fallbacks"`
	Throttles    []uint32 `json:"throttles"`
	BreakerOpen  []uint32 `json:"breaker_open"`
	ClientClosed []uint32 `json:"client_closed"`
	// P50 and P99 are latency estimates in milliseconds; 0 in a second
	// without requests.
	P50 []float64 `json:"p50_ms"`
	P99 []float64 `json:"p99_ms"`
}

// RecentWindow is the span of SeriesPoints.Recent, in seconds.
const RecentWindow = 10

// Summary is one series over a span of seconds.
type Summary struct {
	Seconds      int     `json:"seconds"`
	Requests     uint64  `json:"requests"`
	Errors       uint64  `json:"errors"`
	Fallbacks    uint64  `json:"fallbacks"`
	Throttles    uint64  `json:"throttles"`
	BreakerOpen  uint64  `json:"breaker_open"`
	ClientClosed uint64  `json:"client_closed"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
}

// Points returns the complete seconds after since (Unix seconds; 0 or
// anything older than the window means the whole window).
func (l *Live) Points(since int64) Points {
	now := l.now().Unix()
	to := now - 1
	from := max(since+1, now-Window)
	out := Points{From: from, To: to, Series: []SeriesPoints{}, Routes: []SeriesPoints{}}
	if from > to {
		out.From = to + 1
		return out
	}
	n := int(to - from + 1)
	// Scan from scan: the range and the recent window, whichever starts first.
	scan := min(from, to-RecentWindow+1)
	extra := int(from - scan)

	l.mu.RLock()
	keys := make([]seriesKey, 0, len(l.series)+1)
	all := make([]*series, 0, len(l.series)+1)
	for k, s := range l.series {
		keys = append(keys, k)
		all = append(all, s)
	}
	l.mu.RUnlock()
	keys = append(keys, seriesKey{OverflowRoute, OverflowTarget})
	all = append(all, l.overflow)

	routes := map[string][]bucket{}
	var order []string
	buf := make([]bucket, n+extra)
	for i, s := range all {
		active := false
		s.mu.Lock()
		for j := range buf {
			sec := scan + int64(j)
			b := &s.ring[sec%ringSize]
			if b.sec == sec {
				buf[j] = *b
				active = active || b.requests > 0
			} else {
				buf[j] = bucket{sec: sec}
			}
		}
		s.mu.Unlock()
		if !active {
			continue
		}
		if i == len(all)-1 {
			out.Overflow = true
		}
		k := keys[i]
		out.Series = append(out.Series, columns(k.route, k.target, buf, extra))
		agg, ok := routes[k.route]
		if !ok {
			agg = make([]bucket, len(buf))
			routes[k.route] = agg
			order = append(order, k.route)
		}
		for j := range buf {
			agg[j].add(&buf[j])
		}
	}
	for _, r := range order {
		out.Routes = append(out.Routes, columns(r, "", routes[r], extra))
	}
	sortSeries(out.Series)
	sortSeries(out.Routes)
	return out
}

// columns turns bs into a series: the points are bs[skip:]; Recent sums the
// last RecentWindow buckets.
func columns(route, target string, all []bucket, skip int) SeriesPoints {
	bs := all[skip:]
	n := len(bs)
	p := SeriesPoints{
		Route: route, Target: target,
		Requests: make([]uint32, n), Errors: make([]uint32, n), Fallbacks: make([]uint32, n),
		Throttles: make([]uint32, n), BreakerOpen: make([]uint32, n), ClientClosed: make([]uint32, n),
		P50: make([]float64, n), P99: make([]float64, n),
	}
	for i := range bs {
		b := &bs[i]
		p.Total += uint64(b.requests)
		p.Requests[i], p.Errors[i], p.Fallbacks[i] = b.requests, b.errors, b.fallbacks
		p.Throttles[i], p.BreakerOpen[i], p.ClientClosed[i] = b.throttles, b.breakerOpen, b.clientClosed
		p.P50[i], p.P99[i] = quantile(&b.hist, 0.50), quantile(&b.hist, 0.99)
	}
	var sum bucket
	recent := all[max(0, len(all)-RecentWindow):]
	for i := range recent {
		sum.add(&recent[i])
	}
	p.Recent = Summary{
		Seconds: len(recent), Requests: uint64(sum.requests), Errors: uint64(sum.errors),
		Fallbacks: uint64(sum.fallbacks), Throttles: uint64(sum.throttles), BreakerOpen: uint64(sum.breakerOpen),
		ClientClosed: uint64(sum.clientClosed), P50: quantile(&sum.hist, 0.50), P99: quantile(&sum.hist, 0.99),
	}
	return p
}

// quantile estimates the q-quantile of a histogram in milliseconds,
// interpolating linearly inside the bucket that holds it.
func quantile(h *[histBuckets]uint32, q float64) float64 {
	total := histogram.Total(h[:])
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	i, below := histogram.Rank(h[:], rank)
	if i == len(h) {
		return latencyBounds[len(latencyBounds)-1]
	}
	lo := 0.0
	if i > 0 {
		lo = latencyBounds[i-1]
	}
	if i == len(latencyBounds) {
		return lo // unbounded bucket: report its floor
	}
	hi := latencyBounds[i]
	v := lo + (hi-lo)*(rank-float64(below))/float64(h[i])
	return float64(int64(v*1000+0.5)) / 1000
}
