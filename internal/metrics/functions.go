package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout/turnout/internal/fnhost"
)

// FunctionCollector reports hosted functions' live state at scrape time
// from stats (fnhost.Host.Stats): instances by state, concurrency in use
// and the limit (so "in use vs limit" is one PromQL division), and cold
// starts. The host counts these already, so the request path pays nothing.
func FunctionCollector(stats func() []fnhost.FunctionStats) prometheus.Collector {
	return functionCollector(stats)
}

type functionCollector func() []fnhost.FunctionStats

func (c functionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- functionInstances
	ch <- functionInUse
	ch <- functionLimit
	ch <- functionColdStarts
}

func (c functionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c() {
		ch <- prometheus.MustNewConstMetric(functionInstances, prometheus.GaugeValue, float64(s.Idle), s.Function, "idle")
		ch <- prometheus.MustNewConstMetric(functionInstances, prometheus.GaugeValue, float64(s.Busy), s.Function, "busy")
		ch <- prometheus.MustNewConstMetric(functionInUse, prometheus.GaugeValue, float64(s.InUse), s.Function)
		ch <- prometheus.MustNewConstMetric(functionLimit, prometheus.GaugeValue, float64(s.Concurrency), s.Function)
		ch <- prometheus.MustNewConstMetric(functionColdStarts, prometheus.CounterValue, float64(s.ColdStarts), s.Function)
	}
}
