package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/testkit"
)

// The hang-up watch on both of its paths: the server's poller (epoll),
// and the goroutine that stands in where the poller cannot be had.
var watchModes = []struct {
	name     string
	noPoller bool
}{{"poller", false}, {"goroutine", true}}

// newWatchServer serves h with the given watch mode and returns the server
// and its address.
func newWatchServer(t *testing.T, noPoller bool, h http.HandlerFunc) (*Server, string, *testkit.SyncBuffer) {
	var logs testkit.SyncBuffer
	s := &Server{Handler: h, ErrorLog: log.New(&logs, "", 0)}
	s.pollTried = noPoller // poller() then returns nil
	return s, serve(t, s), &logs
}

// registered is how many sockets s's poller has in its epoll set.
func registered(s *Server) int64 {
	if p := s.poll.Load(); p != nil {
		return p.registered.Load()
	}
	return 0
}

func seqOf(s *Server) uint32 {
	if p := s.poll.Load(); p != nil {
		return p.seq.Load()
	}
	return 0
}

func reportsOf(s *Server) int64 {
	if p := s.poll.Load(); p != nil {
		return p.reports.Load()
	}
	return 0
}

// watching waits until s's handler in flight is watched, by either path.
func watching(t *testing.T, s *Server, noPoller bool, n int) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("%d watches", n), func() bool {
		if !noPoller {
			return registered(s) == int64(n)
		}
		running := 0
		s.mu.Lock()
		for c := range s.conns {
			c.wmu.Lock()
			if c.wrun {
				running++
			}
			c.wmu.Unlock()
		}
		s.mu.Unlock()
		return running == n
	})
}

func TestWatchHangUp(t *testing.T) {
	for _, m := range watchModes {
		t.Run(m.name, func(t *testing.T) {
			entered, cancelled := make(chan struct{}, 1), make(chan bool, 1)
			release, proceed := make(chan struct{}), make(chan struct{})
			s, addr, logs := newWatchServer(t, m.noPoller, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/late" {
					entered <- struct{}{}
					<-proceed
				}
				io.ReadAll(r.Body)
				entered <- struct{}{}
				select {
				case <-r.Context().Done():
					cancelled <- true
				case <-release:
					w.Write([]byte("released"))
				case <-time.After(10 * time.Second):
					cancelled <- false
				}
			})
			hangUp := func(c net.Conn, what string) {
				t.Helper()
				c.Close()
				if !testkit.Receive(t, cancelled, 5*time.Second, "the handler's context") {
					t.Errorf("%s: the hang-up left the context live", what)
				}
				testkit.Eventually(t, 5*time.Second, "the slot given back", func() bool { return registered(s) == 0 })
			}
			get := "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
			post := "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab" // watched once the body is read

			// A fresh connection, hanging up while watched.
			c := testkit.Dial(t, addr, 5*time.Second)
			io.WriteString(c, get)
			testkit.Receive(t, entered, 5*time.Second, "the handler")
			watching(t, s, m.noPoller, 1)
			hangUp(c, "watched")

			// A hang-up before the watch starts is seen when it does.
			c = testkit.Dial(t, addr, 5*time.Second)
			io.WriteString(c, get)
			testkit.Receive(t, entered, 5*time.Second, "the handler")
			hangUp(c, "before the watch")

			// A connection watched for an earlier request: the next
			// request, with a body, is watched without a new
			// registration.
			keptAlive := func() net.Conn {
				c := testkit.Dial(t, addr, 5*time.Second)
				io.WriteString(c, get)
				testkit.Receive(t, entered, 5*time.Second, "the handler")
				watching(t, s, m.noPoller, 1)
				release <- struct{}{}
				readUntil(t, c, "released")
				return c
			}
			c = keptAlive()
			seq := seqOf(s)
			io.WriteString(c, post)
			testkit.Receive(t, entered, 5*time.Second, "the handler")
			if !m.noPoller {
				watching(t, s, false, 1)
			}
			hangUp(c, "kept alive")
			if seqOf(s) != seq {
				t.Error("a watched connection was registered again")
			}

			// The client closes while its body is still unread: the
			// request is cancelled once the body is read and the watch
			// armed.
			c = keptAlive()
			io.WriteString(c, "POST /late HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab")
			testkit.Receive(t, entered, 5*time.Second, "the handler")
			reports := reportsOf(s)
			c.(*net.TCPConn).CloseWrite()
			if !m.noPoller {
				testkit.Eventually(t, 5*time.Second, "the poller's report", func() bool { return reportsOf(s) > reports })
			}
			proceed <- struct{}{}
			testkit.Receive(t, entered, 5*time.Second, "the handler")
			hangUp(c, "closed before its body was read")

			if m.noPoller == (s.poll.Load() != nil) {
				t.Errorf("poller %v in mode %s", s.poll.Load() != nil, m.name)
			}
			if logs.String() != "" {
				t.Errorf("logs: %s", logs)
			}
		})
	}
}

