package deploy_test

import (
	"testing"
	"time"

	"github.com/turnout/turnout/internal/deploy"
)

// TestPropagationOf: where each node stands with deployment 5, made at t0.
func TestPropagationOf(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	d := deploy.Deployment{ID: 5, Time: t0}
	p := deploy.PropagationOf(d, []deploy.Node{
		{Name: "a", Deployment: 5, AppliedAt: t0.Add(12340 * time.Microsecond)},
		{Name: "b", Deployment: 6, AppliedAt: t0.Add(time.Second)},        // already on a later one
		{Name: "c", Deployment: 4, Refused: 5, Error: "does not compile"}, // a NACK
		{Name: "d", Deployment: 4},
		{Name: "e", Deployment: 4, Refused: 3, Error: "an older NACK"}, // not about 5
	})
	want := []struct {
		state string
		ms    float64 // -1: none
		err   string
	}{
		{deploy.AckDone, 12.3, ""},
		{deploy.AckDone, -1, ""},
		{deploy.AckRefused, -1, "does not compile"},
		{deploy.AckWaiting, -1, ""},
		{deploy.AckWaiting, -1, ""},
	}
	for i, w := range want {
		a := p.Nodes[i]
		ms := -1.0
		if a.PropagationMS != nil {
			ms = *a.PropagationMS
		}
		if a.State != w.state || ms != w.ms || a.Error != w.err {
			t.Errorf("node %s = %+v (propagation %v), want %s, %v, %q", a.Name, a, ms, w.state, w.ms, w.err)
		}
	}
	if len(p.Refused) != 1 || p.Refused[0] != "c" || len(p.Waiting) != 2 || p.Waiting[0] != "d" || p.Waiting[1] != "e" || p.Settled() {
		t.Errorf("refused %v, waiting %v, settled %v", p.Refused, p.Waiting, p.Settled())
	}
	if p := deploy.PropagationOf(d, nil); !p.Settled() || p.Nodes == nil {
		t.Errorf("no nodes: %+v, want settled with an empty list", p)
	}
}
