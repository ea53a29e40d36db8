package testkit

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Pebble is Let's Encrypt's test CA and its DNS server
// (pebble-challtestsrv, which resolves every name to 127.0.0.1), running
// on loopback until the test ends.
type Pebble struct {
	// Directory is the ACME directory URL (https).
	Directory string
	// CARoot is the file of the certificate Pebble serves its ACME API
	// under, for the client to trust (turnout's tls.ca_root).
	CARoot string
	// Roots holds Pebble's issuing root: the certificates it issues verify
	// against it.
	Roots *x509.CertPool
	// Out is Pebble's log.
	Out *SyncBuffer
}

// StartPebble starts pebble-challtestsrv and Pebble, whose validation
// authority checks HTTP-01 challenges on httpPort and TLS-ALPN-01 on
// tlsPort of 127.0.0.1: the ports the gateway under test listens on.
// Challenges are validated at once, and a fresh authorization is required
// for every order.
func StartPebble(t testing.TB, httpPort, tlsPort int) *Pebble {
	t.Helper()
	pebble := NeedTool(t, "pebble", "run scripts/install-test-deps.sh as root, or apt-get install -y pebble (Let's Encrypt's test ACME server)")
	challsrv := NeedTool(t, "pebble-challtestsrv", "run scripts/install-test-deps.sh as root, or apt-get install -y pebble (it ships pebble-challtestsrv)")
	dir := t.TempDir()

	cert, key := WriteSelfSigned(t, dir, "pebble", "localhost", "127.0.0.1")
	acmeAddr, mgmtAddr := FreeAddr(t), FreeAddr(t)
	dnsAddr, dnsMgmtAddr := FreeAddr(t), FreeAddr(t)
	p := &Pebble{Directory: "https://" + acmeAddr + "/dir", CARoot: cert, Out: &SyncBuffer{}}

	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  acmeAddr,
		"managementListenAddress":        mgmtAddr,
		"certificate":                    cert,
		"privateKey":                     key,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}})
	cfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}

	var dnsOut SyncBuffer
	StartProcess(t, &dnsOut, nil, challsrv, "-dns01", dnsAddr, "-management", dnsMgmtAddr,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	WaitDial(t, dnsMgmtAddr, "pebble-challtestsrv", &dnsOut)
	StartProcess(t, p.Out, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		pebble, "-config", cfgPath, "-dnsserver", dnsAddr)
	// Pebble opens its ACME and management listeners from two goroutines:
	// the first one up says nothing of the other (TestFleetACME once met a
	// refused /roots/0 right after the ACME port answered).
	WaitDial(t, acmeAddr, "pebble", p.Out)
	WaitDial(t, mgmtAddr, "pebble's management interface", p.Out)

	// The issuing root, from the management interface.
	pool := x509.NewCertPool()
	pemCert, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pemCert)
	mgmt := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := mgmt.Get("https://" + mgmtAddr + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p.Roots = x509.NewCertPool()
	if !p.Roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("Pebble's /roots/0 is not PEM: %q", rootPEM)
	}
	return p
}

// Issued counts the certificates Pebble has issued.
func (p *Pebble) Issued() int {
	return strings.Count(p.Out.String(), "Issued certificate serial")
}

// NeedTool returns the path of the binary name, or fails the test saying
// how to install it.
func NeedTool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: %s", name, install)
	}
	return p
}

// StartProcess runs a helper process, with env added to the test's and its
// output in out, until the test ends.
func StartProcess(t testing.TB, out *SyncBuffer, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// WaitDial waits, at most 15 s, until addr accepts TCP connections, and
// fails the test with what's output otherwise.
func WaitDial(t testing.TB, addr, what string, out *SyncBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s: %v\n%s", what, addr, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr returns a host:port on 127.0.0.1 that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
