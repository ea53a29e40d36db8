package etcdtest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/testkit"
)

// writeCerts writes into dir a CA, a server certificate for 127.0.0.1 and
// a client certificate, all signed by the CA, and returns the client's
// files and the server's.
func writeCerts(t testing.TB, dir string) (client, server TLSFiles) {
	ca := testkit.NewCA(t, dir, "turnout test etcd CA")
	server = TLSFiles{CA: ca.File}
	server.Cert, server.Key = ca.Issue(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1")
	client = TLSFiles{CA: ca.File}
	client.Cert, client.Key = ca.Issue(t, dir, "client", x509.ExtKeyUsageClientAuth, "client", "127.0.0.1")
	return client, server
}

// httpClient returns a client for the members' /health: with f's CA and
// client certificate when the cluster is TLS.
func httpClient(f *TLSFiles) (*http.Client, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	if f == nil {
		return c, nil
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	pemCA, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		return nil, fmt.Errorf("%s: no certificate", f.CA)
	}
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}
	return c, nil
}
