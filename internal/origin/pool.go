package origin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
)

// Defaults applied when a config.Origin field is zero (see the config comments).
const (
	defaultDialTimeout        = 2 * time.Second
	defaultResponseHeader     = 30 * time.Second
	defaultOverall            = 60 * time.Second
	defaultHealthInterval     = 5 * time.Second
	defaultHealthTimeout      = 1 * time.Second
	defaultHealthyThreshold   = 2
	defaultUnhealthyThreshold = 3
	defaultMaxConnectFailures = 3
	defaultEjectFor           = 10 * time.Second
	defaultMaxIdleConns       = 256
)

// Pool forwards requests to the instances of one origin. It is safe for
// concurrent use. Create it with NewPool and release it with Close.
type Pool struct {
	name      string
	instances []*instance
	next      atomic.Uint32
	wireAny   bool // an instance the event-loop path may reach (PickWire)

	hostFromOrigin bool // host_header: origin
	trusted        []netip.Prefix
	log            *slog.Logger

	dialTimeout    time.Duration
	responseHeader time.Duration
	overall        time.Duration
	maxFailures    int32 // passive ejection threshold; <= 0 disables
	ejectFor       time.Duration
	maxIdle        int

	health      config.HealthCheck // with defaults applied; Path "" = off
	expectLo    int
	expectHi    int
	healthStop  context.CancelFunc
	healthWG    sync.WaitGroup
	healthTrans *http.Transport

	tlsConfig *tls.Config     // for https instances (nil = system roots)
	std       *http.Transport // https slow path; nil without https instances

	probeIdleAfter time.Duration
	settle         time.Duration
	unsafeIdle     time.Duration

	// Host names (resolve.go).
	resolver      *net.Resolver // every lookup, both paths (Options.Resolver)
	resolveEvery  time.Duration // how long a lookup's result is used
	epoch         time.Time     // for since
	resolveCtx    context.Context
	resolveStop   context.CancelFunc
	resolveMu     sync.Mutex // guards resolveClosed, orders resolveWG.Add before Wait
	resolveClosed bool
	resolveWG     sync.WaitGroup

	closed       atomic.Bool
	closeOnce    sync.Once
	staleRetries atomic.Int64 // requests retried after a stale keep-alive conn
}

// instance is one URL of the origin and its keep-alive connections.
type instance struct {
	pool   *Pool
	url    string // as configured, for errors and status
	tls    bool
	addr   string // host:port to dial
	host   string // URL host, for host_header: origin and TLS SNI
	prefix string // escaped path prefix without a trailing slash, "" for none

	// Where the event-loop path connects (resolve.go): a fixed address
	// for an IP literal or "localhost", the last lookup's result for a
	// host name; nil when the loop cannot reach the instance (now).
	wire      atomic.Pointer[wireDest]
	name      string // the host name to look up; "" for none
	wirePort  uint16 // with name: the port
	resolving atomic.Bool

	idleMu sync.Mutex
	idle   []*upConn    // LIFO: the most recently used conn is reused first
	closes silentCloses // guarded by idleMu

	healthy      atomic.Bool
	fails        atomic.Int32 // consecutive connect failures (passive)
	ejectedUntil atomic.Int64 // unix nanoseconds; 0 = not ejected

	mu        sync.Mutex // guards lastErr, lastCheck
	lastErr   string
	lastCheck time.Time
}

