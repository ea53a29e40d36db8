// Package metrics defines turnout's Prometheus metrics: what the data plane
// counts per route, target and function, the gauges read at scrape time from
// the gateway and the function host, and the control plane's gauges. The
// admin listener exposes them at /metrics.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/turnout/turnout"
)

// Metrics holds turnout's collectors in their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	// Requests counts answered requests by route pattern, target, status
	// class ("2xx", …) and outcome (turnout.Outcome). Target is what answered:
	// the fallback's "origin:NAME" when it did. Requests no route matched,
	// or refused before routing, have route and target "".
	Requests *prometheus.CounterVec
	// Duration observes request duration by route and target.
	Duration *prometheus.HistogramVec
	// Rejected counts requests refused before routing, by reason
	// ("bad_path", "underscore_header", "absolute_form", "connect",
	// "no_route", "no_deployment"), and those over a route's rate limit
	// ("rate_limited").
	Rejected *prometheus.CounterVec
	// OriginErrors counts failed origin exchanges by origin and kind
	// ("connect", "timeout", "protocol"; origin.Kind's names). A client
	// whose body could not be read is not counted: the origin is not at
	// fault.
	OriginErrors *prometheus.CounterVec
	// Invocations counts function invocations the gateway made, by
	// function, platform ("hosted", "aws") and result (see FunctionResult).
	Invocations *prometheus.CounterVec
	// InvocationDuration observes how long each invocation took as seen
	// from the gateway (queueing, cold start and the function's own time).
	InvocationDuration *prometheus.HistogramVec
	// InitDuration observes hosted function instance start-ups: from spawn
	// to the runtime's first request for work.
	InitDuration *prometheus.HistogramVec
	// Fallbacks counts requests served by a route's fallback, by route and
	// reason ("throttled", "timeout", "function_error", "breaker_open", ...).
	Fallbacks *prometheus.CounterVec
	// CanaryRequests counts the requests of routes with a canary by
	// route, side ("baseline", "canary"; turnout.Side) and outcome: the
	// per-side numbers a rollout compares. A family of its own rather than
	// a side label on Requests, which would change every series of every
	// route for the few that split (see docs/observability.md).
	CanaryRequests *prometheus.CounterVec
	// CanaryDuration observes those requests' duration by route and side.
	CanaryDuration *prometheus.HistogramVec
	// ShadowRequests counts the requests routes copied to their shadow,
	// by route and result (match, diff, noise_only, shadow_error,
	// dropped; internal/shadow).
	ShadowRequests *prometheus.CounterVec
	// Auth counts the requests routes' authorizers checked, by route,
	// authorizer and result (allowed, unauthorized, forbidden, denied,
	// error; docs/authorizers.md).
	Auth *prometheus.CounterVec
	// APIKeyRequests counts the requests to routes with api_key_required,
	// by key name ("" when none matched) and result (allowed, missing,
	// invalid, disabled, throttled; docs/api-keys.md).
	APIKeyRequests *prometheus.CounterVec
	// ActiveDeployment is the id of the deployment this node serves.
	ActiveDeployment prometheus.Gauge
	// Deployments counts route tables swapped in.
	Deployments prometheus.Counter
	// NodeActiveDeployment is the deployment this node serves, labelled
	// with the node's name (node.name), so a fleet's series tell nodes apart
	// in one query.
	NodeActiveDeployment *prometheus.GaugeVec
	// Propagation observes, for each deployment this node swaps in after
	// it started, the time from the deployment's creation (on any node) to
	// this node serving it.
	Propagation prometheus.Histogram
}

// StoreConnected registers turnout_store_connected, read from connected at
// scrape time: 1 while the deployment store answers (always, for the
// embedded bolt store), 0 while a fleet's etcd cannot be reached.
func (m *Metrics) StoreConnected(connected func() bool) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "turnout_store_connected",
		Help: "1 while the deployment store answers, 0 while it cannot be reached (the data plane keeps serving).",
	}, func() float64 {
		if connected() {
			return 1
		}
		return 0
	}))
}

