package etcd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/turnout/turnout/internal/store/certstoragetest"
	"github.com/turnout/turnout/internal/store/etcd/etcdtest"
	"github.com/turnout/turnout/internal/testkit"
)

// TestCertStorageContract runs the contract every certmagic storage of
// turnout keeps against a 3-member cluster, each clause under a prefix of
// its own.
func TestCertStorageContract(t *testing.T) {
	c := etcdtest.Start(t, 3)
	var n atomic.Int64
	certstoragetest.Run(t, func(t *testing.T) certmagic.Storage {
		return open(t, c, fmt.Sprintf("/certs/%d/", n.Add(1))).CertStorage()
	})
}

// TestCertStorageAcrossNodes: three clients (three nodes) on one prefix
// see each other's keys, and their locks exclude each other.
func TestCertStorageAcrossNodes(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	var nodes []certmagic.Storage
	for i := 0; i < 3; i++ {
		nodes = append(nodes, open(t, c, "/fleet/").CertStorage())
	}
	if err := nodes[0].Store(ctx, "certificates/ca/a.test/a.test.crt", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	if v, err := nodes[2].Load(ctx, "certificates/ca/a.test/a.test.crt"); err != nil || string(v) != "cert" {
		t.Fatalf("another node loads %q, %v; want what the first stored", v, err)
	}
	// Another prefix (another fleet on the same cluster) sees none of it.
	if other := open(t, c, "/other/").CertStorage(); other.Exists(ctx, "certificates") {
		t.Error("a store under another prefix sees the fleet's certificates")
	}
	certstoragetest.LockExcludes(t, nodes, 10)
}

// TestCertStorageLockHolderDies: a lock is kept while its holder lives —
// past its lease's TTL, which the holder renews — and released once the
// holder stops renewing (its client closed without Unlock, as when the
// node dies), after at most the TTL.
func TestCertStorageLockHolderDies(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ttl := func(o *Options) { o.LeaseTTL = 2 * time.Second }
	holder := open(t, c, "/fleet/", ttl)
	waiter := open(t, c, "/fleet/", ttl).CertStorage()
	ctx := context.Background()
	if err := holder.CertStorage().Lock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	// Twice the TTL: a lock that were not renewed would have expired.
	short, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	if err := waiter.Lock(short, "issue_cert_a.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a lock whose holder lives, after twice the TTL: %v, want the context's deadline", err)
	}

	if err := holder.Close(); err != nil {
		t.Fatal(err)
	}
	// Bounded far above the TTL, so only a lock never released fails.
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := waiter.Lock(wait, "issue_cert_a.test"); err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	t.Logf("lock released %v after its holder died (lease TTL 2 s)", time.Since(start).Round(10*time.Millisecond))
	if err := waiter.Unlock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
}

// TestCertStorageLockFailsFastWithoutEtcd: with the cluster gone, Lock
// fails within the store's timeout instead of hanging.
func TestCertStorageLockFailsFastWithoutEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cs := open(t, c, "/fleet/", func(o *Options) { o.Timeout = time.Second }).CertStorage()
	c.Kill(0)
	done := make(chan error, 1)
	go func() { done <- cs.Lock(context.Background(), "issue_cert_a.test") }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Lock succeeded with etcd down")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Lock with etcd down did not return within 20 s (timeout 1 s)")
	}
}

// TestACMEFleetOneOrder: three nodes — three processes, each with its own
// etcd client and certmagic configuration, as three turnout nodes — start
// managing the same name at once against Pebble, Let's Encrypt's test CA.
// They stand behind a round-robin load balancer, which Pebble's validation
// authority reaches for the HTTP-01 challenge, so a node other than the one
// that ordered answers it too: from the token the orderer put in etcd.
// Exactly one order reaches the CA, and all three nodes serve the same
// certificate.
func TestACMEFleetOneOrder(t *testing.T) {
	const name = "fleet.test"
	c := etcdtest.Start(t, 3)

	// The load balancer's plain HTTP port is the one Pebble validates on.
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pebble := testkit.StartPebble(t, lb.Addr().(*net.TCPAddr).Port, port(t, testkit.FreeAddr(t)))
	cfg := acmeNodeConfig{Endpoints: c.Endpoints(), Prefix: "/fleet/", Directory: pebble.Directory, CARoot: pebble.CARoot, Name: name}
	nodes := make([]*acmeNodeProc, 3)
	for i := range nodes {
		nodes[i] = startACMENode(t, cfg)
	}

	var next atomic.Int64
	lbSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.Out.URL.Scheme = "http"
		r.Out.URL.Host = nodes[next.Add(1)%int64(len(nodes))].plain
		r.Out.Host = r.In.Host
	}}}
	go lbSrv.Serve(lb)
	t.Cleanup(func() { lbSrv.Close() })

	// All at once.
	for _, n := range nodes {
		if _, err := io.WriteString(n.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	var obtaining, obtained int
	for i, n := range nodes {
		n.await(t, "managed", 2*time.Minute, pebble)
		obtaining += n.events["cert_obtaining"]
		obtained += n.events["cert_obtained"]
		t.Logf("node %d: events %v", i, n.events)
	}
	if obtaining != 1 || obtained != 1 {
		t.Errorf("the nodes ordered %d certificates and obtained %d, want 1 and 1", obtaining, obtained)
	}
	if got := pebble.Issued(); got != 1 {
		t.Errorf("Pebble issued %d certificates, want 1\n%s", got, pebble.Out)
	}
	var distributed int
	for _, n := range nodes {
		distributed += strings.Count(n.stderr.String(), `"distributed":true`)
	}
	if distributed == 0 {
		t.Errorf("no node answered the challenge from the token in etcd (Pebble's validations: %d through the load balancer)\n%s\n%s\n%s", next.Load(), nodes[0].stderr, nodes[1].stderr, nodes[2].stderr)
	}

	var serial string
	for i, n := range nodes {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.secure,
			&tls.Config{RootCAs: pebble.Roots, ServerName: name})
		if err != nil {
			t.Fatalf("node %d: handshake for %s: %v\n%s", i, name, err, n.stderr)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if i == 0 {
			serial = leaf.SerialNumber.String()
		} else if leaf.SerialNumber.String() != serial {
			t.Errorf("node %d serves certificate %s, node 0 serves %s: want one certificate for the fleet", i, leaf.SerialNumber, serial)
		}
	}
}

// acmeNodeEnv makes the test binary act as one node of
// TestACMEFleetOneOrder, configured by the variable's JSON.
const acmeNodeEnv = "TURNOUT_ETCD_ACME_NODE"

// TestMain lets TestACMEFleetOneOrder re-exec this binary as a node.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(acmeNodeEnv); cfg != "" {
		os.Exit(acmeNode(cfg))
	}
	os.Exit(m.Run())
}