// NewPool builds the pool for origin o and starts one health-check goroutine
// per instance when o.HealthCheck.Path is set. Zero fields take the defaults
// documented on config.Origin. o is expected to be validated already; NewPool
// still rejects what it cannot use (no URLs, a scheme other than http/https, a
// query or fragment, a bad expect_status).
func NewPool(o config.Origin, opts Options) (*Pool, error) {
	if len(o.URLs) == 0 {
		return nil, fmt.Errorf("origin %q: no urls", o.Name)
	}
	p := &Pool{
		name:           o.Name,
		trusted:        opts.TrustedProxies,
		log:            opts.Logger,
		dialTimeout:    orDefault(o.Timeouts.Dial.D(), defaultDialTimeout),
		responseHeader: orDefault(o.Timeouts.ResponseHeader.D(), defaultResponseHeader),
		overall:        orDefault(o.Timeouts.Overall.D(), defaultOverall),
		ejectFor:       orDefault(o.Passive.EjectFor.D(), defaultEjectFor),
		maxIdle:        o.MaxIdleConns,
		health:         o.HealthCheck,
		probeIdleAfter: probeIdleAfter,
		settle:         settleTime,
		unsafeIdle:     unsafeIdle,
		resolver:       opts.Resolver,
		resolveEvery:   resolveEvery,
		epoch:          time.Now(),
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	p.resolveCtx, p.resolveStop = context.WithCancel(context.Background())
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("origin", o.Name)
	switch o.HostHeader {
	case "", "client":
	case "origin":
		p.hostFromOrigin = true
	default:
		return nil, fmt.Errorf("origin %q: host_header %q: want client or origin", o.Name, o.HostHeader)
	}
	switch n := o.Passive.MaxConnectFailures; {
	case n == 0:
		p.maxFailures = defaultMaxConnectFailures
	case n < 0:
		p.maxFailures = 0
	default:
		p.maxFailures = int32(n)
	}
	if p.maxIdle <= 0 {
		p.maxIdle = defaultMaxIdleConns
	}
	anyTLS := false
	for _, raw := range o.URLs {
		in, err := newInstance(p, raw)
		if err != nil {
			return nil, fmt.Errorf("origin %q: %w", o.Name, err)
		}
		anyTLS = anyTLS || in.tls
		p.wireAny = p.wireAny || in.name != "" || in.wire.Load() != nil
		p.instances = append(p.instances, in)
	}
	if anyTLS {
		p.std = p.newStdTransport()
	}
	if p.health.Path != "" {
		if err := p.provisionHealth(); err != nil {
			return nil, fmt.Errorf("origin %q: health_check: %w", o.Name, err)
		}
		p.startHealth()
	}
	// Host names are looked up now, not at the first pick: a request that
	// finds no address yet is served by the goroutine server and takes its
	// client connection with it for good, so the loops should have the
	// address before the table that uses this pool serves anything.
	for _, in := range p.instances {
		if in.name != "" {
			in.resolve()
		}
	}
	return p, nil
}

// Key identifies what a pool built by NewPool(o, opts) is made of: the
// origin's name (its log and metric label), instances, timeouts, limits,
// passive ejection and health-check settings, and the trusted proxies. Two
// deployments whose origin has the same key can share one pool, and with it
// its keep-alive connections, health verdicts and ejections, across an
// apply, a rollback or a route switch.
//
// The key is o's JSON encoding, so a field added to config.Origin is part of
// it without anyone remembering to add it (a change then costs a new pool,
// never a stale one). Where the origin was written — the source positions,
// tagged json:"-", which name a new file for every deployment — is not.
func Key(o config.Origin, opts Options) string {
	b, err := json.Marshal(o)
	if err != nil {
		// Not reachable for a config.Origin; fall back to a key that
		// shares nothing.
		return fmt.Sprintf("unencodable %p", &o)
	}
	var sb strings.Builder
	sb.Write(b)
	for _, p := range opts.TrustedProxies {
		sb.WriteString("|")
		sb.WriteString(p.String())
	}
	if opts.Resolver != nil {
		// Not configuration (tests set it), but a pool that asks
		// another resolver is another pool.
		fmt.Fprintf(&sb, "|resolver %p", opts.Resolver)
	}
	return sb.String()
}

func newInstance(p *Pool, raw string) (*instance, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", raw, err)
	}
	in := &instance{pool: p, url: raw, host: u.Host}
	var port string
	switch u.Scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
		in.tls = true
	default:
		return nil, fmt.Errorf("url %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("url %q: want scheme://host[:port][/path] without user, query or fragment", raw)
	}
	in.addr = u.Host
	if u.Port() == "" {
		in.addr = net.JoinHostPort(u.Hostname(), port)
	}
	in.prefix = strings.TrimSuffix(u.EscapedPath(), "/")
	if !in.tls {
		if ap, name, ok := wireTarget(in.addr); ok && name != "" {
			in.name, in.wirePort = name, ap.Port()
		} else if ok {
			in.wire.Store(&wireDest{ap: ap, ok: true})
		}
	}
	in.healthy.Store(true)
	return in, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Name returns the origin's name, the key under `origins:`.
func (p *Pool) Name() string { return p.name }

// Close stops the health checks and the lookups of host names, and closes
// idle connections. Forward calls in flight finish normally (their
// connections are closed instead of pooled), and Forward keeps working after
// Close without pooling, so a request that read an old route table just
// before a deployment swapped it still succeeds.
// Close waits for the health-check and lookup goroutines to exit.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.stopResolving()
		if p.healthStop != nil {
			p.healthStop()
			p.healthWG.Wait()
			p.healthTrans.CloseIdleConnections()
		}
		for _, in := range p.instances {
			in.closeIdle()
		}
		if p.std != nil {
			p.std.CloseIdleConnections()
		}
	})
}