// A pipelined request is no hang-up, even with the client's half-close
// behind it: the first handler's context stays live while the next
// request's bytes are unread, and both requests are answered.
func TestWatchPipelined(t *testing.T) {
	for _, m := range watchModes {
		t.Run(m.name, func(t *testing.T) {
			entered, release := make(chan struct{}, 1), make(chan struct{})
			s, addr, _ := newWatchServer(t, m.noPoller, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					entered <- struct{}{}
					<-release
				}
				if r.Context().Err() != nil {
					w.Write([]byte(r.URL.Path + " cancelled"))
					return
				}
				w.Write([]byte(r.URL.Path + " ok"))
			})
			c := testkit.Dial(t, addr, 5*time.Second)
			defer c.Close()
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
			testkit.Receive(t, entered, 5*time.Second, "the handler")
			watching(t, s, m.noPoller, 1)
			io.WriteString(c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
			c.(*net.TCPConn).CloseWrite()
			if m.noPoller {
				time.Sleep(20 * time.Millisecond) // the goroutine reads the byte
			} else {
				testkit.Eventually(t, 5*time.Second, "the poller's report", func() bool { return s.poll.Load().reports.Load() > 0 })
			}
			close(release)
			br := bufio.NewReader(c)
			for _, want := range []string{"/slow ok", "/next"} {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				// The last request may be cancelled: nothing follows
				// the client's half-close (net/http cancels it too).
				if b, _ := io.ReadAll(resp.Body); !strings.HasPrefix(string(b), want) {
					t.Errorf("got %q, want %q", b, want)
				}
			}
			testkit.Eventually(t, 5*time.Second, "the slot given back", func() bool { return registered(s) == 0 })
		})
	}
}

// Many connections watched and ended at once, some clients hanging up:
// no client that stays is cancelled, the hung-up ones are, and every
// socket leaves the epoll set and every slot is given back.
func TestWatchManyConns(t *testing.T) {
	var cancels atomic.Int64
	s, addr, logs := newWatchServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancels.Add(1)
			w.Write([]byte("cancelled"))
		case <-time.After(20 * time.Millisecond): // watched
			w.Write([]byte("ok"))
		}
	})
	const clients, requests = 32, 12
	var wg sync.WaitGroup
	var hungUp atomic.Int64
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { c.Close() }()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for j := range requests {
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
					t.Error(err)
					return
				}
				if (i+j)%4 == 0 {
					time.Sleep(5 * time.Millisecond)
					c.Close()
					hungUp.Add(1)
					if c, err = net.Dial("tcp", addr); err != nil {
						t.Error(err)
						return
					}
					c.SetDeadline(time.Now().Add(20 * time.Second))
					br = bufio.NewReader(c)
					continue
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
					t.Errorf("client %d request %d: %q", i, j, b)
				}
			}
		}()
	}
	wg.Wait()
	testkit.Eventually(t, 10*time.Second, "every socket out of the epoll set and its slot given back", func() bool {
		p := s.poll.Load()
		if p == nil || p.registered.Load() != 0 {
			return false
		}
		s.mu.Lock()
		open := len(s.conns)
		s.mu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		return open == 0 && len(p.conns) == len(p.free)
	})
	if n := cancels.Load(); n == 0 || n > hungUp.Load() {
		t.Errorf("%d handlers cancelled for %d hang-ups", n, hungUp.Load())
	}
	if logs.String() != "" {
		t.Errorf("logs: %s", logs)
	}
}

