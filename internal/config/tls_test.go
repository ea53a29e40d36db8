package config

import (
	"slices"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8081": true, "127.1.2.3:1": true, "[::1]:8081": true, "localhost:8081": true, "LOCALHOST:1": true,
		":8081": false, "0.0.0.0:8081": false, "[::]:8081": false, "10.0.0.2:8081": false, "admin.internal:8081": false, "nonsense": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestTLSDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte("tls: {domains: [a.example.com]}\norigins: {legacy: {url: http://127.0.0.1:9000}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.RedirectHTTP || c.TLS.Listen != "" || c.TLS.CA != "" {
		t.Errorf("parsed: %+v, want redirect_http on and nothing else filled in", c.TLS)
	}
	d := c.WithDefaults()
	if d.TLS.Listen != ":8443" || d.TLS.CA != DefaultACMEDirectory || !d.TLS.RedirectHTTP || !slices.Equal(d.TLS.Challenges, []string{"http-01", "tls-alpn-01"}) {
		t.Errorf("WithDefaults: %+v", d.TLS)
	}
	d.TLS.Domains[0] = "changed"
	if c.TLS.Domains[0] != "a.example.com" {
		t.Error("WithDefaults shares tls.domains with its receiver")
	}
	// Static certificates only: no CA is named.
	c, err = Parse("t.yaml", []byte("tls: {redirect_http: false, certificates: [{cert: a, key: b}]}\norigins: {legacy: {url: http://127.0.0.1:9000}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.WithDefaults(); d.TLS.CA != "" || d.TLS.RedirectHTTP {
		t.Errorf("static only: %+v", d.TLS)
	}
	if (&Config{}).WithDefaults().TLS != nil {
		t.Error("WithDefaults made up a tls section")
	}
}