// Instances returns a snapshot of every instance, in configuration order.
func (p *Pool) Instances() []turnout.InstanceStatus {
	now := time.Now().UnixNano()
	out := make([]turnout.InstanceStatus, len(p.instances))
	for i, in := range p.instances {
		in.mu.Lock()
		out[i] = turnout.InstanceStatus{
			URL:                 in.url,
			Healthy:             in.healthy.Load(),
			Ejected:             in.ejectedUntil.Load() > now,
			ConsecutiveFailures: int(in.fails.Load()),
			LastError:           in.lastErr,
			LastCheck:           in.lastCheck,
		}
		in.mu.Unlock()
	}
	return out
}

// pick chooses the instance for one request: round-robin over the instances
// that are healthy and not ejected. When every instance is down it still
// returns one (round-robin over all): the legacy origin is the backend of
// last resort, a health endpoint can be wrong while the API works, and a live
// request is the fastest way to notice recovery. A refused connection costs
// microseconds; the price is a dial timeout per request against a blackholed
// origin, which the caller's fallback absorbs.
func (p *Pool) pick() *instance {
	if len(p.instances) == 1 {
		return p.instances[0]
	}
	n := uint32(len(p.instances))
	start := p.next.Add(1)
	var now int64
	for i := uint32(0); i < n; i++ {
		in := p.instances[(start+i)%n]
		if !in.healthy.Load() {
			continue
		}
		if until := in.ejectedUntil.Load(); until != 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			if until > now {
				continue
			}
		}
		return in
	}
	return p.instances[start%n]
}

// connectFailed records a failed dial and ejects the instance once the
// passive threshold is reached. An instance whose ejection ran out keeps its
// count, so a single further failure ejects it again (half-open).
func (in *instance) connectFailed(err error) {
	p := in.pool
	n := in.fails.Add(1)
	in.setLastError(err)
	if p.maxFailures > 0 && n >= p.maxFailures {
		until := time.Now().Add(p.ejectFor)
		if old := in.ejectedUntil.Swap(until.UnixNano()); old < time.Now().UnixNano() {
			p.log.Warn("origin instance ejected", "instance", in.url,
				"consecutive_failures", n, "for", p.ejectFor, "err", err)
		}
	}
}

// connected resets the passive counters after a successful connection.
func (in *instance) connected() {
	if in.fails.Load() != 0 {
		in.fails.Store(0)
	}
	if in.ejectedUntil.Load() != 0 {
		in.ejectedUntil.Store(0)
	}
}

func (in *instance) setLastError(err error) {
	in.mu.Lock()
	in.lastErr = err.Error()
	in.mu.Unlock()
}