// Server.Close with watches registered cancels their handlers, ends the
// poller's goroutine, and leaves no socket registered.
func TestWatchServerClose(t *testing.T) {
	const n = 8
	entered, cancelled := make(chan struct{}, n), make(chan bool, n)
	s, addr, _ := newWatchServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- true
		case <-time.After(10 * time.Second):
			cancelled <- false
		}
	})
	for range n {
		c := testkit.Dial(t, addr, 5*time.Second)
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		testkit.Receive(t, entered, 5*time.Second, "the handler")
	}
	watching(t, s, false, n)
	p := s.poll.Load()
	s.Close()
	for range n {
		if !testkit.Receive(t, cancelled, 5*time.Second, "a handler's context") {
			t.Error("Close left a handler's context live")
		}
	}
	testkit.Receive(t, p.done, 5*time.Second, "the poller's goroutine to end")
	testkit.Eventually(t, 5*time.Second, "no socket registered", func() bool { return p.registered.Load() == 0 })
	if s.poll.Load() != nil {
		t.Error("a closed server kept its poller")
	}
	// A closed server's poller stays closed: a new watch would fall back.
	if s.poller() != nil {
		t.Error("a closed server made a poller")
	}
	if err := p.rc.Control(func(uintptr) {}); err == nil {
		t.Error("the epoll instance is still open")
	}
}

// A hijacked connection that the poller watched leaves the epoll set as
// its handler returns (its socket stays open), and its close later
// reports nothing to the server.
func TestWatchHijacked(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	hijacked := make(chan net.Conn, 1)
	s, addr, logs := newWatchServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hijack" {
			nc, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			hijacked <- nc
			return
		}
		entered <- struct{}{}
		<-release
		w.Write([]byte("released"))
	})
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	testkit.Receive(t, entered, 5*time.Second, "the handler")
	watching(t, s, false, 1)
	close(release)
	readUntil(t, c, "released")
	io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: h\r\n\r\n")
	nc := testkit.Receive(t, hijacked, 5*time.Second, "the hijack")
	defer nc.Close()
	testkit.Eventually(t, 5*time.Second, "the hijacked socket unregistered", func() bool { return registered(s) == 0 })
	reports := reportsOf(s)
	c.Close()
	// The hijacker still owns a live socket: it reads the client's close.
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("hijacked read: %d, %v; want the client's close", n, err)
	}
	time.Sleep(20 * time.Millisecond) // a report would come now
	if reportsOf(s) != reports {
		t.Error("the poller reported a hijacked connection's close")
	}
	if logs.String() != "" {
		t.Errorf("logs: %s", logs)
	}
}

// Shutdown waits for a watched handler, then ends the poller's goroutine.
func TestWatchShutdown(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s, addr, _ := newWatchServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.Write([]byte("released"))
	})
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	testkit.Receive(t, entered, 5*time.Second, "the handler")
	watching(t, s, false, 1)
	p := s.poll.Load()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case <-p.done:
		t.Fatal("the poller ended under a running handler")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	readUntil(t, c, "released")
	if err := testkit.Receive(t, done, 5*time.Second, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	testkit.Receive(t, p.done, 5*time.Second, "the poller's goroutine to end")
	if registered(s) != 0 || p.registered.Load() != 0 {
		t.Errorf("%d sockets registered after Shutdown", p.registered.Load())
	}
}
