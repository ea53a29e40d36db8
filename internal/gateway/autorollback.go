package gateway

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/histogram"
)

// latencyBuckets are the upper bounds of the latency histogram a health
// window keeps per second: 100 µs growing by 25 % per bucket, up to ~2 min.
var latencyBuckets = func() (b [64]time.Duration) {
	d := 100.0 // µs
	for i := range b {
		b[i] = time.Duration(d * float64(time.Microsecond))
		d *= 1.25
	}
	return b
}()

// latencyBounds place a latency (in nanoseconds) among latencyBuckets; the
// last bucket also holds everything above it.
var latencyBounds = func() histogram.Bounds {
	b := make(histogram.Bounds, len(latencyBuckets)-1)
	for i := range b {
		b[i] = float64(latencyBuckets[i])
	}
	return b
}()

// healthWindow tracks a route primary's outcomes over its auto-rollback
// window, one bucket per second.
type healthWindow struct {
	rule  config.AutoRollback
	what  string // "function errors" or "origin errors"
	match string // the route's match as written, for route off
	born  time.Time
	fired atomic.Bool

	mu      sync.Mutex
	buckets []second
}

type second struct {
	sec           int64
	total, failed int
	lat           [64]uint32
}

func newHealthWindow(rule config.AutoRollback, match, what string, now time.Time) *healthWindow {
	n := int(rule.Window.D() / time.Second)
	if n < 1 {
		n = 1
	}
	return &healthWindow{rule: rule, match: match, what: what, born: now, buckets: make([]second, n)}
}

func (h *healthWindow) record(ok bool, d time.Duration, now time.Time) {
	i := latencyBounds.Index(float64(d))
	sec := now.Unix()
	h.mu.Lock()
	b := &h.buckets[sec%int64(len(h.buckets))]
	if b.sec != sec {
		*b = second{sec: sec}
	}
	b.total++
	if !ok {
		b.failed++
	}
	b.lat[i]++
	h.mu.Unlock()
}

// breach says why the window breaches its rule, or "" when it does not (or
// has not yet seen a whole window).
func (h *healthWindow) breach(now time.Time) string {
	if now.Sub(h.born) < h.rule.Window.D() {
		return ""
	}
	var total, failed int
	var lat [64]uint64
	sec := now.Unix()
	h.mu.Lock()
	for _, b := range h.buckets {
		if sec-b.sec < int64(len(h.buckets)) {
			total += b.total
			failed += b.failed
			for i, c := range b.lat {
				lat[i] += uint64(c)
			}
		}
	}
	h.mu.Unlock()
	if total < h.rule.MinRequests {
		return ""
	}
	window := h.rule.Window.D()
	if r := float64(failed) / float64(total); h.rule.MaxErrorRate > 0 && r > h.rule.MaxErrorRate {
		return fmt.Sprintf("%s %.1f%% > %s%% over %s", h.what, 100*r, trimFloat(100*h.rule.MaxErrorRate), window)
	}
	if h.rule.MaxP99 > 0 {
		if i, _ := histogram.Rank(lat[:], math.Ceil(0.99*float64(total))); i < len(lat) {
			if p99 := latencyBuckets[i]; p99 > h.rule.MaxP99.D() {
				return fmt.Sprintf("p99 %s > %s over %s", p99.Round(time.Millisecond), h.rule.MaxP99.D(), window)
			}
		}
	}
	return ""
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// RunAutoRollback checks the active table's auto-rollback rules every
// second until ctx ends. For a route breaching its rule over a whole window
// it calls rollback(match, reason) once — turnout serve records that as a
// deployment switching the route to its fallback.
func (g *Gateway) RunAutoRollback(ctx context.Context, rollback func(ctx context.Context, match, reason string) error) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			tab := g.cur.Load()
			if tab == nil {
				continue
			}
			for _, p := range tab.plans {
				h := p.health
				if h == nil || h.fired.Load() {
					continue
				}
				reason := h.breach(now)
				if reason == "" || !h.fired.CompareAndSwap(false, true) {
					continue
				}
				g.log.Warn("auto-rollback", "route", h.match, "reason", reason)
				if err := rollback(ctx, h.match, reason); err != nil {
					g.log.Error("auto-rollback failed; the route stays on its primary", "route", h.match, "error", err)
					h.fired.Store(false)
				}
			}
		}
	}
}
