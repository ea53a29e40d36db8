// Package gateway is turnout's data plane: it checks and normalises each
// request, matches it against the active route table, and hands it to the
// route's backend. Tables are immutable and swapped through an atomic
// pointer, so a deployment never blocks or drops a request.
package gateway

import (
	"math"

	"golang.org/x/time/rate"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/origin"
	"github.com/turnout/turnout/internal/route"
)

// Options configure a Gateway.
type Options struct {
	// Metrics receives per-route counters; nil means a private registry
	// nobody scrapes.
	Metrics *metrics.Metrics
	// AccessLog receives one record per request; nil disables access logs.
	AccessLog *slog.Logger
	// Logger receives operational messages; nil means slog.Default().
	Logger *slog.Logger
	// OnBreaker is told of every circuit breaker transition (turnout serve
	// records them in the audit trail). It runs on its own goroutine.
	OnBreaker func(route, from, to string)
	// MaxBodyBytes bounds request bodies on buffered paths (function
	// routes, together with each function's max_request_bytes); 0 means
	// only the function's limit applies. Proxied bodies stream unbounded.
	MaxBodyBytes int64
	// Functions runs function targets; nil when the node serves none.
	Functions Functions
	// RetireGrace is how long a replaced table's origin pools stay open
	// before they are closed once idle. Default 1 s.
	RetireGrace time.Duration
	// Observe, when set, is called once for every request the gateway
	// answers (rejected ones and 404s included), after the response is
	// done, on the request's goroutine: keep it quick. The Observation is
	// reused for the next request, so the callee must copy what it keeps
	// and not retain the pointer. See observe for how each field is set.
	Observe func(o *turnout.Observation)
}

// Gateway serves requests from the active Table.
type Gateway struct {
	opts Options
	log  *slog.Logger
	cur  atomic.Pointer[Table]

	unrouted *metrics.Target // requests answered before a route was chosen

	mu       sync.Mutex // guards pools and breakers; control plane only
	pools    map[string]*sharedPool
	breakers map[string]*breaker.Breaker // by route pattern and primary, kept across tables
	wg       sync.WaitGroup              // retirements in progress
}

// sharedPool lets consecutive tables share an origin pool (and its
// keep-alive connections and health state) when the origin is unchanged.
type sharedPool struct {
	pool *origin.Pool
	refs int // tables holding it
}

// New returns a Gateway that answers 503 until a table is swapped in.
func New(opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.RetireGrace == 0 {
		opts.RetireGrace = time.Second
	}
	return &Gateway{opts: opts, log: opts.Logger, pools: map[string]*sharedPool{}, breakers: map[string]*breaker.Breaker{},
		unrouted: opts.Metrics.Unrouted()}
}

// Table is one deployment compiled for serving. It is immutable once built.
type Table struct {
	// Deployment is the id of the deployment the table serves.
	Deployment uint64
	Config     *config.Config

	routes  *route.Table
	targets []*target
	// servedBy is the canonical name of the served-by header, "" for none.
	servedBy string
	pools    map[string]*origin.Pool // by origin name
	keys     []string                // shared pool keys held
	refs     atomic.Int64            // requests in flight
}

// target is where one route's requests go.
type target struct {
	pattern string // canonical route pattern
	name    string // "origin:NAME" or "function:NAME" (turnout.OriginTarget, FunctionTarget)
	fbName  string // the fallback's "origin:NAME", "" without one
	origin  string
	pool    *origin.Pool
	off     bool
	timeout time.Duration
	names   []string  // wildcard names
	fn      *fnTarget // set for a function route that is on
	fb      *fallbackPlan
	breaker *breaker.Breaker
	health  *healthWindow // set for a route with auto_rollback
	limiter *rate.Limiter // set for a route with rate_limit
	spill   bool          // past the limit: to the fallback, not 429
	// servedByHeader is the canonical name of the served-by header, "" for
	// none; servedByValue is its value when the target itself answers
	// (capacity 1, so that an append by whoever else sets the header copies
	// it instead of writing into it).
	servedByHeader string
	servedByValue  []string
	metrics        *metrics.Metrics
	observer       atomic.Pointer[metrics.Target]   // resolved on first request
	fbObserver     atomic.Pointer[metrics.Target]   // the fallback's, on first use
	fnObserver     atomic.Pointer[metrics.Function] // the function's, on first use
}

