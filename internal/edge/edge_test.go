package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"golang.org/x/net/http2"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/testkit"
)

// testCA issues the certificates the edge tests serve.
type testCA struct{ *testkit.CA }

func newCA(t *testing.T) testCA { return testCA{testkit.NewCA(t, t.TempDir(), "turnout test CA")} }

// issue writes a certificate for names (DNS names or IPs) and its key into
// dir and returns their paths.
func (ca testCA) issue(t *testing.T, dir string, names ...string) config.CertificateFiles {
	t.Helper()
	cert, key := ca.Issue(t, dir, strings.ReplaceAll(names[0], "*", "star"), x509.ExtKeyUsageServerAuth, names...)
	return config.CertificateFiles{Cert: cert, Key: key}
}

// limits returns the documented defaults with changes applied.
func limits(change func(*config.Limits)) config.Limits {
	c := (&config.Config{}).WithDefaults()
	if change != nil {
		change(&c.Limits)
	}
	return c.Limits
}

type running struct {
	e             *Edge
	plain, secure string // addresses
}

// start serves opts on loopback listeners until the test ends.
func start(t *testing.T, opts Options) *running {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{e: e, plain: pl.Addr().String()}
	var sl net.Listener
	if e.HTTPS() {
		if sl, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		r.secure = sl.Addr().String()
	}
	errc := make(chan error, 2)
	if err := e.Serve(pl, sl, errc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 1 + btoi(e.HTTPS()) { // plain, and secure
			if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		}
	})
	return r
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// echoBody answers 200 with the length of the body it read, or 502 when
// reading failed, the way the gateway answers a broken upload.
var echoBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "upstream failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "read %d bytes", len(b))
})

// rawExchange writes req on a new connection to addr and returns
// everything the server sends until it closes the connection (bounded).
func rawExchange(t *testing.T, addr string, req string, drip func(net.Conn)) string {
	t.Helper()
	c := testkit.Dial(t, addr, 10*time.Second)
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	if drip != nil {
		drip(c)
	}
	b, err := io.ReadAll(c)
	// A server that closes with unread request bytes resets the
	// connection (431 does): what it sent before counts.
	if err != nil && !(errors.Is(err, syscall.ECONNRESET) && len(b) > 0) {
		t.Fatalf("reading the response: %v (got %q)", err, b)
	}
	return string(b)
}

func TestBodyTimeoutAnswers408(t *testing.T) {
	r := start(t, Options{Handler: echoBody, Limits: limits(func(l *config.Limits) { l.BodyTimeout = config.Duration(200 * time.Millisecond) })})

	// The body stalls after 3 of 10 bytes: 408 and the connection closed
	// (io.ReadAll in rawExchange returns only at EOF).
	got := rawExchange(t, r.plain, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", nil)
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, "Connection: close\r\n") {
		t.Fatalf("stalled body: got %q, want 408 with Connection: close", got)
	}
	if strings.Contains(got, "502") {
		t.Errorf("the handler's 502 leaked through: %q", got)
	}

	// A slow but steady body (5 pieces 100ms apart: 500ms in all, longer
	// than the timeout, but no stall is) is read in full.
	got = rawExchange(t, r.plain, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", func(c net.Conn) {
		for range 5 {
			time.Sleep(100 * time.Millisecond)
			c.Write([]byte("x"))
		}
	})
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "read 5 bytes") {
		t.Fatalf("steady body: got %q, want 200 read 5 bytes", got)
	}
}

// TestBodyTimeoutAfterResponse: a full-duplex handler that answered before
// reading the body sees ErrBodyTimeout; its response is then aborted (no
// final chunk) and the connection closed, so the unread body bytes are
// never read as a next request.
func TestBodyTimeoutAfterResponse(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// HTTP/1 handlers that answer before reading must say so, or
		// net/http drains the body before the header goes out.
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusAccepted)
		rc.Flush()
		_, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "err=%v", errors.Is(err, ErrBodyTimeout))
		rc.Flush()
	})
	r := start(t, Options{Handler: h, Limits: limits(func(l *config.Limits) { l.BodyTimeout = config.Duration(150 * time.Millisecond) })})
	got := rawExchange(t, r.plain, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab", nil)
	if !strings.HasPrefix(got, "HTTP/1.1 202 ") || !strings.Contains(got, "err=true") {
		t.Fatalf("got %q, want the handler's 202 and ErrBodyTimeout from its read", got)
	}
	if strings.HasSuffix(got, "0\r\n\r\n") {
		t.Errorf("got %q: the aborted response ended cleanly", got)
	}
}

