package edge

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/metrics"
)

// TestCertificateMetrics: the collector reports each static certificate's
// expiry by name and counts handshakes refused for an unknown name or a
// missing SNI; promlint finds nothing to fix.
func TestCertificateMetrics(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	tc := &config.TLS{Certificates: []config.CertificateFiles{ca.issue(t, dir, "api.test")}}
	r := start(t, Options{Handler: http.NotFoundHandler(), Limits: limits(nil), TLS: tc})
	for _, name := range []string{"other.test", "nope.test", ""} {
		// "" with no static certificate for 127.0.0.1: refused for no SNI.
		if c, err := tls.Dial("tcp", r.secure, &tls.Config{RootCAs: ca.Pool, ServerName: name, InsecureSkipVerify: name == ""}); err == nil {
			c.Close()
			t.Fatalf("SNI %q: handshake succeeded", name)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.e.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	exp := got["turnout_tls_certificate_expiry_timestamp_seconds{name=api.test,source=static}"]
	if exp < float64(time.Now().Unix()) || exp > float64(time.Now().Add(400*24*time.Hour).Unix()) {
		t.Errorf("api.test expiry %v, want a time within the next 400 days; got %v", exp, got)
	}
	if v := got["turnout_tls_handshakes_refused_total{reason=unknown_name}"]; v != 2 {
		t.Errorf("unknown_name refusals %v, want 2; got %v", v, got)
	}
	if v := got["turnout_tls_handshakes_refused_total{reason=no_sni}"]; v != 1 {
		t.Errorf("no_sni refusals %v, want 1; got %v", v, got)
	}
	if problems, err := testutil.CollectAndLint(r.e.Collector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestCollectorMatchesFamilies: the collector describes exactly the
// families metrics.EdgeFamilies lists (which the Grafana dashboard is
// checked against).
func TestCollectorMatchesFamilies(t *testing.T) {
	ch := make(chan *prometheus.Desc, 8)
	edgeCollector{}.Describe(ch)
	close(ch)
	var got []string
	for d := range ch {
		got = append(got, d.String())
	}
	fams := metrics.EdgeFamilies()
	if len(got) != len(fams) {
		t.Fatalf("collector describes %d families, metrics.EdgeFamilies lists %d", len(got), len(fams))
	}
	for i, f := range fams {
		if !strings.Contains(got[i], `fqName: "`+f.Name+`"`) || !strings.Contains(got[i], "variableLabels: {"+strings.Join(f.Labels, ",")+"}") {
			t.Errorf("family %d: %s, want %s %v", i, got[i], f.Name, f.Labels)
		}
	}
}
