package gateway

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/origin"
	"github.com/turnout/turnout/internal/route"
)

// Table is one deployment compiled for serving: the route matcher and one
// plan per route, in the matcher's order. It is immutable once built.
type Table struct {
	// Deployment is the id of the deployment the table serves.
	Deployment uint64
	Config     *config.Config

	routes *route.Table
	plans  []*plan
	// servedBy is the canonical name of the served-by header, "" for none.
	servedBy string
	pools    map[string]*origin.Pool // by origin name
	keys     []string                // shared pool keys held
	// mirrorKeys and comparisonKeys are the keys of the mirrors and the
	// canary comparisons the table's plans use.
	mirrorKeys, comparisonKeys, authorizerKeys []string
	refs                                       atomic.Int64 // requests in flight
	// keyring is the deployment's API keys, when a route requires one;
	// keyBucketKeys the keys of their buckets held.
	keyring       *keyring
	keyBucketKeys []string
}

// sharedPool lets consecutive tables share an origin pool (and its
// keep-alive connections and health state) when the origin is unchanged.
type sharedPool struct {
	pool *origin.Pool
	refs int // tables holding it
}

// Build compiles cfg (already validated) into a Table for deployment id,
// creating or reusing origin pools. The Table serves nothing until Swap.
func (g *Gateway) Build(id uint64, cfg *config.Config) (*Table, error) {
	cfg = cfg.WithDefaults()
	trusted, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	patterns := make([]string, len(cfg.Routes))
	for i, r := range cfg.Routes {
		patterns[i] = r.Match
	}
	rt, opts := cfg.RouteTable(), cfg.RouteOptions()
	if rt == nil || rt.Len() != len(patterns) || rt.CaseInsensitive() != opts.CaseInsensitive {
		if rt, err = opts.Compile(patterns); err != nil {
			return nil, fmt.Errorf("deployment %d: %w", id, err)
		}
	}
	t := &Table{Deployment: id, Config: cfg, routes: rt, pools: map[string]*origin.Pool{}}
	if h := cfg.ServedBy(); h != "" {
		t.servedBy = http.CanonicalHeaderKey(h)
	}

	policies, err := corsPolicies(cfg)
	if err != nil {
		return nil, fmt.Errorf("deployment %d: %w", id, err)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	for _, o := range cfg.Origins {
		opts := origin.Options{TrustedProxies: trusted, Logger: g.log}
		key := origin.Key(o, opts)
		sp := g.pools[key]
		if sp == nil {
			p, err := origin.NewPool(o, opts)
			if err != nil {
				g.releaseLocked(t)
				return nil, fmt.Errorf("deployment %d: origin %s: %w", id, o.Name, err)
			}
			sp = &sharedPool{pool: p}
			g.pools[key] = sp
		}
		sp.refs++
		t.keys = append(t.keys, key)
		t.pools[o.Name] = sp.pool
	}
	if len(cfg.Functions) > 0 {
		if g.opts.Functions == nil {
			g.releaseLocked(t)
			return nil, fmt.Errorf("deployment %d declares functions, but this node runs none", id)
		}
		// New and changed functions start before the table that uses them
		// is swapped in.
		if err := g.opts.Functions.Configure(context.Background(), cfg.Functions); err != nil {
			g.releaseLocked(t)
			return nil, fmt.Errorf("deployment %d: %w", id, err)
		}
	}
	in := sources{legacy: cfg.LegacyOrigin(), functions: map[string]config.Function{}, origins: map[string]config.Origin{}, authorizers: cfg.Authorizers, apiKeys: cfg.APIKeys}
	for _, f := range cfg.Functions {
		in.functions[f.Name] = f
	}
	for _, o := range cfg.Origins {
		in.origins[o.Name] = o
	}
	for i, r := range cfg.Routes {
		p, err := g.planLocked(t, in, rt.Pattern(i), r)
		if err != nil {
			g.releaseLocked(t)
			return nil, fmt.Errorf("deployment %d: %w", id, err)
		}
		p.cors = policies[i]
		p.loop = loopable(p)
		t.plans = append(t.plans, p)
	}
	return t, nil
}

// sources is what a deployment declares that its routes name.
type sources struct {
	legacy      string // the legacy origin's name
	functions   map[string]config.Function
	origins     map[string]config.Origin
	authorizers []config.Authorizer
	apiKeys     []config.APIKey
}

// planLocked compiles route r (pattern pat) into its plan, with the pools
// t holds. g.mu is held.
func (g *Gateway) planLocked(t *Table, in sources, pat *route.Pattern, r config.Route) (*plan, error) {
	m := g.opts.Metrics
	p := &plan{pattern: pat.Canonical, off: r.Off, servedBy: t.servedBy, metrics: m}
	// The authorizer checks the route's requests whether it is on or off:
	// switching a route to the legacy origin does not open it.
	if r.Auth != nil {
		gd, err := g.guardLocked(t, in.authorizers, pat, r)
		if err != nil {
			return nil, err
		}
		p.guard = gd
	}
	if r.APIKeyRequired { // likewise the API key
		kr, err := g.keyringLocked(t, in.apiKeys)
		if err != nil {
			return nil, err
		}
		p.keys = kr
	}
	if r.Off {
		// A route switched off starts with a closed breaker when it is
		// switched on again. Its fallback or the legacy origin is then its
		// primary, for every request: the canary's share included.
		delete(g.breakers, p.pattern+"|"+r.Origin+"|"+r.Function)
		if err := g.sideLocked(&p.primary, t, in, pat, r, "", r.OffTarget(in.legacy)); err != nil {
			return nil, err
		}
		return p, nil
	}
	if err := g.sideLocked(&p.primary, t, in, pat, r, r.Function, r.Origin); err != nil {
		return nil, err
	}

	var fb *fallback
	if r.Fallback != "" {
		fb = &fallback{backend: newOriginBackend(t.pools[r.Fallback], m), onStatus: r.FallbackOn, unsafe: r.FallbackUnsafe,
			timeout: r.Timeout.D(), reserve: r.FallbackReserve.D()}
		if fb.reserve == 0 || fb.reserve >= fb.timeout {
			fb.reserve = fb.timeout / 4
		}
	}
	if fb != nil && r.Fallback != r.Origin {
		p.primary.fallback = fb
		if !r.NoBreaker {
			p.breaker = g.breakerLocked(p.pattern, r)
		}
	}
	if c := r.Canary; c != nil {
		p.canary = &canary{metrics: m}
		if err := g.sideLocked(&p.canary.side, t, in, pat, r, c.Function, c.Origin); err != nil {
			return nil, err
		}
		if fb != nil && r.Fallback != c.Origin {
			p.canary.fallback = fb
		}
		p.canary.setSplit(*c)
		p.canary.compare = g.comparisonLocked(t, p.pattern, p.primary.target(), p.canary.target())
	}
	if sh := r.Shadow; sh != nil {
		var b side
		if err := g.sideLocked(&b, t, in, pat, r, sh.Function, sh.Origin); err != nil {
			return nil, err
		}
		p.shadow = &mirrorSlot{m: g.mirrorLocked(t, p.pattern, b.target(), *sh), shadow: b.backend, primary: p.primary.backend}
	}
	if rl := r.RateLimit; rl != nil {
		burst := rl.Burst
		if burst == 0 {
			burst = int(math.Ceil(rl.RPS))
		}
		p.limiter = rate.NewLimiter(rate.Limit(rl.RPS), burst)
		p.spill = rl.Over != "reject" && p.primary.fallback != nil
	}
	if a := r.AutoRollback; a != nil {
		what := "origin errors"
		if r.Function != "" {
			what = "function errors"
		}
		p.health = newHealthWindow(*a, r.Match, what, time.Now())
	}
	return p, nil
}

// sideLocked builds s, one of route r's targets: function fn, else origin
// name (for a route switched off, its off target). Its fallback is the
// caller's to set. g.mu is held.
func (g *Gateway) sideLocked(s *side, t *Table, in sources, pat *route.Pattern, r config.Route, fn, name string) error {
	m := g.opts.Metrics
	if fn != "" {
		b := newFnBackend(pat, r, in.functions[fn], g.opts.Functions, m)
		s.backend = b
		s.bodyLimit, s.bodyWhose = b.bodyLimit(g.opts.MaxBodyBytes)
	} else {
		pool := t.pools[name]
		if pool == nil {
			if r.Off {
				return fmt.Errorf("route %q is off but has no fallback and there is no legacy origin", r.Match)
			}
			return fmt.Errorf("route %q: unknown origin %q", r.Match, name)
		}
		s.backend = newOriginBackend(pool, m)
		// The origin enforces its own overall timeout; a route deadline is
		// only worth a context when it is shorter.
		s.timeout = r.Timeout.D()
		if o, ok := in.origins[name]; ok && s.timeout >= o.Timeouts.Overall.D() {
			s.timeout = 0
		}
	}
	s.servedByValue = []string{s.target()}
	return nil
}

// breakerLocked returns the breaker of a route and its primary, creating it
// on first use. Breakers outlive tables so that a deployment touching other
// routes does not reset them. g.mu is held.
func (g *Gateway) breakerLocked(pattern string, r config.Route) *breaker.Breaker {
	key := pattern + "|" + r.Origin + "|" + r.Function
	b := g.breakers[key]
	if b == nil {
		b = breaker.New(func(from, to breaker.State) {
			g.log.Warn("circuit breaker "+to.String(), "route", pattern, "from", from.String())
			if g.opts.OnBreaker != nil {
				go g.opts.OnBreaker(pattern, from.String(), to.String())
			}
		})
		g.breakers[key] = b
	}
	return b
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted_proxies: %w", err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