// observerFor returns the route's metrics children for the target that
// answered. They are resolved on a route's first request rather than at
// Build, so applying 10,000 routes does not cost 70,000 label lookups.
func (tg *target) observerFor(fellBack bool) *metrics.Target {
	p, name := &tg.observer, tg.name
	if fellBack {
		p, name = &tg.fbObserver, tg.fbName
	}
	o := p.Load()
	if o == nil {
		if fellBack {
			o = tg.metrics.ForFallback(tg.pattern, name)
		} else {
			o = tg.metrics.For(tg.pattern, name)
		}
		p.Store(o)
	}
	return o
}

// fnMetrics returns the function's invocation children.
func (tg *target) fnMetrics() *metrics.Function {
	f := tg.fnObserver.Load()
	if f == nil {
		f = tg.metrics.Function(tg.fn.name, tg.fn.platform)
		tg.fnObserver.Store(f)
	}
	return f
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

	g.mu.Lock()
	defer g.mu.Unlock()
	for _, o := range cfg.Origins {
		opts := origin.Options{TrustedProxies: trusted, Logger: g.log}
		key := origin.Key(o, opts)
		sp := g.pools[key]
		if sp == nil {
			p, err := origin.NewPool(o, opts)
			if err != nil {
				g.releaseLocked(t.keys)
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
			g.releaseLocked(t.keys)
			return nil, fmt.Errorf("deployment %d declares functions, but this node runs none", id)
		}
		// New and changed functions start before the table that uses them
		// is swapped in.
		if err := g.opts.Functions.Configure(context.Background(), cfg.Functions); err != nil {
			g.releaseLocked(t.keys)
			return nil, fmt.Errorf("deployment %d: %w", id, err)
		}
	}
	fns := make(map[string]config.Function, len(cfg.Functions))
	for _, f := range cfg.Functions {
		fns[f.Name] = f
	}
	legacy := cfg.LegacyOrigin()
	for i, r := range cfg.Routes {
		tg := &target{pattern: rt.Pattern(i).Canonical, off: r.Off, timeout: r.Timeout.D(), names: rt.Pattern(i).Names(),
			servedByHeader: t.servedBy}
		if r.Off {
			// A route switched off starts with a closed breaker when it is
			// switched on again.
			delete(g.breakers, tg.pattern+"|"+r.Origin+"|"+r.Function)
		}
		if !r.Off && r.Fallback != "" && r.Fallback != r.Origin {
			tg.fbName = turnout.OriginTarget(r.Fallback)
			tg.fb = &fallbackPlan{name: r.Fallback, pool: t.pools[r.Fallback], onStatus: r.FallbackOn, unsafe: r.FallbackUnsafe,
				timeout: r.Timeout.D(), reserve: r.FallbackReserve.D()}
			if tg.fb.reserve == 0 || tg.fb.reserve >= tg.fb.timeout {
				tg.fb.reserve = tg.fb.timeout / 4
			}
			if !r.NoBreaker {
				tg.breaker = g.breakerLocked(tg.pattern, r)
			}
		}
		if rl := r.RateLimit; rl != nil && !r.Off {
			burst := rl.Burst
			if burst == 0 {
				burst = int(math.Ceil(rl.RPS))
			}
			tg.limiter = rate.NewLimiter(rate.Limit(rl.RPS), burst)
			tg.spill = rl.Over != "reject" && r.Fallback != ""
		}
		if a := r.AutoRollback; a != nil && !r.Off {
			what := "origin errors"
			if r.Function != "" {
				what = "function errors"
			}
			tg.health = newHealthWindow(*a, r.Match, what, time.Now())
		}
		if r.Function != "" && !r.Off {
			tg.fn = newFnTarget(rt.Pattern(i), r, fns[r.Function])
			tg.name, tg.timeout, tg.metrics = turnout.FunctionTarget(r.Function), 0, g.opts.Metrics
			tg.servedByValue = []string{tg.name}
			t.targets = append(t.targets, tg)
			continue
		}
		name := r.Origin
		if r.Off {
			name = r.OffTarget(legacy)
		}
		p := t.pools[name]
		if p == nil {
			g.releaseLocked(t.keys)
			if r.Off {
				return nil, fmt.Errorf("deployment %d: route %q is off but has no fallback and there is no legacy origin", id, r.Match)
			}
			return nil, fmt.Errorf("deployment %d: route %q: unknown origin %q", id, r.Match, name)
		}
		tg.origin, tg.pool, tg.name = name, p, turnout.OriginTarget(name)
		tg.servedByValue = []string{tg.name}
		// The origin enforces its own overall timeout; a route deadline is
		// only worth a context when it is shorter.
		for _, o := range cfg.Origins {
			if o.Name == name && tg.timeout >= o.Timeouts.Overall.D() {
				tg.timeout = 0
			}
		}
		tg.metrics = g.opts.Metrics
		t.targets = append(t.targets, tg)
	}
	return t, nil
}

// Swap makes t the active table. Requests already running finish on the
// table they started with; its pools close once it is idle. Deployment ids
// only grow, so a table that is not newer than the active one is discarded
// and Swap reports false: turnout serve activates each deployment twice, from
// the apply and from the store's watch, which may see the new id before the
// apply has swapped it in, and the deployment must be swapped in (logged,
// counted in turnout_route_table_swaps_total) once.
func (g *Gateway) Swap(t *Table) bool {
	for {
		old := g.cur.Load()
		if old != nil && t.Deployment <= old.Deployment {
			g.mu.Lock()
			g.releaseLocked(t.keys)
			g.mu.Unlock()
			return false
		}
		if g.cur.CompareAndSwap(old, t) {
			g.opts.Metrics.ActiveDeployment.Set(float64(t.Deployment))
			g.opts.Metrics.Deployments.Inc()
			if old != nil && old != t {
				g.retire(old)
			}
			return true
		}
	}
}

// Apply builds and swaps in one step. It does nothing when deployment id, or
// a later one, is already served (see Swap).
func (g *Gateway) Apply(id uint64, cfg *config.Config) error {
	if cur := g.cur.Load(); cur != nil && id <= cur.Deployment {
		return nil
	}
	t, err := g.Build(id, cfg)
	if err != nil {
		return err
	}
	if g.Swap(t) {
		g.log.Info("route table swapped", "deployment", id, "routes", len(t.targets))
	}
	return nil
}

// Active returns the table being served, or nil before the first Swap.
func (g *Gateway) Active() *Table { return g.cur.Load() }

// retire releases old's pools once no request uses it any more. A request
// that loaded old just before the swap holds a reference within
// nanoseconds, so waiting RetireGrace before looking at the count is enough.
func (g *Gateway) retire(old *Table) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		time.Sleep(g.opts.RetireGrace)
		for old.refs.Load() > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		g.mu.Lock()
		g.releaseLocked(old.keys)
		g.mu.Unlock()
	}()
}

