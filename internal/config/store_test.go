package config

import (
	"os"
	"testing"
	"time"
)

func TestStoreDefaults(t *testing.T) {
	bolt := (&Config{}).WithDefaults()
	if bolt.Store.Path != "turnout.db" || bolt.Store.Etcd != nil {
		t.Fatalf("default store = %+v, want the bbolt file turnout.db", bolt.Store)
	}

	c, err := Parse("fleet.yaml", []byte("store: {etcd: {endpoints: [http://127.0.0.1:2379]}}\norigins: {legacy: {url: http://127.0.0.1:9000}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := c.WithDefaults()
	e := d.Store.Etcd
	if d.Store.Path != "" || e.Prefix != "/turnout/" || e.DialTimeout != Duration(5*time.Second) || len(e.Endpoints) != 1 {
		t.Fatalf("etcd store with defaults = path %q, %+v", d.Store.Path, e)
	}
	e.Endpoints[0] = "changed"
	if c.Store.Etcd.Endpoints[0] != "http://127.0.0.1:2379" || c.Store.Etcd.Prefix != "" {
		t.Fatal("WithDefaults changed the config it copied")
	}
}

func TestNodeName(t *testing.T) {
	if got := (&Config{Node: Node{Name: "edge-1"}}).NodeName(); got != "edge-1" {
		t.Fatalf("NodeName = %q, want edge-1", got)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "turnout"
	}
	if got := (&Config{}).NodeName(); got != host {
		t.Fatalf("NodeName without node.name = %q, want the host name %q", got, host)
	}
}
