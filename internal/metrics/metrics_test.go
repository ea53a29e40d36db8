package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/fnhost"
)

func TestFunctionCollector(t *testing.T) {
	c := FunctionCollector(func() []fnhost.FunctionStats {
		return []fnhost.FunctionStats{{Function: "user", Instances: 3, Busy: 2, Idle: 1, Concurrency: 4, InUse: 2, ColdStarts: 5}}
	})
	want := `
# HELP turnout_function_concurrency_in_use Invocations of a hosted function holding a concurrency slot.
# TYPE turnout_function_concurrency_in_use gauge
turnout_function_concurrency_in_use{function="user"} 2
# HELP turnout_function_concurrency_limit A hosted function's concurrency limit.
# TYPE turnout_function_concurrency_limit gauge
turnout_function_concurrency_limit{function="user"} 4
# HELP turnout_function_instances Running instances of a hosted function, by state (idle, busy; busy includes starting).
# TYPE turnout_function_instances gauge
turnout_function_instances{function="user",state="busy"} 2
turnout_function_instances{function="user",state="idle"} 1
# HELP turnout_function_cold_starts_total Instances of a hosted function started for an invocation (cold starts, failed ones included).
# TYPE turnout_function_cold_starts_total counter
turnout_function_cold_starts_total{function="user"} 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestTargetOutcomes(t *testing.T) {
	m := New()
	tg := m.For("GET /a", "function:f")
	tg.Observe(turnout.Served, 200, 0.01)
	tg.Observe(turnout.Throttled, 429, 0.001)
	tg.Observe(turnout.Throttled, 429, 0.001)
	tg.Observe(turnout.Outcome(200), 999, 0.001) // out of range: error, other
	if v := testutil.ToFloat64(m.Requests.WithLabelValues("GET /a", "function:f", "2xx", "served")); v != 1 {
		t.Errorf("served 2xx %v", v)
	}
	if v := testutil.ToFloat64(m.Requests.WithLabelValues("GET /a", "function:f", "4xx", "throttled")); v != 2 {
		t.Errorf("throttled 4xx %v", v)
	}
	if v := testutil.ToFloat64(m.Requests.WithLabelValues("GET /a", "function:f", "other", "error")); v != 1 {
		t.Errorf("error other %v", v)
	}
	// Six served classes up front, plus the two outcomes that happened.
	if n := testutil.CollectAndCount(m.Requests); n != 8 {
		t.Errorf("%d series, want 8", n)
	}
	if n := testutil.CollectAndCount(m.Duration); n != 1 {
		t.Errorf("%d duration series, want 1", n)
	}
}