// Scrape-time series: collected from live state by the gateway's and the
// function host's collectors (gateway.HealthCollector, FunctionCollector).
var (
	// OriginUp is 1 for an origin instance that is healthy and not ejected.
	OriginUp = prometheus.NewDesc("turnout_origin_up",
		"1 when an origin instance is healthy and not ejected, else 0.", []string{"origin", "address"}, nil)
	// BreakerState is each guarded route's circuit breaker.
	BreakerState = prometheus.NewDesc("turnout_breaker_state",
		"Circuit breaker per route: 0 closed, 1 open, 2 half-open.", []string{"route"}, nil)

	functionInstances = prometheus.NewDesc("turnout_function_instances",
		"Running instances of a hosted function, by state (idle, busy; busy includes starting).", []string{"function", "state"}, nil)
	functionInUse = prometheus.NewDesc("turnout_function_concurrency_in_use",
		"Invocations of a hosted function holding a concurrency slot.", []string{"function"}, nil)
	functionLimit = prometheus.NewDesc("turnout_function_concurrency_limit",
		"A hosted function's concurrency limit.", []string{"function"}, nil)
	functionColdStarts = prometheus.NewDesc("turnout_function_cold_starts_total",
		"Instances of a hosted function started for an invocation (cold starts, failed ones included).", []string{"function"}, nil)
)

// durationBuckets suit a proxy: 0.5 ms to 30 s.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New creates the collectors and registers them, with Go runtime and
// process collectors, in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_requests_total",
			Help: "Requests answered, by route pattern, target that answered, status class and outcome.",
		}, []string{"route", "target", "code", "outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "turnout_request_duration_seconds",
			Help:    "Time from request start to the end of the response, by route and target that answered.",
			Buckets: durationBuckets,
		}, []string{"route", "target"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_requests_rejected_total",
			Help: "Requests refused before routing or over a rate limit, by reason.",
		}, []string{"reason"}),
		OriginErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_origin_errors_total",
			Help: "Origin exchanges that failed before a response, by origin and kind.",
		}, []string{"origin", "kind"}),
		Invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_function_invocations_total",
			Help: "Function invocations made by the gateway, by function, platform and result.",
		}, []string{"function", "platform", "result"}),
		InvocationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "turnout_function_invocation_duration_seconds",
			Help:    "Function invocation time as seen by the gateway (queueing and cold start included), by function and platform.",
			Buckets: durationBuckets,
		}, []string{"function", "platform"}),
		InitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "turnout_function_init_duration_seconds",
			Help:    "Hosted function instance start-up time, from spawn to the runtime's first request for work.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"function"}),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_fallbacks_total",
			Help: "Requests sent to the route's fallback, by route and reason.",
		}, []string{"route", "reason"}),
		CanaryRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_canary_requests_total",
			Help: "Requests of routes with a canary, by route, side (baseline or canary) and outcome.",
		}, []string{"route", "side", "outcome"}),
		CanaryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "turnout_canary_request_duration_seconds",
			Help:    "Duration of the requests of routes with a canary, by route and side (baseline or canary).",
			Buckets: durationBuckets,
		}, []string{"route", "side"}),
		ShadowRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_shadow_requests_total",
			Help: "Requests copied to a route's shadow, by route and result: match, diff, noise_only, shadow_error or dropped.",
		}, []string{"route", "result"}),
		Auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_auth_total",
			Help: "Requests checked by a route's authorizer, by route, authorizer and result: allowed, unauthorized, forbidden, denied or error.",
		}, []string{"route", "authorizer", "result"}),
		APIKeyRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_api_key_requests_total",
			Help: "Requests to routes that require an API key, by key name (empty when none matched) and result: allowed, missing, invalid, disabled or throttled.",
		}, []string{"key", "result"}),
		ActiveDeployment: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_active_deployment",
			Help: "Id of the deployment this node serves.",
		}),
		Deployments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_route_table_swaps_total",
			Help: "Route tables swapped in since start.",
		}),
		NodeActiveDeployment: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "turnout_node_active_deployment",
			Help: "Id of the deployment this node serves, by node name.",
		}, []string{"node"}),
		Propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "turnout_deployment_propagation_seconds",
			Help:    "From a deployment's creation (on any node) to this node serving it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	m.Registry.MustRegister(m.Requests, m.Duration, m.Rejected, m.OriginErrors, m.Invocations, m.InvocationDuration,
		m.InitDuration, m.Fallbacks, m.CanaryRequests, m.CanaryDuration, m.ShadowRequests, m.Auth, m.APIKeyRequests, m.ActiveDeployment, m.Deployments, m.NodeActiveDeployment, m.Propagation,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Family is one metric family turnout exposes and its labels.
