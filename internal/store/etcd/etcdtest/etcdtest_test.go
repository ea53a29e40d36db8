package etcdtest

import (
	"net/http"
	"testing"
	"time"
)

func TestClusterKillRestart(t *testing.T) {
	c := Start(t, 3)
	if n := len(c.Endpoints()); n != 3 {
		t.Fatalf("%d endpoints, want 3", n)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	c.Kill(1)
	if c.Member(1).running() {
		t.Fatal("member 1 still running after Kill")
	}
	if err := c.Member(1).health(client); err == nil {
		t.Fatal("killed member answers /health")
	}
	c.Restart(1)
	c.WaitHealthy()
	for i := 0; i < 3; i++ {
		if err := c.Member(i).health(client); err != nil {
			t.Fatalf("member %d after restart: %v", i, err)
		}
	}
}