func (g *Gateway) releaseLocked(keys []string) {
	for _, k := range keys {
		sp := g.pools[k]
		if sp == nil {
			continue
		}
		if sp.refs--; sp.refs <= 0 {
			sp.pool.Close()
			delete(g.pools, k)
		}
	}
}

// Close closes every pool after in-flight retirements end. Call it after
// the public server has shut down.
func (g *Gateway) Close() {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, sp := range g.pools {
		sp.pool.Close()
		delete(g.pools, k)
	}
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

// ServeHTTP serves one public request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID(r)
	r.Header["X-Request-Id"] = []string{id}
	w.Header()["X-Request-Id"] = []string{id}

	t := g.cur.Load()
	if t == nil {
		// No deployment, so no served_by_header setting yet: the default.
		answeredByGateway(w, config.DefaultServedByHeader, turnout.ReasonNoDeployment, "", "")
		writeError(w, http.StatusServiceUnavailable, "no deployment is active yet", id)
		g.finish(r, id, "", nil, start, &answer{outcome: turnout.Rejected, reason: turnout.ReasonNoDeployment, code: http.StatusServiceUnavailable})
		return
	}
	t.refs.Add(1)
	defer t.refs.Add(-1)

	// A chunked HTTP/1 request may also have carried a Content-Length, which
	// Go's parser drops after letting Transfer-Encoding win (RFC 9112 6.3).
	// Such a message is a smuggling attempt, and RFC 9112 requires closing
	// the connection after answering it; since the two cases cannot be told
	// apart here, every chunked HTTP/1 request closes its connection.
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		w.Header()["Connection"] = []string{"close"}
	}

	path, reason, err := g.check(t, r)
	if err != nil {
		g.opts.Metrics.Rejected.WithLabelValues(reason).Inc()
		code := http.StatusBadRequest
		if reason == turnout.ReasonConnect {
			code = http.StatusMethodNotAllowed
		}
		answeredByGateway(w, t.servedBy, reason, "", "")
		writeError(w, code, err.Error(), id)
		g.finish(r, id, path, nil, start, &answer{outcome: turnout.Rejected, reason: reason, code: code, err: err})
		return
	}

	host := route.NormalizeHost(r.Host)
	var buf [8]string
	idx, values, ok := t.routes.Match(host, r.Method, path, buf[:0])
	if !ok {
		answeredByGateway(w, t.servedBy, turnout.ReasonNoRoute, "", "")
		writeError(w, http.StatusNotFound, "no route matches "+r.Method+" "+path, id)
		g.opts.Metrics.Rejected.WithLabelValues(turnout.ReasonNoRoute).Inc()
		g.finish(r, id, path, nil, start, &answer{outcome: turnout.Rejected, reason: turnout.ReasonNoRoute, code: http.StatusNotFound})
		return
	}
	tg := t.targets[idx]

	if tg.timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), tg.timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if tg.fn != nil || tg.fb != nil || tg.health != nil || tg.limiter != nil {
		var a answer
		g.serveGuarded(w, r, tg, id, path, values, start, &a)
		g.finish(r, id, path, tg, start, &a)
		return
	}
	// A plain origin route: one origin, or the legacy origin of a route
	// switched off. The header says which, so that after a rollback
	// `curl -i` shows where the request went.
	if tg.servedByHeader != "" {
		w.Header()[tg.servedByHeader] = tg.servedByValue
	}
	code, n, ferr := forward(tg.pool, w, r)
	a := answer{code: code, n: n, err: ferr}
	if ferr != nil && clientGone(r.Context(), ferr) {
		// Nothing to answer and nobody to blame but the client.
		a.outcome = turnout.ClientClosed
		if a.code == 0 {
			a.code = turnout.StatusClientClosed
		}
	} else if ferr != nil {
		a.code = g.originError(w, tg, ferr, id, a.code)
		a.outcome, a.reason = turnout.Error, originReason(ferr)
		if isClientError(ferr) {
			a.outcome = turnout.Rejected
		}
	} else if a.code == 0 {
		a.code = http.StatusSwitchingProtocols // hijacked: an upgraded connection
	}
	g.finish(r, id, path, tg, start, &a)
}

