package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// childEnv makes the re-executed test binary (the "new binary" of an
// upgrade) act as a child: "fail" exits at once, "serve" takes over the
// listener and answers with its pid.
const childEnv = "TURNOUT_UPGRADE_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "fail":
		fmt.Fprintln(os.Stderr, "child: failing on purpose")
		os.Exit(3)
	case "serve":
		os.Exit(child())
	}
}

// child is the new process: it claims the inherited listener, serves its
// pid, says it is ready and exits on /quit (or after 20 s, so nothing is
// left behind).
func child() int {
	u, err := New(Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if !u.Inherited() {
		fmt.Fprintln(os.Stderr, "child: not started by an upgrade")
		return 1
	}
	ln, err := u.Listen("public", "tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	quit := make(chan struct{})
	var once sync.Once
	srv := &http.Server{Handler: pidHandler(func() { once.Do(func() { close(quit) }) })}
	go srv.Serve(ln)
	if err := u.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	select {
	case <-quit:
	case <-time.After(20 * time.Second):
	}
	srv.Shutdown(context.Background())
	return 0
}

func pidHandler(quit func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/quit" {
			quit()
		}
		io.WriteString(w, strconv.Itoa(os.Getpid()))
	}
}

// TestUpgrade runs both outcomes with the process's one Upgrader: first a
// new binary that dies (the old process reclaims and keeps serving), then
// one that takes over the listener under load with no failed request.
func TestUpgrade(t *testing.T) {
	u, err := New(Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Stop()
	raw, err := u.Listen("public", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Track(raw)
	url := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: pidHandler(func() {})}
	go srv.Serve(ln)
	defer srv.Close()
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())

	var mu sync.Mutex
	var steps []string
	step := func(s string) func() error {
		return func() error { mu.Lock(); steps = append(steps, s); mu.Unlock(); return nil }
	}

	t.Run("tracked listeners quiesce together", func(t *testing.T) {
		plain, err := u.ListenTracked("tracked", "tcp", "127.0.0.1:0", false)
		if err != nil {
			t.Fatal(err)
		}
		withTLS, err := u.ListenTracked("tracked TLS", "tcp", "127.0.0.1:0", true)
		if err != nil {
			t.Fatal(err)
		}
		if plain.tls || !withTLS.tls {
			t.Fatalf("tls: plain %v, TLS %v", plain.tls, withTLS.tls)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u.Quiesce(ctx)
		for _, ln := range []*Listener{plain, withTLS} {
			if c, err := ln.Accept(); err == nil {
				c.Close()
				t.Errorf("%s still accepts after Quiesce", ln.Addr())
			}
		}
	})

	t.Run("new process fails", func(t *testing.T) {
		t.Setenv(childEnv, "fail")
		err := u.Upgrade(Handoff{Release: step("release"), Reclaim: step("reclaim")})
		if err == nil {
			t.Fatal("upgrade to a binary that exits 3 succeeded")
		}
		t.Logf("upgrade error: %v", err)
		if !slices.Equal(steps, []string{"release", "reclaim"}) {
			t.Fatalf("handoff steps %q, want release then reclaim", steps)
		}
		if got := get(t, url); got != me {
			t.Fatalf("after the failed upgrade pid %s answered, want %s", got, me)
		}
	})

	t.Run("release fails", func(t *testing.T) {
		steps = nil
		err := u.Upgrade(Handoff{Release: func() error { return errors.New("store busy") }, Reclaim: step("reclaim")})
		if err == nil || !slices.Equal(steps, []string{"reclaim"}) {
			t.Fatalf("err %v, steps %q: want an error and a reclaim", err, steps)
		}
	})

	t.Run("new process takes over under load", func(t *testing.T) {
		t.Setenv(childEnv, "serve")
		steps = nil
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var lmu sync.Mutex
		pids := map[string]int{}
		var failures []string
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Half the clients keep connections alive, half dial each time.
				tr := &http.Transport{DisableKeepAlives: i%2 == 1}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
				for n := 0; n < 5000; n++ {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := c.Get(url + "/")
					var body []byte
					if err == nil {
						body, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					lmu.Lock()
					if err != nil {
						failures = append(failures, err.Error())
					} else {
						pids[string(body)]++
					}
					lmu.Unlock()
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		if err := u.Upgrade(Handoff{Release: step("release"), Reclaim: step("reclaim")}); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("upgrade: %v", err)
		}
		// What the caller does next: stop accepting and drain.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ln.Quiesce(sctx)
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("drain: %v", err)
		}
		cancel()
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()

		if !slices.Equal(steps, []string{"release"}) {
			t.Errorf("handoff steps %q, want release only", steps)
		}
		if len(failures) > 0 {
			t.Errorf("%d failed requests across the upgrade, first: %s", len(failures), failures[0])
		}
		var child string
		for p := range pids {
			if p != me {
				child = p
			}
		}
		t.Logf("answers by pid: %v (old %s)", pids, me)
		if pids[me] == 0 || child == "" {
			t.Fatalf("want answers from the old and the new process, got %v", pids)
		}
		if got := get(t, url+"/quit"); got != child {
			t.Fatalf("after the drain pid %s answered, want the new process %s", got, child)
		}
	})
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
