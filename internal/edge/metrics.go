package edge

import (
	"crypto/tls"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	certExpiryDesc = prometheus.NewDesc("turnout_tls_certificate_expiry_timestamp_seconds",
		"When the certificate served for a name expires (Unix time), by name and source (acme or static); absent for a name with no certificate yet.",
		[]string{"name", "source"}, nil)
	refusedSNIDesc = prometheus.NewDesc("turnout_tls_handshakes_refused_total",
		"TLS handshakes refused for want of a certificate, by reason: unknown_name (an SNI no config names) or no_sni.",
		[]string{"reason"}, nil)
	connsOpenDesc = prometheus.NewDesc("turnout_connections_open",
		"Client connections open on a public listener (http or https).",
		[]string{"listener"}, nil)
	connsLimitDesc = prometheus.NewDesc("turnout_connections_limit",
		"limits.max_connections: the most client connections a public listener (http or https) holds.",
		[]string{"listener"}, nil)
	connsEvictedDesc = prometheus.NewDesc("turnout_connections_evicted_total",
		"Idle keep-alive connections closed on a public listener (http or https) to make room for a new client at limits.max_connections.",
		[]string{"listener"}, nil)
)

// Listener labels of the connection families.
const (
	listenerHTTP  = "http"
	listenerHTTPS = "https"
)

// refusals counts handshakes getCertificate refused.
type refusals struct{ unknownName, noSNI atomic.Int64 }

// Collector reports each public listener's connections (open, the limit,
// and idle ones closed to make room), the certificates' expiry times, read when Prometheus
// scrapes (so a renewal shows at the next scrape), and the handshakes
// refused for want of a certificate. Alert on
// turnout_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400:
// ACME renews at a third of the lifetime left, so that means renewals
// have been failing.
func (e *Edge) Collector() prometheus.Collector { return edgeCollector{e} }

type edgeCollector struct{ e *Edge }

func (c edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- certExpiryDesc
	ch <- refusedSNIDesc
	ch <- connsOpenDesc
	ch <- connsLimitDesc
	ch <- connsEvictedDesc
}

func (c edgeCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	expiry := func(name, source string, cert *tls.Certificate) {
		if cert == nil || cert.Leaf == nil {
			return
		}
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(cert.Leaf.NotAfter.Unix()), name, source)
	}
	for name, cert := range e.static {
		expiry(name, "static", cert)
	}
	if cache := e.acmeCache(); cache != nil {
		for name := range e.domains {
			for _, cert := range cache.AllMatchingCertificates(name) {
				expiry(name, "acme", &cert.Certificate)
				break
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(refusedSNIDesc, prometheus.CounterValue, float64(e.refused.unknownName.Load()), "unknown_name")
	ch <- prometheus.MustNewConstMetric(refusedSNIDesc, prometheus.CounterValue, float64(e.refused.noSNI.Load()), "no_sni")
	for _, l := range []*connLimit{e.plainConns, e.secureConns} {
		if l == nil || l.max <= 0 {
			continue
		}
		open, evicted := l.stats()
		if l == e.plainConns && e.loops != nil {
			open, evicted = e.loops.Stats()
		}
		ch <- prometheus.MustNewConstMetric(connsOpenDesc, prometheus.GaugeValue, float64(open), l.name)
		ch <- prometheus.MustNewConstMetric(connsLimitDesc, prometheus.GaugeValue, float64(l.max), l.name)
		ch <- prometheus.MustNewConstMetric(connsEvictedDesc, prometheus.CounterValue, float64(evicted), l.name)
	}
}
