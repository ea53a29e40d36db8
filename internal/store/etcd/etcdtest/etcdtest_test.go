package etcdtest

import (
	"net"
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

// TestStartOnTakenPort: when another process binds a picked port before
// etcd does, Start tries again on new ports.
func TestStartOnTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 && err == nil {
			ports[len(ports)-1] = taken.Addr().(*net.TCPAddr).Port
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()
	c := Start(t, 3)
	if calls != 2 {
		t.Fatalf("ports picked %d times, want 2 (the first set had a taken port)", calls)
	}
	for i := 0; i < 3; i++ {
		if !c.Member(i).running() {
			t.Fatalf("member %d not running", i)
		}
	}
}