type Family struct {
	Name   string // histograms by their base name
	Labels []string
}

// Families lists every turnout_ metric family this package defines,
// scrape-time ones included: the reference the docs/observability.md table and the
// Grafana dashboard are checked against.
func Families() []Family {
	return []Family{
		{"turnout_requests_total", []string{"route", "target", "code", "outcome"}},
		{"turnout_request_duration_seconds", []string{"route", "target"}},
		{"turnout_requests_rejected_total", []string{"reason"}},
		{"turnout_origin_errors_total", []string{"origin", "kind"}},
		{"turnout_function_invocations_total", []string{"function", "platform", "result"}},
		{"turnout_function_invocation_duration_seconds", []string{"function", "platform"}},
		{"turnout_function_init_duration_seconds", []string{"function"}},
		{"turnout_fallbacks_total", []string{"route", "reason"}},
		{"turnout_canary_requests_total", []string{"route", "side", "outcome"}},
		{"turnout_canary_request_duration_seconds", []string{"route", "side"}},
		{"turnout_shadow_requests_total", []string{"route", "result"}},
		{"turnout_auth_total", []string{"route", "authorizer", "result"}},
		{"turnout_api_key_requests_total", []string{"key", "result"}},
		{"turnout_active_deployment", nil},
		{"turnout_route_table_swaps_total", nil},
		{"turnout_deployment_propagation_seconds", nil},
		{"turnout_origin_up", []string{"origin", "address"}},
		{"turnout_breaker_state", []string{"route"}},
		{"turnout_function_instances", []string{"function", "state"}},
		{"turnout_function_concurrency_in_use", []string{"function"}},
		{"turnout_function_concurrency_limit", []string{"function"}},
		{"turnout_function_cold_starts_total", []string{"function"}},
	}
}

// EdgeFamilies lists the families internal/edge reports (its Collector,
// registered by turnout serve): they describe HTTPS and the public
// listeners' connections, so the Grafana dashboard shows them too.
func EdgeFamilies() []Family {
	return []Family{
		{"turnout_tls_certificate_expiry_timestamp_seconds", []string{"name", "source"}},
		{"turnout_tls_handshakes_refused_total", []string{"reason"}},
		{"turnout_connections_open", []string{"listener"}},
		{"turnout_connections_limit", []string{"listener"}},
		{"turnout_connections_evicted_total", []string{"listener"}},
	}
}

