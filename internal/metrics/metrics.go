// Package metrics defines turnout's Prometheus metrics: what the data plane
// counts per route and target, and the gauges the control plane sets. The
// admin listener exposes them at /metrics.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds turnout's collectors in their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	// Requests counts requests by route pattern, target and status class
	// ("2xx", …); requests no route matched have route "".
	Requests *prometheus.CounterVec
	// Duration observes request duration by route and target.
	Duration *prometheus.HistogramVec
	// Rejected counts requests refused before routing, by reason
	// ("bad_path", "underscore_header", "absolute_form", "connect").
	Rejected *prometheus.CounterVec
	// OriginErrors counts failed origin exchanges by origin and kind
	// ("connect", "timeout", "protocol", "no_instance").
	OriginErrors *prometheus.CounterVec
	// FunctionErrors counts function requests that did not get the
	// function's own response, by function and kind ("throttled",
	// "function_error", "timeout", "malformed_response", "init_failed", ...).
	FunctionErrors *prometheus.CounterVec
	// Fallbacks counts requests served by a route's fallback, by route and
	// reason ("throttled", "timeout", "function_error", "breaker_open", ...).
	Fallbacks *prometheus.CounterVec
	// BreakerState is each route's circuit breaker: 0 closed, 1 open, 2 half-open.
	BreakerState *prometheus.GaugeVec
	// ActiveDeployment is the id of the deployment this node serves.
	ActiveDeployment prometheus.Gauge
	// Deployments counts route tables swapped in.
	Deployments prometheus.Counter
}

// New creates the collectors and registers them, with Go runtime and
// process collectors, in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_requests_total",
			Help: "Requests served, by route pattern, target and status class.",
		}, []string{"route", "target", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "turnout_request_duration_seconds",
			Help:    "Time from request start to the end of the response, by route and target.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "target"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_requests_rejected_total",
			Help: "Requests refused before routing, by reason.",
		}, []string{"reason"}),
		OriginErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_origin_errors_total",
			Help: "Origin exchanges that failed before a response, by origin and kind.",
		}, []string{"origin", "kind"}),
		FunctionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_function_errors_total",
			Help: "Function requests answered without the function's response, by function and kind.",
		}, []string{"function", "kind"}),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_fallbacks_total",
			Help: "Requests answered by the route's fallback, by route and reason.",
		}, []string{"route", "reason"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "turnout_breaker_state",
			Help: "Circuit breaker per route: 0 closed, 1 open, 2 half-open.",
		}, []string{"route"}),
		ActiveDeployment: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_active_deployment",
			Help: "Id of the deployment this node serves.",
		}),
		Deployments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_route_table_swaps_total",
			Help: "Route tables swapped in since start.",
		}),
	}
	m.Registry.MustRegister(m.Requests, m.Duration, m.Rejected, m.OriginErrors, m.FunctionErrors, m.Fallbacks, m.BreakerState, m.ActiveDeployment, m.Deployments,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ClassOf returns the status class label for code: "1xx" … "5xx".
func ClassOf(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return classes[code/100-1]
}

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Target is the set of children for one route and target, resolved once per
// route table so the request path does no label hashing.
type Target struct {
	codes    [6]prometheus.Counter // 1xx..5xx, other
	duration prometheus.Observer
}

// For resolves the children for route and target.
func (m *Metrics) For(route, target string) *Target {
	t := &Target{duration: m.Duration.WithLabelValues(route, target)}
	for i, c := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"} {
		t.codes[i] = m.Requests.WithLabelValues(route, target, c)
	}
	return t
}

// Observe records one request.
func (t *Target) Observe(code int, seconds float64) {
	i := 5
	if code >= 100 && code <= 599 {
		i = code/100 - 1
	}
	t.codes[i].Inc()
	t.duration.Observe(seconds)
}
