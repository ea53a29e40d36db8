package gateway

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/metrics"
)

// TestOneSwapPerDeployment: turnout serve activates a deployment twice, once
// from the admin API's apply and once from the store's watch, which can see
// the new id before the first activation has swapped it in. The deployment
// must be swapped in, logged and counted once.
func TestOneSwapPerDeployment(t *testing.T) {
	o := newOrigin(t, "legacy")
	cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf("origins: {legacy: {url: %s}}\nroutes: [{match: /, origin: legacy}]\n", o.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer // slog's handler serialises its writes
	m := metrics.New()
	gw := New(Options{Metrics: m, RetireGrace: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer gw.Close()

	for id := uint64(1); id <= 3; id++ {
		var wg sync.WaitGroup
		for range 2 { // Activate and the store watch
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := gw.Apply(id, cfg); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if err := gw.Apply(id, cfg); err != nil { // a late echo
			t.Fatal(err)
		}
		if got := gw.Active().Deployment; got != id {
			t.Fatalf("serving deployment %d, want %d", got, id)
		}
	}
	if got := testutil.ToFloat64(m.Deployments); got != 3 {
		t.Errorf("turnout_route_table_swaps_total = %v after 3 deployments, want 3", got)
	}
	if got := strings.Count(logs.String(), "route table swapped"); got != 3 {
		t.Errorf("%q logged %d times for 3 deployments:\n%s", "route table swapped", got, logs.String())
	}
}
