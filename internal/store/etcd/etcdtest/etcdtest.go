// Package etcdtest starts a real etcd cluster for tests: N members of the
// installed etcd binary (Debian's etcd-server 3.4 on CI) on free loopback
// ports in the test's temporary directory, with members to kill and restart.
package etcdtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long Start and WaitHealthy wait for a cluster
// whose members are all running to elect a leader and answer reads.
const StartTimeout = 30 * time.Second

// Cluster is a running etcd cluster. Its members are stopped, and their
// data removed, when the test ends.
type Cluster struct {
	t       testing.TB
	members []*Member
	http    *http.Client // for /health, with the client certificate of a TLS cluster
}

// Member is one etcd process of a Cluster.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:PORT, where clients connect
	PeerURL   string // http://127.0.0.1:PORT, where members talk raft
	dir       string
	args      []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs an n-member cluster and waits until every member is healthy.
// It fails the test at once, saying what to install, when there is no
// etcd binary.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return start(t, n, nil, nil)
}

// TLSFiles are the PEM files of a cluster started by StartTLS: the CA that
// signed every certificate, and a client certificate it accepts.
type TLSFiles struct {
	CA, Cert, Key string
}

// StartTLS runs an n-member cluster whose clients must connect over TLS
// (https endpoints) with a client certificate signed by the cluster's CA
// (etcd's --client-cert-auth). Members talk to each other in plain HTTP.
func StartTLS(t testing.TB, n int) (*Cluster, TLSFiles) {
	t.Helper()
	files, server := writeCerts(t, t.TempDir())
	return start(t, n, &server, &files), files
}

// start runs the cluster: plain, or with server's certificate when set,
// checked from the test with client's. Ports are picked free, then bound
// by etcd a moment later; when another process took one in between, the
// cluster is started again on new ports (three tries in all).
func start(t testing.TB, n int, server, client *TLSFiles) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is not installed (the fleet store's tests run a real etcd cluster): run scripts/install-test-deps.sh, or apt-get install etcd-server: %v", err)
	}
	hc, err := httpClient(client)
	if err != nil {
		t.Fatal(err)
	}
	for try := 1; ; try++ {
		c := &Cluster{t: t, http: hc}
		t.Cleanup(c.stop)
		err := c.launch(bin, n, server, t.TempDir())
		if err == nil {
			err = c.waitHealthy()
		}
		for _, m := range c.members {
			if err == nil && !m.running() {
				err = fmt.Errorf("etcd member %s exited:\n%s", m.Name, m.logTail())
			}
		}
		if err == nil {
			return c
		}
		c.stop()
		if try == 3 || !c.portTaken() {
			t.Fatal(err)
		}
		t.Logf("etcd cluster, try %d: a port was taken before etcd bound it; starting again on new ports", try)
	}
}

// launch starts n members with data under root.
func (c *Cluster) launch(bin string, n int, server *TLSFiles, root string) error {
	ports, err := pickPorts(2 * n)
	if err != nil {
		return err
	}
	scheme := "http"
	if server != nil {
		scheme = "https"
	}
	var initial []string
	for i := 0; i < n; i++ {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			dir:       filepath.Join(root, fmt.Sprintf("m%d", i)),
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.members = append(c.members, m)
	}
	token := fmt.Sprintf("turnout-test-%d", time.Now().UnixNano())
	for _, m := range c.members {
		m.args = []string{bin,
			"--name", m.Name,
			"--data-dir", filepath.Join(m.dir, "data"),
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--logger", "zap",
			"--log-level", "warn",
		}
		if server != nil {
			m.args = append(m.args, "--cert-file", server.Cert, "--key-file", server.Key,
				"--trusted-ca-file", server.CA, "--client-cert-auth")
		}
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			return err
		}
		if err := m.start(); err != nil {
			return err
		}
	}
	return nil
}

// portTaken reports whether a member failed because its port was in use.
func (c *Cluster) portTaken() bool {
	for _, m := range c.members {
		if strings.Contains(m.logTail(), "address already in use") {
			return true
		}
	}
	return false
}

// Endpoints returns every member's client URL, for clientv3.Config.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Member returns member i.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Pid is the process id of the member while it runs, 0 when it does not
// (benchmarks read its CPU time from /proc).
func (m *Member) Pid() int {
	if !m.running() {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill stops member i with SIGKILL and waits for it to exit: a crash, not
// a clean shutdown.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.members[i].kill()
}

// Restart starts member i again on its data and ports, after Kill, and
// waits until it accepts connections. Whether it serves requests depends
// on quorum: call WaitHealthy for that.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.members[i]
	if err := m.start(); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(StartTimeout)
	for {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(m.ClientURL, "http://"), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if !m.running() {
			c.t.Fatalf("etcd member %s exited on restart:\n%s", m.Name, m.logTail())
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd member %s does not listen on %s %v after restart:\n%s", m.Name, m.ClientURL, StartTimeout, m.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitHealthy waits, at most StartTimeout, until every running member
// reports itself healthy (it has a leader and answers a quorum read), and
// fails the test otherwise.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	if err := c.waitHealthy(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Cluster) waitHealthy() error {
	deadline := time.Now().Add(StartTimeout)
	for _, m := range c.members {
		if !m.running() {
			continue
		}
		for {
			err := m.health(c.http)
			if err == nil {
				break
			}
			if !m.running() {
				return fmt.Errorf("etcd member %s exited:\n%s", m.Name, m.logTail())
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("etcd member %s not healthy after %v: %v\n%s", m.Name, StartTimeout, err, m.logTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// health asks the member's /health endpoint, which etcd answers
// {"health":"true"} once it has a leader and a quorum read succeeds.
func (m *Member) health(client *http.Client) error {
	resp, err := client.Get(m.ClientURL + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return fmt.Errorf("/health: %w", err)
	}
	if h.Health != "true" {
		return fmt.Errorf("/health says %q", h.Health)
	}
	return nil
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("etcd member %s is already running", m.Name)
	}
	log, err := os.OpenFile(filepath.Join(m.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.args[0], m.args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	// etcd reads its flags from ETCD_* variables too: the caller's must not
	// change the cluster the test asked for.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start etcd member %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(done)
	}()
	m.cmd, m.done = cmd, done
	return nil
}

func (m *Member) running() bool {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

func (m *Member) kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd, m.done = nil, nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// logTail returns the end of the member's log, for failure messages.
func (m *Member) logTail() string {
	b, err := os.ReadFile(filepath.Join(m.dir, "etcd.log"))
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

func (c *Cluster) stop() {
	for _, m := range c.members {
		m.kill()
	}
}

// pickPorts is freePorts, replaced by a test that takes a port first.
var pickPorts = freePorts

// freePorts returns n distinct loopback ports that were free a moment ago.
// All are held open together so that none is handed out twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
