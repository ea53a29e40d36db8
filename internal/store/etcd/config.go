package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/turnout/turnout/internal/config"
)

// OptionsFrom turns the store.etcd node settings into Options, reading the
// TLS files they name. c has had its defaults applied (WithDefaults).
func OptionsFrom(c *config.Etcd) (Options, error) {
	o := Options{
		Endpoints: c.Endpoints,
		Prefix:    c.Prefix,
		Timeout:   c.DialTimeout.D(),
		Username:  c.Username,
		Password:  c.Password,
	}
	if c.TLS == nil {
		return o, nil
	}
	o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS.CA != "" {
		pem, err := os.ReadFile(c.TLS.CA)
		if err != nil {
			return Options{}, fmt.Errorf("store.etcd.tls.ca: %w", err)
		}
		o.TLS.RootCAs = x509.NewCertPool()
		if !o.TLS.RootCAs.AppendCertsFromPEM(pem) {
			return Options{}, fmt.Errorf("store.etcd.tls.ca: %s holds no PEM certificate", c.TLS.CA)
		}
	}
	if c.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
		if err != nil {
			return Options{}, fmt.Errorf("store.etcd.tls: client certificate %s, key %s: %w", c.TLS.Cert, c.TLS.Key, err)
		}
		o.TLS.Certificates = []tls.Certificate{cert}
	}
	return o, nil
}
