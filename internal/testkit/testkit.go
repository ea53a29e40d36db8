// Package testkit holds the scaffolding turnout's tests share across
// packages: building the example functions, serving a handler on a
// loopback port, a raw TCP dial for hand-written bytes, clients that hang
// up before their answer, a port nothing listens on, a condition or a
// value to wait for, a load of requests kept up while something changes, a
// buffer a subprocess and the test share, a logger that says nothing, the
// small gateway configuration the admin and CLI tests start from, a check
// that a text holds each of some strings, and Pebble — Let's Encrypt's
// test CA — with the helpers that run it (a self-signed certificate, a
// helper process, a tool that must be installed).
//
// It imports only the standard library, so that any package's in-package
// tests can use it without an import cycle. Stand-ins for one domain stay
// with that domain (origintest, invoketest, deploytest).
package testkit

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RoutingConfig is a valid gateway configuration with two origins and a
// route that falls back from one to the other. Nothing listens at its URLs:
// it is for tests that store, diff and validate configurations.
const RoutingConfig = `origins:
  legacy:
    url: http://127.0.0.1:9000
  users:
    url: http://127.0.0.1:9100
routes:
  - match: "GET /user/{id}"
    origin: users
    fallback: legacy
  - match: /
    origin: legacy
`

// Eventually polls cond every 5 ms until it holds, and fails the test if it
// still does not after d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Receive waits up to d for a value from ch and returns it (the zero value
// once ch is closed), failing the test if none comes: what says what the
// test waited for.
func Receive[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
	var zero T
	return zero
}

// RefusedURL returns an http URL on 127.0.0.1 where nothing listens: a
// port that was free a moment ago.
func RefusedURL(t testing.TB) string {
	t.Helper()
	return "http://" + FreeAddr(t)
}

// Load runs do over and over in workers goroutines, numbered from 0, until
// the returned stop is called or do returns false (that worker ends); stop
// waits for the last calls to return and may be called more than once. do
// does its own counting: it runs concurrently with itself.
func Load(workers int, do func(worker int) (more bool)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if !do(i) {
					return
				}
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}

// HangUps sends n clients to addr, at most parallel at a time, each of
// which writes a GET for path on a fresh connection and hangs up after
// wait, and returns how many of them got any answer before hanging up.
func HangUps(t testing.TB, addr, path string, n, parallel int, wait time.Duration) (answered int) {
	t.Helper()
	var got atomic.Int64
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: hangup.test\r\n\r\n"); err != nil {
				t.Error(err)
				return
			}
			c.SetReadDeadline(time.Now().Add(wait))
			if b, _ := io.ReadAll(c); len(b) > 0 {
				got.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(got.Load())
}

// QuietLogger returns a logger that discards everything.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Dial opens a raw TCP connection to addr for a test that writes its own
// bytes, failing the test if it cannot. A deadline other than 0 bounds every
// read and write on it from now. The caller closes it.
func Dial(t testing.TB, addr string, deadline time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if deadline != 0 {
		c.SetDeadline(time.Now().Add(deadline))
	}
	return c
}

// SyncBuffer is a bytes.Buffer that a writer in another goroutine (a
// subprocess's output, a logger) and the test can share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Serve serves h over HTTP/1.1 on a fresh loopback port until the test
// ends, and returns its host:port. Cleanups registered before Serve run
// after the server is closed.
func Serve(t testing.TB, h http.Handler) (addr string) {
	t.Helper()
	return ServeWith(t, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second})
}

// Server is what ServeWith needs of an HTTP server: net/http's, or
// turnout's own (h1.Server).
type Server interface {
	Serve(net.Listener) error
	Close() error
}

// ServeWith is Serve with a server of the caller's.
func ServeWith(t testing.TB, srv Server) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// BuildFunctions builds the named examples/functions into a temporary
// directory of t's and returns it: unmodified aws-lambda-go binaries, each
// named as its folder.
func BuildFunctions(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := BuildFunctionsInto(dir, names...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// BuildFunctionsInto builds the named examples/functions (every one, with
// no names) into dir with one go build, which builds them in parallel. It
// is BuildFunctions for a TestMain, which has no t.
func BuildFunctionsInto(dir string, names ...string) error {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return fmt.Errorf("building example functions: cannot locate the module")
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if len(names) == 0 {
		args = append(args, "./examples/functions/...")
	}
	for _, n := range names {
		args = append(args, "./examples/functions/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join(filepath.Dir(self), "..", "..") // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building example functions: %v\n%s", err, out)
	}
	return nil
}

// ContainsAll reports, as errors of t, each of wants that text does not
// contain; what names text in the message ("stderr", "the log").
func ContainsAll(t testing.TB, what, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, text)
		}
	}
}
