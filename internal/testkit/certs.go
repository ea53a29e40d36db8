package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority for tests: it issues server and client
// certificates for loopback names and writes them as PEM files.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// Pool holds Cert, for a client's RootCAs.
	Pool *x509.CertPool
	// File is Cert as a PEM file, for configs that name a CA file.
	File string

	serial atomic.Int64
}

// NewCA makes a CA called name, valid for a day, and writes its
// certificate into dir as name.crt.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	ca := &CA{}
	ca.Cert, ca.Key, ca.File, _ = ca.write(t, tmpl, nil, dir, name)
	ca.Pool = x509.NewCertPool()
	ca.Pool.AddCert(ca.Cert)
	return ca
}

// Issue writes a certificate for names (DNS names or IP addresses; the
// first is also its common name) signed by ca, for usage (server or client
// authentication), into dir as base.crt and base.key.
func (ca *CA) Issue(t testing.TB, dir, base string, usage x509.ExtKeyUsage, names ...string) (certFile, keyFile string) {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	addNames(tmpl, names)
	_, _, certFile, keyFile = ca.write(t, tmpl, ca, dir, base)
	return certFile, keyFile
}

// WriteSelfSigned writes a self-signed CA certificate for names (DNS names
// or IP addresses), with its key, into dir as name.crt and name.key: a
// server certificate its clients trust by trusting the file itself.
func WriteSelfSigned(t testing.TB, dir, name string, names ...string) (certFile, keyFile string) {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: names[0]},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	addNames(tmpl, names)
	_, _, certFile, keyFile = (&CA{}).write(t, tmpl, nil, dir, name)
	return certFile, keyFile
}

func addNames(tmpl *x509.Certificate, names []string) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
}

// write signs tmpl with a new key — by parent, or by itself when parent is
// nil — valid from an hour ago for a day, and writes base.crt and base.key
// into dir.
func (ca *CA) write(t testing.TB, tmpl *x509.Certificate, parent *CA, dir, base string) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano() + ca.serial.Add(1))
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, certFile, keyFile
}
