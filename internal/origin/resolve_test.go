package origin

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/origin/origintest"
	"github.com/turnout/turnout/internal/testkit"
)

// The names these tests give their origins: .test is reserved (RFC 6761),
// so no resolver but the test's knows them.
const testName = "legacy.turnout.test"

func startDNS(t testing.TB) *origintest.DNS {
	t.Helper()
	d, err := origintest.StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var loopback = netip.MustParseAddr("127.0.0.1")

// The goroutine path's dials (a request, a health check) look the
// instance's name up with the pool's resolver: no other knows it. (Their
// questions may be one: a resolver joins concurrent lookups of a name.)
func TestDialersUsePoolResolver(t *testing.T) {
	dns := startDNS(t)
	dns.Set(testName, loopback)
	var checks atomic.Int32
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			checks.Add(1)
		}
		fmt.Fprint(w, "named")
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(o.URL, "http://"))
	p := newTestPool(t, config.Origin{HealthCheck: config.HealthCheck{Path: "/health", Interval: dur(20 * time.Millisecond)}},
		Options{Resolver: dns.Resolver()}, "http://"+testName+":"+port)
	if resp, body := get(t, front(t, p).URL+"/"); resp.StatusCode != 200 || body != "named" {
		t.Fatalf("goroutine path: %d %q", resp.StatusCode, body)
	}
	testkit.Eventually(t, 5*time.Second, "a health check through the pool's resolver", func() bool {
		return checks.Load() > 0
	})
	if st := p.Instances()[0]; !st.Healthy {
		t.Errorf("instance unhealthy: %+v", st)
	}
}