// NodeFamilies lists the families only a serving node reports: its name's
// active deployment (set once it serves one) and its store's state
// (StoreConnected, registered by turnout serve).
func NodeFamilies() []Family {
	return []Family{
		{"turnout_node_active_deployment", []string{"node"}},
		{"turnout_store_connected", nil},
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ObserveInit records a hosted function instance's start-up time; it suits
// fnhost.Options.OnInit.
func (m *Metrics) ObserveInit(function string, d time.Duration) {
	m.InitDuration.WithLabelValues(function).Observe(d.Seconds())
}

// ClassOf returns the status class label for code: "1xx" … "5xx".
func ClassOf(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return classes[code/100-1]
}

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

func classIndex(code int) int {
	if code >= 100 && code <= 599 {
		return code/100 - 1
	}
	return len(classes) - 1
}

// Target is the set of children for one route and target, resolved once per
// route table so the request path does no label hashing. Served children
// are created up front (so their rates start at zero); the other outcomes'
// on first use.
type Target struct {
	vec           *prometheus.CounterVec
	route, target string
	counts        [turnout.NumOutcomes][len(classes)]atomic.Pointer[prometheus.Counter]
	duration      prometheus.Observer
}

// For resolves the children for route and its primary target.
func (m *Metrics) For(route, target string) *Target {
	t := m.ForFallback(route, target)
	for i := range classes {
		t.child(turnout.Served, i)
	}
	return t
}

// ForFallback resolves the children for route and its fallback target,
// which never serves as the primary: no children are created up front.
func (m *Metrics) ForFallback(route, target string) *Target {
	return &Target{vec: m.Requests, route: route, target: target, duration: m.Duration.WithLabelValues(route, target)}
}

// Unrouted resolves the children for requests answered before a route was
// chosen (rejected, no route): route and target "". Nothing is created up
// front, so a node that never rejects exports no such series.
func (m *Metrics) Unrouted() *Target {
	return &Target{vec: m.Requests, duration: m.Duration.WithLabelValues("", "")}
}

func (t *Target) child(o turnout.Outcome, class int) prometheus.Counter {
	if p := t.counts[o][class].Load(); p != nil {
		return *p
	}
	c := t.vec.WithLabelValues(t.route, t.target, classes[class], o.String())
	t.counts[o][class].Store(&c)
	return c
}

// Observe records one request.
func (t *Target) Observe(o turnout.Outcome, code int, seconds float64) {
	if o >= turnout.NumOutcomes {
		o = turnout.Error
	}
	t.child(o, classIndex(code)).Inc()
	t.duration.Observe(seconds)
}

// Split is the per-side children of one route with a canary, resolved
// once per route table as a Target is: each side's served count and
// duration up front, the other outcomes on first use.
type Split struct {
	vec      *prometheus.CounterVec
	route    string
	counts   [2][turnout.NumOutcomes]atomic.Pointer[prometheus.Counter]
	duration [2]prometheus.Observer
}

// Split resolves the per-side children for route.
func (m *Metrics) Split(route string) *Split {
	s := &Split{vec: m.CanaryRequests, route: route}
	for _, side := range []turnout.Side{turnout.Baseline, turnout.Canary} {
		s.duration[side] = m.CanaryDuration.WithLabelValues(route, side.String())
		s.child(side, turnout.Served)
	}
	return s
}

func (s *Split) child(side turnout.Side, o turnout.Outcome) prometheus.Counter {
	if p := s.counts[side][o].Load(); p != nil {
		return *p
	}
	c := s.vec.WithLabelValues(s.route, side.String(), o.String())
	s.counts[side][o].Store(&c)
	return c
}

// Observe records one request on side.
func (s *Split) Observe(side turnout.Side, o turnout.Outcome, seconds float64) {
	if o >= turnout.NumOutcomes {
		o = turnout.Error
	}
	if side > turnout.Canary {
		side = turnout.Baseline
	}
	s.child(side, o).Inc()
	s.duration[side].Observe(seconds)
}

// Function results: the result label of turnout_function_invocations_total.
// Invocations that could not run use invoke.ErrorKind's names
// ("throttled", "init_failed", "request_too_large", "response_too_large",
// "not_found", "invalid_request", "service").
const (
	ResultSuccess   = "success"            // a well-formed response, whatever its status
	ResultError     = "function_error"     // the handler reported an error (or panicked)
	ResultCrash     = "crash"              // the runtime process exited mid-invocation
	ResultTimeout   = "timeout"            // past the function's timeout or the route's deadline
	ResultMalformed = "malformed_response" // not a valid API Gateway proxy response
	// ResultClientClosed: the client went away before the invocation
	// ended (running, or queued for a concurrency slot). The gateway stops
	// waiting; a hosted invocation already running goes on to completion
	// or its timeout, holding its slot, and its result is not seen here.
	ResultClientClosed = "client_closed"
)

// Function is one function's invocation children, resolved once per
// route table. Success is pre-resolved; failures hash their labels.
type Function struct {
	vec            *prometheus.CounterVec
	name, platform string
	success        prometheus.Counter
	duration       prometheus.Observer
}

// Function resolves the children for function name on platform ("hosted" or "aws").
func (m *Metrics) Function(name, platform string) *Function {
	return &Function{vec: m.Invocations, name: name, platform: platform,
		success:  m.Invocations.WithLabelValues(name, platform, ResultSuccess),
		duration: m.InvocationDuration.WithLabelValues(name, platform)}
}

// Observe records one invocation.
func (f *Function) Observe(result string, seconds float64) {
	if result == ResultSuccess {
		f.success.Inc()
	} else {
		f.vec.WithLabelValues(f.name, f.platform, result).Inc()
	}
	f.duration.Observe(seconds)
}
