// Command idleclients fills a server's connection limit with idle
// keep-alive clients and then measures whether new clients are served.
// bench/idle.sh runs it against turnout; see bench/README.md.
//
//	idleclients -url http://127.0.0.1:18501/bench -idle 10000 -new 12
//
// It opens -idle connections, each sending one GET and keeping the
// connection open after the answer (as browsers and HTTP client pools
// do), waits -settle, then sends -new GETs one after another, each on a
// fresh connection with -timeout to be answered. It reports how many new
// clients got their answer and how long they took, how many of the idle
// connections the server closed, and, with -metrics, the server's
// turnout_connections_* lines and its memory per idle connection (RSS, Go
// stacks and heap, from the same /metrics before and after the fill).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	target := flag.String("url", "", "URL to GET (http only)")
	idle := flag.Int("idle", 10000, "idle keep-alive connections to open first")
	fresh := flag.Int("new", 12, "new clients to send afterwards, one after another")
	timeout := flag.Duration("timeout", 5*time.Second, "how long a new client waits for its answer")
	settle := flag.Duration("settle", time.Second, "pause between opening the idle connections and the new clients")
	parallel := flag.Int("parallel", 64, "connections opened at once while filling")
	metrics := flag.String("metrics", "", "the server's /metrics URL, to print its turnout_connections_* lines")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintln(os.Stderr, "idleclients: -url must be an http:// URL")
		os.Exit(2)
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: idleclients\r\n\r\n", u.RequestURI(), u.Host)

	var before map[string]float64
	if *metrics != "" {
		before = memory(*metrics)
	}

	// Fill.
	start := time.Now()
	conns := make([]*client, *idle)
	var failed atomic.Int64
	var firstErr atomic.Value
	inParallel(*idle, *parallel, func(i int) {
		c, err := dial(u.Host)
		if err == nil {
			err = c.do(req, 30*time.Second)
		}
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, kind(err))
			if c != nil {
				c.conn.Close()
			}
			return
		}
		conns[i] = c
	})
	fmt.Printf("idle: %d connections opened with one request each in %.1fs (%d failed", *idle-int(failed.Load()), time.Since(start).Seconds(), failed.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("; first error: %s", e)
	}
	fmt.Println(")")
	time.Sleep(*settle)
	if *metrics != "" && before != nil {
		if after := memory(*metrics); after != nil {
			n := float64(*idle - int(failed.Load()))
			per := func(k string) float64 { return (after[k] - before[k]) / n / 1024 }
			fmt.Printf("memory per idle connection: RSS %.1f KB (goroutine stacks %.1f KB, heap %.1f KB); RSS %.0f MB in all\n",
				per("process_resident_memory_bytes"), per("go_memstats_stack_inuse_bytes"), per("go_memstats_heap_inuse_bytes"),
				after["process_resident_memory_bytes"]/(1<<20))
		}
	}

	// New clients.
	var ok int
	var took []time.Duration
	var errs []string
	for range *fresh {
		t0 := time.Now()
		c, err := dial(u.Host)
		if err == nil {
			if err = c.do(req, *timeout); err == nil {
				defer c.conn.Close()
			} else {
				c.conn.Close()
			}
		}
		if err != nil {
			errs = append(errs, kind(err))
			continue
		}
		ok++
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	fmt.Printf("new: %d of %d served within %v", ok, *fresh, *timeout)
	if len(took) > 0 {
		fmt.Printf(" (median %v, max %v)", took[len(took)/2].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))
	}
	fmt.Println()
	for _, e := range uniq(errs) {
		fmt.Println("  error:", e)
	}

	if *metrics != "" {
		resp, err := http.Get(*metrics)
		if err != nil {
			fmt.Println("metrics:", err)
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "turnout_connections_") {
					fmt.Println("metrics:", line)
				}
			}
		}
	}

	// Which idle connections did the server close?
	var closed, open atomic.Int64
	var closedMu sync.Mutex
	var closedIdx []int
	inParallel(len(conns), *parallel, func(i int) {
		c := conns[i]
		if c == nil {
			return
		}
		if c.closedByServer() {
			closed.Add(1)
			closedMu.Lock()
			closedIdx = append(closedIdx, i)
			closedMu.Unlock()
		} else {
			open.Add(1)
		}
		c.conn.Close()
	})
	fmt.Printf("idle after: %d closed by the server, %d still open\n", closed.Load(), open.Load())
	if n := len(closedIdx); n > 0 {
		// Connections were opened in about this order, so the ones the
		// server has found idle the longest have the lowest numbers.
		slices.Sort(closedIdx)
		fmt.Printf("  closed: numbers %d..%d in the order opened (of 0..%d)\n", closedIdx[0], closedIdx[n-1], len(conns)-1)
	}

}

// inParallel calls do for every number below n, from parallel goroutines
// taking the next number as they finish one, and returns when all are done.
func inParallel(n, parallel int, do func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				do(i)
			}
		}()
	}
	wg.Wait()
}

type client struct {
	conn net.Conn
	br   *bufio.Reader
}

func dial(addr string) (*client, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &client{conn: c, br: bufio.NewReader(c)}, nil
}

// do sends req and reads its answer within d; any status counts as served.
func (c *client) do(req string, d time.Duration) error {
	c.conn.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c.conn, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.conn.SetDeadline(time.Time{})
	return err
}

// closedByServer reports whether the server has closed the connection
// (EOF or a reset waiting to be read).
func (c *client) closedByServer() bool {
	c.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// kind names an error without its addresses, so that equal ones count
// together.
func kind(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before the answer"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return err.Error()
}

func uniq(s []string) []string {
	seen := map[string]int{}
	var out []string
	for _, e := range s {
		if seen[e] == 0 {
			out = append(out, e)
		}
		seen[e]++
	}
	for i, e := range out {
		if n := seen[e]; n > 1 {
			out[i] = fmt.Sprintf("%s (×%d)", e, n)
		}
	}
	return out
}

// memory reads the server's process and Go memory gauges from its
// /metrics; nil when it cannot.
func memory(metricsURL string) map[string]float64 {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range []string{"process_resident_memory_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_heap_inuse_bytes"} {
			if v, ok := strings.CutPrefix(line, k+" "); ok {
				var f float64
				fmt.Sscan(v, &f)
				out[k] = f
			}
		}
	}
	return out
}