type acmeNodeConfig struct {
	Endpoints                       []string
	Prefix, Directory, CARoot, Name string
}

// acmeNodeProc is a node process of TestACMEFleetOneOrder.
type acmeNodeProc struct {
	stdin         io.WriteCloser
	lines         chan string
	stderr        *testkit.SyncBuffer // certmagic's log, JSON
	plain, secure string              // its HTTP (challenges) and HTTPS addresses
	events        map[string]int      // certmagic's events, counted
}

func startACMENode(t *testing.T, cfg acmeNodeConfig) *acmeNodeProc {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), acmeNodeEnv+"="+string(raw))
	n := &acmeNodeProc{lines: make(chan string, 64), stderr: &testkit.SyncBuffer{}, events: map[string]int{}}
	cmd.Stderr = n.stderr
	var err error
	if n.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
		close(n.lines)
	}()
	t.Cleanup(func() {
		n.stdin.Close() // the node exits when its stdin closes
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line := n.await(t, "listening", 30*time.Second, nil)
	if _, err := fmt.Sscan(strings.TrimPrefix(line, "listening"), &n.plain, &n.secure); err != nil {
		t.Fatalf("node said %q: %v", line, err)
	}
	return n
}

// await reads the node's lines until one starting with want, counting the
// events before it, and returns it. It fails the test when the node exits
// or says nothing of the kind within d.
func (n *acmeNodeProc) await(t *testing.T, want string, d time.Duration, pebble *testkit.Pebble) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-n.lines:
			switch {
			case !ok:
				t.Fatalf("node exited before saying %q:\n%s", want, n.stderr)
			case strings.HasPrefix(line, want):
				return line
			case strings.HasPrefix(line, "event "):
				n.events[strings.TrimPrefix(line, "event ")]++
			default:
				t.Fatalf("node said %q, waiting for %q:\n%s", line, want, n.stderr)
			}
		case <-timeout:
			var pebbleLog string
			if pebble != nil {
				pebbleLog = pebble.Out.String()
			}
			t.Fatalf("node did not say %q within %v:\n%s\npebble:\n%s", want, d, n.stderr, pebbleLog)
		}
	}
}

// acmeNode is one node: it opens the etcd store, answers HTTP-01
// challenges on a plain listener and serves what certmagic holds on a TLS
// one, says both addresses, and on "go" from stdin manages the name and
// says "managed". Certmagic's events are said as "event <name>". It serves
// until stdin closes.
func acmeNode(raw string) int {
	var cfg acmeNodeConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "acme node:", err)
		return 2
	}
	var mu sync.Mutex
	say := func(a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(a...)
	}
	fail := func(err error) int {
		say("error", err)
		return 1
	}
	st, err := Open(Options{Endpoints: cfg.Endpoints, Prefix: cfg.Prefix})
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	pem, err := os.ReadFile(cfg.CARoot)
	if err != nil {
		return fail(err)
	}
	trusted := x509.NewCertPool()
	trusted.AppendCertsFromPEM(pem)
	logger, err := zap.NewProduction()
	if err != nil {
		return fail(err)
	}

	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           logger,
	})
	defer cache.Stop()
	magic = certmagic.New(cache, certmagic.Config{
		Storage: st.CertStorage(),
		Logger:  logger,
		OCSP:    certmagic.OCSPConfig{DisableStapling: true},
		OnEvent: func(_ context.Context, event string, _ map[string]any) error {
			say("event", event)
			return nil
		},
	})
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      cfg.Directory,
		Email:                   "ops@example.com",
		Agreed:                  true,
		TrustedRoots:            trusted,
		DisableTLSALPNChallenge: true,
		// The node's own listener answers challenges (certmagic finds the
		// port taken and opens none of its own), as turnout's edge does.
		ListenHost:  "127.0.0.1",
		AltHTTPPort: plain.Addr().(*net.TCPAddr).Port,
		Logger:      logger,
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	go http.Serve(plain, issuer.HTTPChallengeHandler(http.NotFoundHandler()))
	secure, err := tls.Listen("tcp", "127.0.0.1:0", magic.TLSConfig())
	if err != nil {
		return fail(err)
	}
	go http.Serve(secure, http.NotFoundHandler())
	say("listening", plain.Addr(), secure.Addr())

	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		return fail(fmt.Errorf("want go on stdin, got %q", in.Text()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := magic.ManageSync(ctx, []string{cfg.Name}); err != nil {
		return fail(err)
	}
	say("managed")
	for in.Scan() {
	}
	return 0
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
