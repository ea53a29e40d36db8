package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/authz"
	"github.com/turnout/turnout/internal/metrics"
)

// Status describes what this node serves right now: the admin API's
// route and origin status, and the deployment they come from.
type Status struct {
	Deployment uint64
	Routes     []turnout.RouteStatus
	Origins    []turnout.OriginStatus
	// Authorizers are the authorizers the active table's routes use.
	Authorizers []authz.Status
}

// Status reports the active table; the zero Status before the first Swap.
func (g *Gateway) Status() Status {
	t := g.cur.Load()
	if t == nil {
		return Status{}
	}
	st := Status{Deployment: t.Deployment}
	legacy := t.Config.LegacyOrigin()
	for i, r := range t.Config.Routes {
		rs := r.Status(legacy)
		if b := t.plans[i].breaker; b != nil {
			rs.Breaker = b.State().String()
		}
		st.Routes = append(st.Routes, rs)
	}
	for _, o := range t.Config.Origins {
		st.Origins = append(st.Origins, turnout.OriginStatus{Name: o.Name, Instances: t.pools[o.Name].Instances()})
	}
	st.Authorizers = authorizerStatus(t)
	return st
}

// authorizerStatus reports each authorizer t's routes use, in the order
// of authorizers:, with those routes.
func authorizerStatus(t *Table) []authz.Status {
	byName := map[string]*authz.Status{}
	for i, p := range t.plans {
		gd := p.guard
		if gd == nil {
			continue
		}
		s := byName[gd.name]
		if s == nil {
			st := authz.Status{Kind: "unknown"}
			if r, ok := gd.check.(interface{ Status() authz.Status }); ok {
				st = r.Status()
			}
			st.Name = gd.name
			s = &st
			byName[gd.name] = s
		}
		s.Routes = append(s.Routes, t.Config.Routes[i].Match)
	}
	var out []authz.Status
	for _, a := range t.Config.Authorizers {
		if s := byName[a.Name]; s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// healthCollector reports, at scrape time from the active table, each
// origin instance's health (turnout_origin_up) and each guarded route's
// circuit breaker (turnout_breaker_state).
type healthCollector struct{ g *Gateway }

// HealthCollector returns a Prometheus collector for origin instance health
// and circuit breaker states; register it in the metrics registry.
func (g *Gateway) HealthCollector() prometheus.Collector { return healthCollector{g} }

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- metrics.OriginUp
	ch <- metrics.BreakerState
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.g.cur.Load()
	if t == nil {
		return
	}
	for _, o := range t.Config.Origins {
		for _, in := range t.pools[o.Name].Instances() {
			v := 0.0
			if in.Healthy && !in.Ejected {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(metrics.OriginUp, prometheus.GaugeValue, v, o.Name, in.URL)
		}
	}
	for _, p := range t.plans {
		if p.breaker != nil {
			ch <- prometheus.MustNewConstMetric(metrics.BreakerState, prometheus.GaugeValue, float64(p.breaker.State()), p.pattern)
		}
	}
}