func TestHeaderTooLarge431(t *testing.T) {
	r := start(t, Options{Handler: echoBody, Limits: limits(func(l *config.Limits) { l.MaxHeaderBytes = 1024 })})
	// net/http allows 4096 bytes of slack over MaxHeaderBytes.
	big := strings.Repeat("a", 8<<10)
	got := rawExchange(t, r.plain, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n", nil)
	if !strings.HasPrefix(got, "HTTP/1.1 431 ") {
		t.Fatalf("oversized header: got %.100q, want 431", got)
	}
	got = rawExchange(t, r.plain, "GET / HTTP/1.1\r\nHost: x\r\nX-Small: abc\r\nConnection: close\r\n\r\n", nil)
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("small header: got %q, want 200", got)
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	tc := &config.TLS{RedirectHTTP: true, Certificates: []config.CertificateFiles{ca.issue(t, dir, "api.test"), ca.issue(t, dir, "*.wild.test")}}
	r := start(t, Options{Handler: echoBody, Limits: limits(nil), TLS: tc})
	_, port, _ := net.SplitHostPort(r.secure)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, host, path string
		code               int
		location           string
	}{
		{"GET", "api.test", "/users/1?a=1&a=2;x", 308, "https://api.test:" + port + "/users/1?a=1&a=2;x"},
		{"POST", "API.test:80", "/p", 308, "https://api.test:" + port + "/p"},
		{"GET", "x.wild.test", "/", 308, "https://x.wild.test:" + port + "/"},
		{"GET", "other.test", "/", 421, ""},
		// A challenge path for a host with no challenge in progress is
		// redirected like any other.
		{"GET", "api.test", "/.well-known/acme-challenge/abc", 308, "https://api.test:" + port + "/.well-known/acme-challenge/abc"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+r.plain+tc.path, strings.NewReader("body"))
		req.Host = tc.host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("Location") != tc.location {
			t.Errorf("%s %s%s: %d %q, want %d %q", tc.method, tc.host, tc.path, resp.StatusCode, resp.Header.Get("Location"), tc.code, tc.location)
		}
	}
}