// answer is how a request was answered, for metrics, the access log and
// the Observe hook.
type answer struct {
	outcome  turnout.Outcome
	reason   string // why not served by the primary ("" when it was)
	code     int
	n        int64 // response body bytes
	err      error // for the access log
	fellBack bool  // the fallback answered
	// body is the request body when it was buffered (function routes,
	// replayable requests on routes with a fallback); buffered says so.
	body     []byte
	buffered bool
}

// finish records a request that has been answered: metrics, the access
// log and the Observe hook. tg is nil for requests no route took.
func (g *Gateway) finish(r *http.Request, id, path string, tg *target, start time.Time, a *answer) {
	d := time.Since(start)
	if tg != nil {
		tg.observerFor(a.fellBack).Observe(a.outcome, a.code, d.Seconds())
	} else {
		g.unrouted.Observe(a.outcome, a.code, d.Seconds())
	}
	g.logAccess(r, id, path, tg, start, a)
	if g.opts.Observe != nil {
		g.observe(r, tg, start, d, a)
	}
}

// isClientError reports a forward that failed on the client's request body.
func isClientError(err error) bool {
	var oe *origin.Error
	return errors.As(err, &oe) && oe.Kind == origin.KindClient
}

// clientBodyMessage is the answer to a request whose body could not be read.
func clientBodyMessage(oe *origin.Error) string {
	if oe.StatusCode() == http.StatusRequestTimeout {
		return "the request body stalled"
	}
	return "malformed request body: " + oe.Err.Error()
}

