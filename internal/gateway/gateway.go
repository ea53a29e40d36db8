// Package gateway is turnout's data plane: it checks and normalises each
// request, matches it to its route's plan (primary, fallback, guards) and
// carries the plan out on backends — origins and functions behind one
// interface. Tables of plans are immutable and swapped through an atomic
// pointer, so a deployment never blocks or drops a request.
package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/breaker"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/route"
)

// Options configure a Gateway.
type Options struct {
	// Metrics receives per-route counters; nil means a private registry
	// nobody scrapes.
	Metrics *metrics.Metrics
	// AccessLog receives one record per request; nil disables access logs.
	AccessLog *AccessLogger
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
	// OnCanaryFailure, when set, is called on the request's goroutine for
	// every request a canary failed (as the comparison counts failures),
	// so that a rollout controller can look at once rather than at its next
	// interval (rollout.Controller.CanaryFailed). Keep it quick.
	OnCanaryFailure func()
	// Shadow receives what routes' shadows got (internal/shadow's Report);
	// nil mirrors requests and drops what they got.
	Shadow ShadowSink
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
	// comparisons are the canary routes' per-side counts, by route pattern,
	// primary and canary, kept across tables.
	comparisons map[string]*comparison
	mirrors     map[string]*mirror     // by mirrorKey, with the tables holding each
	authorizers map[string]*authorizer // by their JWT settings, likewise
	keyBuckets  map[string]*keyBucket  // API keys' rate limits, by name and limit, likewise
	wg          sync.WaitGroup         // retirements in progress
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
	return &Gateway{opts: opts, log: opts.Logger, pools: map[string]*sharedPool{}, breakers: map[string]*breaker.Breaker{}, comparisons: map[string]*comparison{},
		mirrors: map[string]*mirror{}, authorizers: map[string]*authorizer{}, keyBuckets: map[string]*keyBucket{}, unrouted: opts.Metrics.Unrouted()}
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
			g.releaseLocked(t)
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
		g.log.Info("route table swapped", "deployment", id, "routes", len(t.plans))
	}
	return nil
}

// Rebuild swaps in cfg compiled again as deployment id, when id is still
// the deployment served: a node-local change (a route switched off with
// --local) to what the same deployment serves. It does nothing when another
// deployment has been swapped in meanwhile.
func (g *Gateway) Rebuild(id uint64, cfg *config.Config) error {
	t, err := g.Build(id, cfg)
	if err != nil {
		return err
	}
	for {
		old := g.cur.Load()
		if old == nil || old.Deployment != id {
			g.mu.Lock()
			g.releaseLocked(t)
			g.mu.Unlock()
			return nil
		}
		if g.cur.CompareAndSwap(old, t) {
			g.opts.Metrics.Deployments.Inc()
			g.retire(old)
			g.log.Info("route table rebuilt", "deployment", id, "routes", len(t.plans))
			return nil
		}
	}
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
		g.releaseLocked(old)
		g.mu.Unlock()
	}()
}