func TestPlainServesWithoutRedirect(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	tc := &config.TLS{RedirectHTTP: false, Certificates: []config.CertificateFiles{ca.issue(t, dir, "api.test")}}
	r := start(t, Options{Handler: echoBody, Limits: limits(nil), TLS: tc})
	resp, err := http.Post("http://"+r.plain+"/", "text/plain", strings.NewReader("abcd"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "read 4 bytes" {
		t.Fatalf("redirect_http: false: %d %q, want the handler's answer", resp.StatusCode, b)
	}
}

// TestChallengeBypassesRedirect: an HTTP-01 challenge in progress for a
// listed domain is answered on the plain listener, not redirected. The
// challenge is put in the storage the way certmagic's distributed solver
// does when it presents one.
func TestChallengeBypassesRedirect(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "turnout.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storage := st.CertStorage()
	tc := &config.TLS{RedirectHTTP: true, Domains: []string{"acme.test"},
		// Nothing listens there: the background order fails and retries
		// later, which this test does not wait for.
		CA: "https://127.0.0.1:1/directory"}
	r := start(t, Options{Handler: echoBody, Limits: limits(nil), TLS: tc, Storage: storage})

	chal := acme.Challenge{Type: acme.ChallengeTypeHTTP01, Token: "tok123", KeyAuthorization: "tok123.thumbprint",
		Identifier: acme.Identifier{Type: "dns", Value: "acme.test"}}
	b, _ := json.Marshal(chal)
	key := path.Join("acme", certmagic.StorageKeys.Safe(r.e.issuer.IssuerKey()), "challenge_tokens", "acme.test.json")
	if err := storage.Store(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(host, p string) (int, string, string) {
		req, _ := http.NewRequest("GET", "http://"+r.plain+p, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Location")
	}
	if code, body, _ := get("acme.test", "/.well-known/acme-challenge/tok123"); code != 200 || body != "tok123.thumbprint" {
		t.Errorf("challenge: %d %q, want 200 with the key authorization", code, body)
	}
	if code, _, loc := get("acme.test", "/other"); code != 308 || !strings.HasPrefix(loc, "https://acme.test:") {
		t.Errorf("non-challenge path: %d %q, want a 308 to https", code, loc)
	}
	// A listed domain without a certificate yet fails the handshake.
	_, err = tls.Dial("tcp", r.secure, &tls.Config{ServerName: "acme.test", InsecureSkipVerify: true})
	if err == nil {
		t.Error("handshake succeeded for a domain whose certificate was never obtained")
	}
}

func TestStaticCertificatesAndUnknownSNI(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	tc := &config.TLS{Certificates: []config.CertificateFiles{ca.issue(t, dir, "api.test"), ca.issue(t, dir, "*.wild.test"), ca.issue(t, dir, "127.0.0.1")}}
	r := start(t, Options{Handler: echoBody, Limits: limits(nil), TLS: tc})
	for _, name := range []string{"api.test", "API.TEST", "x.wild.test", ""} {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: name}}}
		resp, err := client.Post("https://"+r.secure+"/", "text/plain", strings.NewReader("xyz"))
		if err != nil {
			t.Errorf("SNI %q: %v", name, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "read 3 bytes" {
			t.Errorf("SNI %q: %q", name, b)
		}
	}
	for _, name := range []string{"other.test", "a.b.wild.test", "wild.test"} {
		c, err := tls.Dial("tcp", r.secure, &tls.Config{RootCAs: ca.Pool, ServerName: name})
		if err == nil {
			c.Close()
			t.Errorf("SNI %q: handshake succeeded, want it to fail", name)
		}
	}

	// Bad files fail New with the entry named.
	_, err := New(Options{Handler: echoBody, Limits: limits(nil), TLS: &config.TLS{Certificates: []config.CertificateFiles{{Cert: filepath.Join(dir, "nope.crt"), Key: filepath.Join(dir, "nope.key")}}}})
	if err == nil || !strings.Contains(err.Error(), "tls.certificates[0]") || !strings.Contains(err.Error(), "nope.crt") {
		t.Errorf("missing certificate file: %v", err)
	}
}

// TestHTTP2Settings: HTTPS negotiates HTTP/2 through ALPN, and the server's
// SETTINGS frame carries the configured stream limit; plain HTTP does not
// speak HTTP/2 (no h2c).
func TestHTTP2Settings(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	tc := &config.TLS{Certificates: []config.CertificateFiles{ca.issue(t, dir, "api.test")}}
	r := start(t, Options{Handler: echoBody, Limits: limits(func(l *config.Limits) { l.MaxConcurrentStreams = 37 }), TLS: tc})

	c, err := tls.Dial("tcp", r.secure, &tls.Config{RootCAs: ca.Pool, ServerName: "api.test", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN negotiated %q, want h2", p)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first frame is %v, want the server's SETTINGS", f)
	}
	want := map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: 37,
		http2.SettingMaxFrameSize:         h2MaxReadFrameSize,
	}
	for id, v := range want {
		if got, ok := sf.Value(id); !ok || got != v {
			t.Errorf("SETTINGS %v = %d (sent: %v), want %d", id, got, ok, v)
		}
	}

	// The plain listener answers the HTTP/2 preface as HTTP/1.1.
	pc := testkit.Dial(t, r.plain, 10*time.Second)
	defer pc.Close()
	io.WriteString(pc, http2.ClientPreface)
	line, _ := bufio.NewReader(pc).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 ") {
		t.Errorf("plain listener answered the h2c preface with %q, want an HTTP/1.1 response", line)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Options{Limits: limits(nil)}); err == nil {
		t.Error("New without a handler succeeded")
	}
	if _, err := New(Options{Handler: echoBody, Limits: limits(nil), TLS: &config.TLS{Domains: []string{"a.test"}}}); err == nil {
		t.Error("New with domains and no storage succeeded")
	}
	e, err := New(Options{Handler: echoBody, Limits: limits(nil), TLS: &config.TLS{Domains: []string{"a.test"}, CARoot: filepath.Join(t.TempDir(), "none.pem")}, Storage: &certmagic.FileStorage{Path: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	sl, _ := net.Listen("tcp", "127.0.0.1:0")
	defer pl.Close()
	defer sl.Close()
	if err := e.Serve(pl, sl, make(chan error, 2)); err == nil || !strings.Contains(err.Error(), "tls.ca_root") {
		t.Errorf("Serve with a missing ca_root: %v, want an error naming tls.ca_root", err)
	}
	if err := e.Serve(pl, nil, make(chan error, 2)); err == nil {
		t.Error("Serve with TLS and no HTTPS listener succeeded")
	}
}
