package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/testkit"
)

// stopNode stops a node with SIGTERM and waits for it to exit cleanly (a
// graceful shutdown of every server, HTTPS and redirect included), so that
// its store is closed before another process opens it.
func stopNode(t *testing.T, n *node) {
	t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	if err := testkit.Receive(t, done, 30*time.Second, "turnout to exit after SIGTERM"); err != nil {
		t.Errorf("turnout exited with %v after SIGTERM, want a clean exit\n%s", err, n.logs())
	}
}

func (n *node) logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stderr.String()
}

// pebbleRun is a Pebble CA and a turnout node using it, on loopback.
type pebbleRun struct {
	*testkit.Pebble
	n                   *node
	cfgPath             string
	httpAddr, httpsAddr string
	httpsPort           string
}

// startPebble starts pebble-challtestsrv (DNS: every name is 127.0.0.1),
// Pebble with its validation authority pointed at turnout's ports, and a
// turnout node managing turnout.test with the given ACME challenge only.
func startPebble(t *testing.T, challenge string) *pebbleRun {
	t.Helper()
	r := &pebbleRun{httpAddr: freePort(t), httpsAddr: freePort(t)}
	_, httpPort, _ := net.SplitHostPort(r.httpAddr)
	_, r.httpsPort, _ = net.SplitHostPort(r.httpsAddr)
	r.Pebble = testkit.StartPebble(t, atoiT(t, httpPort), atoiT(t, r.httpsPort))
	dir := t.TempDir()

	legacy := namedOrigin(t, "legacy")
	r.cfgPath = filepath.Join(dir, "turnout.yaml")
	os.WriteFile(r.cfgPath, []byte(fmt.Sprintf(`listen: %s
tls:
  listen: %s
  domains: [turnout.test]
  email: ops@example.com
  ca: %s
  ca_root: %s
  challenges: [%s]
invoke_api: {listen: "off"}
admin:
  listen: 127.0.0.1:0
  tokens: [{name: e2e, role: admin, sha256: %s}]
store: {path: %s}
origins:
  legacy: {url: %s}
routes:
  - {match: /, origin: legacy}
`, r.httpAddr, r.httpsAddr, r.Directory, r.CARoot, challenge, tokenHash(), filepath.Join(dir, "turnout.db"), legacy.URL)), 0o600)

	r.n = startNode(t, r.cfgPath)
	return r
}