// originReason names a failed origin exchange for the outcome's reason:
// "origin_connect", "origin_timeout", ..., or "origin_aborted" when the
// response had started.
func originReason(err error) string {
	var oe *origin.Error
	if errors.As(err, &oe) {
		return turnout.OriginReason(oe.Kind.String())
	}
	return turnout.ReasonOriginAborted
}

// check enforces the request policy docs/routing.md documents under "Request
// policy and path normalisation" and returns the path to match and forward.
func (g *Gateway) check(t *Table, r *http.Request) (path, reason string, err error) {
	if r.Method == http.MethodConnect {
		return "", turnout.ReasonConnect, errors.New("CONNECT is not supported")
	}
	for k := range r.Header {
		if strings.IndexByte(k, '_') >= 0 {
			return "", turnout.ReasonUnderscoreHeader, fmt.Errorf("header name %q contains an underscore", k)
		}
	}
	raw := r.RequestURI
	if raw == "" || raw[0] != '/' {
		// Absolute form ("GET http://host/path"): the client names the host.
		// Accept it only for a host some route declares.
		if !t.routes.HasHost(route.NormalizeHost(r.URL.Host)) {
			return "", turnout.ReasonAbsoluteForm, fmt.Errorf("request target %q names a host no route serves", raw)
		}
		raw = r.URL.EscapedPath()
	} else if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	path, err = route.NormalizePath(raw)
	if err != nil {
		return raw, turnout.ReasonBadPath, err
	}
	if path != raw {
		// Forward exactly what was matched.
		dec, derr := url.PathUnescape(path)
		if derr != nil {
			return raw, turnout.ReasonBadPath, route.ErrPathEscape
		}
		r.URL.Path, r.URL.RawPath = dec, path
		if dec == path {
			r.URL.RawPath = ""
		}
	}
	return path, "", nil
}

// originError answers a failed exchange with tg's origin and returns the
// status sent.
func (g *Gateway) originError(w http.ResponseWriter, tg *target, err error, id string, written int) int {
	return g.originErrorFor(w, tg, tg.origin, "", err, id, written)
}

// originErrorFor answers a failed exchange with origin name, tg's own or,
// when fellBackFor gives the primary's failure, its fallback.
func (g *Gateway) originErrorFor(w http.ResponseWriter, tg *target, name, fellBackFor string, err error, id string, written int) int {
	var oe *origin.Error
	if !errors.As(err, &oe) {
		// The response had started; the origin package has aborted it.
		if written == 0 {
			written = http.StatusBadGateway
		}
		return written
	}
	answeredByGateway(w, tg.servedByHeader, originReason(err), turnout.OriginTarget(name), fellBackFor)
	code := oe.StatusCode()
	msg := "origin " + name + ": " + oe.Kind.String()
	switch {
	case oe.Kind == origin.KindClient:
		// The client's body broke, not the origin: not an origin error.
		msg = clientBodyMessage(oe)
	case code == http.StatusGatewayTimeout:
		msg = "origin " + name + " did not answer in time"
		fallthrough
	default:
		g.opts.Metrics.OriginErrors.WithLabelValues(name, oe.Kind.String()).Inc()
	}
	writeError(w, code, msg, id)
	return code
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

// logAccess writes the access-log record of one answered request. Its
// outcome and reason are those of turnout_requests_total; a client that
// went away is outcome client_closed with status 499 (nginx's), unless a
// status had already been sent.
func (g *Gateway) logAccess(r *http.Request, id, path string, tg *target, start time.Time, a *answer) {
	if g.opts.AccessLog == nil {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", path),
	)
	if tg != nil {
		attrs = append(attrs, slog.String("route", tg.pattern), slog.String("target", tg.name))
		if tg.off {
			attrs = append(attrs, slog.Bool("route_off", true))
		}
	}
	attrs = append(attrs,
		slog.Int("status", a.code),
		slog.String("outcome", a.outcome.String()),
	)
	if a.reason != "" {
		attrs = append(attrs, slog.String("reason", a.reason))
	}
	attrs = append(attrs,
		slog.Int64("bytes", a.n),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("remote", r.RemoteAddr),
	)
	if a.err != nil {
		attrs = append(attrs, slog.String("error", a.err.Error()))
	}
	g.opts.AccessLog.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}