// releaseLocked lets go of what table t holds: its origin pools, closed
// when no table holds them any more, its mirrors, stopped likewise, and its
// canary comparisons.
func (g *Gateway) releaseLocked(t *Table) {
	releaseKeys(g.mirrors, t.mirrorKeys)
	releaseKeys(g.comparisons, t.comparisonKeys)
	releaseKeys(g.authorizers, t.authorizerKeys)
	releaseKeys(g.keyBuckets, t.keyBucketKeys)
	for _, k := range t.keys {
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

// releaseKeys lets go of one table's hold on the entries of m that keys
// name, deleting those it was the last to hold: mirrors and comparisons
// live as long as some table uses them. g.mu is held.
func releaseKeys[T interface{ release() bool }](m map[string]T, keys []string) {
	for _, k := range keys {
		if v, ok := m[k]; ok && v.release() {
			delete(m, k)
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
	for k, m := range g.mirrors {
		m.stop()
		delete(g.mirrors, k)
	}
	for k, a := range g.authorizers {
		a.c.Close()
		delete(g.authorizers, k)
	}
}

// ServeHTTP serves one public request, straight down: the request gets its
// id, is checked against the request policy, answered at once when it is a
// CORS preflight (cors.go), matched to a route, and the route's plan is
// carried out (serve.go); end records how it was answered.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := g.begin(w, r)
	defer g.end(x)

	t := g.cur.Load()
	if t == nil {
		// No deployment, so no served_by_header setting yet: the default.
		x.servedBy = config.DefaultServedByHeader
		x.refuse(http.StatusServiceUnavailable, turnout.ReasonNoDeployment, "no deployment is active yet", nil)
		return
	}
	t.refs.Add(1)
	defer t.refs.Add(-1)
	x.servedBy = t.servedBy

	// A chunked HTTP/1 request may also have carried a Content-Length, which
	// Go's parser drops after letting Transfer-Encoding win (RFC 9112 6.3).
	// Such a message is a smuggling attempt, and RFC 9112 requires closing
	// the connection after answering it; since the two cases cannot be told
	// apart here, every chunked HTTP/1 request closes its connection.
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		w.Header()["Connection"] = []string{"close"}
	}

	path, reason, err := g.check(t, r)
	x.path = path
	if err != nil {
		g.opts.Metrics.Rejected.WithLabelValues(reason).Inc()
		code := http.StatusBadRequest
		if reason == turnout.ReasonConnect {
			code = http.StatusMethodNotAllowed
		}
		x.refuse(code, reason, err.Error(), err)
		return
	}

	if r.Method == http.MethodOptions && g.preflight(t, x) {
		return
	}
	idx, values, ok := t.routes.Match(route.NormalizeHost(r.Host), r.Method, path, x.valueBuf[:0])
	if !ok {
		g.opts.Metrics.Rejected.WithLabelValues(turnout.ReasonNoRoute).Inc()
		x.refuse(http.StatusNotFound, turnout.ReasonNoRoute, "no route matches "+r.Method+" "+path, nil)
		return
	}
	x.plan, x.values = t.plans[idx], values
	if x.plan.cors != nil {
		withCORS(x)
	}
	if x.plan.guard != nil && !g.admit(x) {
		return
	}
	if x.plan.keys != nil && !g.admitKey(x) {
		return
	}
	g.serve(x)
}

// check enforces the request policy docs/routing.md documents under "Request
// policy and path normalisation" and returns the path to match and forward.
// Each rule is one function below, which BeginLoop (loop.go) applies to the
// event loop's requests too.
func (g *Gateway) check(t *Table, r *http.Request) (path, reason string, err error) {
	if r.Method == http.MethodConnect {
		return "", turnout.ReasonConnect, errors.New("CONNECT is not supported")
	}
	for k := range r.Header {
		if underscoreName(k) {
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
	} else {
		raw, _, _ = splitTarget(raw)
	}
	path, dec, err := normalizePath(raw)
	if err != nil {
		return raw, turnout.ReasonBadPath, err
	}
	if path != raw {
		// Forward exactly what was matched.
		r.URL.Path, r.URL.RawPath = dec, path
		if dec == path {
			r.URL.RawPath = ""
		}
	}
	return path, "", nil
}

// underscoreName reports a header name with an underscore, which the
// request policy refuses (nginx drops them by default): a backend that maps
// names to CGI-style variables reads X_Forwarded_For as X-Forwarded-For.
func underscoreName[S ~string | ~[]byte](name S) bool {
	for i := 0; i < len(name); i++ {
		if name[i] == '_' {
			return true
		}
	}
	return false
}

// splitTarget splits an origin-form request target at its first '?' into
// the path and the query; hasQuery reports the '?'.
func splitTarget[S ~string | ~[]byte](target S) (path, query S, hasQuery bool) {
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			return target[:i], target[i+1:], true
		}
	}
	return target, target[len(target):], false
}

// normalizePath returns the path to match and forward for raw, the
// target's path as received (route.NormalizePath), and, when it differs
// from raw, dec, its decoded form, for the request's URL.
func normalizePath(raw string) (path, dec string, err error) {
	path, err = route.NormalizePath(raw)
	if err != nil || path == raw {
		return path, "", err
	}
	dec, err = url.PathUnescape(path)
	if err != nil {
		return "", "", route.ErrPathEscape
	}
	return path, dec, nil
}