// handshake connects to turnout's HTTPS listener as a client that trusts
// only Pebble's root.
func (r *pebbleRun) handshake(serverName string) (*tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.httpsAddr,
		&tls.Config{RootCAs: r.Roots, ServerName: serverName, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st := c.ConnectionState()
	return &st, nil
}

// waitCertificate waits until the certificate, obtained in the background,
// verifies against Pebble's root.
func (r *pebbleRun) waitCertificate(t *testing.T) *tls.ConnectionState {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := r.handshake("turnout.test")
		if err == nil {
			if len(st.VerifiedChains) == 0 || st.PeerCertificates[0].DNSNames[0] != "turnout.test" {
				t.Fatalf("certificate chain not verified for turnout.test: %+v", st.PeerCertificates[0].DNSNames)
			}
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verified certificate for turnout.test after 90s: %v\nturnout:\n%s\npebble:\n%s", err, r.n.logs(), r.Out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// get fetches path from turnout over HTTPS as turnout.test.
func (r *pebbleRun) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: r.Roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, r.httpsAddr)
		},
	}}
	resp, err := client.Get("https://turnout.test:" + r.httpsPort + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestTLSWithPebble runs the real binary against Pebble, Let's Encrypt's
// test CA, on loopback, once per challenge type: turnout obtains a
// certificate for turnout.test (Pebble's DNS resolves every name to
// 127.0.0.1 and its validation authority checks the challenge on turnout's
// own listeners: HTTP-01 through the plain listener, which redirects
// everything else, or TLS-ALPN-01 on the HTTPS listener) and serves HTTPS
// with HTTP/2 under a chain the client verifies against Pebble's root.
// With HTTP-01 it also checks the redirect, that an unknown SNI fails the
// handshake without an order, and that a restart serves the stored
// certificate without ordering again.
func TestTLSWithPebble(t *testing.T) {
	t.Run("http-01", func(t *testing.T) {
		r := startPebble(t, "http-01")
		st := r.waitCertificate(t)
		if st.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN negotiated %q, want h2", st.NegotiatedProtocol)
		}
		if got := r.Issued(); got != 1 {
			t.Errorf("Pebble issued %d certificates, want 1\n%s", got, r.Out)
		}
		if !strings.Contains(r.n.logs(), `"msg":"certificate obtained successfully"`) {
			t.Errorf("turnout's log does not record the certificate it obtained:\n%s", r.n.logs())
		}

		// HTTPS with HTTP/2 through to the legacy origin.
		if resp, body := r.get(t, "/users/1"); resp.ProtoMajor != 2 || body != "legacy" {
			t.Errorf("HTTPS: %s %q, want HTTP/2 and the legacy origin's answer", resp.Proto, body)
		}

		// Plain HTTP redirects to HTTPS.
		noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", "http://"+r.httpAddr+"/users/1?x=1", nil)
		req.Host = "turnout.test"
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "https://turnout.test:" + r.httpsPort + "/users/1?x=1"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
			t.Errorf("plain HTTP: %d %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
		}

		// A name turnout does not serve: the handshake fails, and no order
		// reaches Pebble.
		if _, err := r.handshake("other.test"); err == nil {
			t.Error("handshake for other.test succeeded")
		}
		time.Sleep(500 * time.Millisecond) // an on-demand order would have started by now
		if strings.Contains(r.Out.String(), "other.test") || r.Issued() != 1 {
			t.Errorf("an unknown SNI reached the CA:\n%s", r.Out)
		}

		// /metrics tells when the obtained certificate expires, and counts
		// the refused handshake.
		mresp, err := http.Get(r.n.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		mb, _ := io.ReadAll(mresp.Body)
		mresp.Body.Close()
		wantExpiry := fmt.Sprintf(`turnout_tls_certificate_expiry_timestamp_seconds{name="turnout.test",source="acme"} %g`, float64(st.PeerCertificates[0].NotAfter.Unix()))
		if !strings.Contains(string(mb), wantExpiry) || !strings.Contains(string(mb), `turnout_tls_handshakes_refused_total{reason="unknown_name"} 1`) {
			t.Errorf("metrics lack %s or one refused handshake:\n%s", wantExpiry, grepLines(string(mb), "turnout_tls_"))
		}

		// Restart on the same store: the stored certificate is served, and
		// Pebble sees no new order.
		stopNode(t, r.n)
		first := st.PeerCertificates[0].SerialNumber
		n2 := startNode(t, r.cfgPath)
		st2, err := r.handshake("turnout.test")
		if err != nil {
			t.Fatalf("after restart: %v\n%s", err, n2.logs())
		}
		if st2.PeerCertificates[0].SerialNumber.Cmp(first) != 0 {
			t.Errorf("after restart turnout serves certificate %v, want the stored %v", st2.PeerCertificates[0].SerialNumber, first)
		}
		time.Sleep(time.Second) // a background order would reach Pebble by now
		if got := r.Issued(); got != 1 {
			t.Errorf("after restart Pebble issued %d certificates in all, want still 1", got)
		}
		if strings.Contains(n2.logs(), "obtaining certificate") {
			t.Errorf("turnout ordered a certificate again after restart:\n%s", n2.logs())
		}
	})
	t.Run("tls-alpn-01", func(t *testing.T) {
		r := startPebble(t, "tls-alpn-01")
		r.waitCertificate(t)
		if resp, body := r.get(t, "/"); resp.ProtoMajor != 2 || body != "legacy" {
			t.Errorf("HTTPS: %s %q, want HTTP/2 and the legacy origin's answer", resp.Proto, body)
		}
		if got := r.Issued(); got != 1 {
			t.Errorf("Pebble issued %d certificates, want 1\n%s", got, r.Out)
		}
	})
}

func atoiT(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAdminTLS: the admin API on a non-loopback address without TLS is
// refused before anything starts; with admin.tls it serves HTTPS.
func TestAdminTLS(t *testing.T) {
	dir := t.TempDir()
	legacy := namedOrigin(t, "legacy")
	write := func(admin string) string {
		p := filepath.Join(dir, "turnout.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
invoke_api: {listen: "off"}
admin:
%s
  tokens: [{name: e2e, role: admin, sha256: %s}]
store: {path: %s}
origins:
  legacy: {url: %s}
`, admin, tokenHash(), filepath.Join(dir, "turnout.db"), legacy.URL)), 0o600)
		return p
	}
	// Refused: nothing is bound (the address is never listened on).
	cmd := exec.Command(turnoutBin, "serve", "-c", write("  listen: 0.0.0.0:0"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `admin.listen "0.0.0.0:0" is not a loopback address`) || !strings.Contains(string(out), "turnout.yaml:4:") {
		t.Fatalf("serve with a non-loopback admin listener and no TLS: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "turnout.db")); err == nil {
		t.Error("the refused start created the store")
	}

	// With admin.tls: HTTPS, and the CLI's API answers over it.
	certFile, keyFile := testkit.WriteSelfSigned(t, dir, "admin", "127.0.0.1")
	n := startNode(t, write(fmt.Sprintf("  listen: 127.0.0.1:0\n  tls: {cert: %s, key: %s}", certFile, keyFile)))
	if !strings.HasPrefix(n.admin, "https://") {
		t.Fatalf("admin address %q, want https://", n.admin)
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", n.admin+"/api/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("admin status over TLS: %d (TLS %v)", resp.StatusCode, resp.TLS != nil)
	}
	// The CLI reaches it too, trusting the certificate through Go's
	// SSL_CERT_FILE.
	cli := exec.Command(turnoutBin, "status", "--admin", n.admin, "--token", testToken)
	cli.Env = append(os.Environ(), "SSL_CERT_FILE="+certFile)
	if out, err := cli.CombinedOutput(); err != nil {
		t.Errorf("turnout status over admin TLS: %v\n%s", err, out)
	}
	// Plain HTTP to the TLS admin listener gets no API.
	if resp, err := http.Get("http://" + strings.TrimPrefix(n.admin, "https://") + "/api/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the admin API answered plain HTTP")
		}
	}
}

// TestPublicLimitsRaw sends raw bytes to the real binary's public
// listener: an oversized header gets 431, a buffered (function) body over
// max_body_bytes gets 413, a stalled body gets 408.
func TestPublicLimitsRaw(t *testing.T) {
	n := startHelloNode(t, "{max_body_bytes: 1024, max_header_bytes: 2048, body_timeout: 300ms}")
	exchange := func(req string) string {
		c := testkit.Dial(t, n.public, 15*time.Second)
		defer c.Close()
		io.WriteString(c, req)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("no response to %.60q: %v", req, err)
		}
		return line
	}
	for _, tc := range []struct {
		name, req, want string
	}{
		{"header over max_header_bytes", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 8<<10) + "\r\n\r\n", "HTTP/1.1 431 "},
		{"function body over max_body_bytes", "POST /hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n" + strings.Repeat("b", 1025), "HTTP/1.1 413 "},
		{"function body within max_body_bytes", "POST /hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n" + strings.Repeat("b", 10), "HTTP/1.1 200 "},
		{"stalled body to the origin", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", "HTTP/1.1 408 "},
		{"stalled body to a function", "POST /hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", "HTTP/1.1 408 "},
	} {
		if got := exchange(tc.req); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
