// Command closingorigin measures how many requests with a body fail through
// a turnout binary when the origin closes keep-alive connections without
// Connection: close (issue 13): after a number of answers per connection,
// or after an idle time. It starts the origin (a raw HTTP/1.1 server on
// loopback that echoes each body) and `turnout serve` in front of it, sends
// sequential requests with net/http, and counts every answer other than
// 200 with the echoed body as a failure.
//
//	go build -o /tmp/turnout ./cmd/turnout
//	go run ./bench/cmd/closingorigin -bin /tmp/turnout                      # closes after each answer
//	go run ./bench/cmd/closingorigin -bin /tmp/turnout -gap 20ms
//	go run ./bench/cmd/closingorigin -bin /tmp/turnout -per-conn 3
//	go run ./bench/cmd/closingorigin -bin /tmp/turnout -per-conn 0 -idle 20ms -gap 20ms
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/origin/origintest"
)

func main() {
	bin := flag.String("bin", "turnout", "the turnout binary")
	n := flag.Int("n", 1000, "requests to send")
	gap := flag.Duration("gap", 0, "pause between requests")
	perConn := flag.Int("per-conn", 1, "answers per connection before the origin closes it (0: no limit)")
	idle := flag.Duration("idle", 0, "the origin closes connections idle this long (0: never)")
	method := flag.String("method", "POST", "request method")
	flag.Parse()
	log.SetFlags(0)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go serveOrigin(ln, *perConn, *idle)

	dir, err := os.MkdirTemp("", "closingorigin")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\ninvoke_api: {listen: \"off\"}\nadmin: {listen: 127.0.0.1:0}\nstore: {path: %s}\n"+
		"origins:\n  legacy: {url: http://%s}\nroutes:\n  - {match: /, origin: legacy}\n", filepath.Join(dir, "turnout.db"), ln.Addr())
	cfgPath := filepath.Join(dir, "turnout.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		log.Fatal(err)
	}
	public, stop := startTurnout(*bin, cfgPath)
	defer stop()

	failed, codes := 0, map[string]int{}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < *n; i++ {
		if i > 0 {
			time.Sleep(*gap)
		}
		body := fmt.Sprintf("order %d", i)
		req, _ := http.NewRequest(*method, "http://"+public+"/orders", strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			failed++
			codes["error"]++
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		codes[fmt.Sprint(resp.StatusCode)]++
		if resp.StatusCode != 200 || string(b) != body {
			failed++
		}
	}
	fmt.Printf("%d %s requests with a body, %v apart, origin closing after %d answers per connection and %v idle: %d failed %v\n",
		*n, *method, *gap, *perConn, *idle, failed, codes)
}

// serveOrigin answers each request with its body, closing a connection
// silently after perConn answers or idle without a request.
func serveOrigin(ln net.Listener, perConn int, idle time.Duration) {
	serve := origintest.ClosingConn(perConn, idle, func(_ *http.Request, body []byte) []byte { return body })
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
}

// startTurnout runs `bin serve -c cfgPath` and returns its public address
// once it logs that it listens.
func startTurnout(bin, cfgPath string) (public string, stop func()) {
	cmd := exec.Command(bin, "serve", "-c", cfgPath, "--access-log", "off")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	sc := bufio.NewScanner(stderr)
	var logged strings.Builder
	for sc.Scan() {
		var rec struct{ Msg, Public string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "turnout listening" {
			public = rec.Public
			break
		}
		logged.WriteString(sc.Text() + "\n")
	}
	if public == "" {
		stop()
		log.Fatalf("turnout did not start:\n%s", logged.String())
	}
	go io.Copy(io.Discard, stderr)
	return public, stop
}
