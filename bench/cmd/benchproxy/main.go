// Command benchproxy serves one origin.Pool behind a plain http.Server: the
// proxy core of turnout without routing, metrics or access logs. bench/peers.sh
// uses it when cmd/turnout cannot be built, and it isolates the origin
// package's cost when comparing the two.
package main

import (
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/origin"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	upstream := flag.String("origin", "http://127.0.0.1:9000", "origin URL")
	impl := flag.String("impl", "pool", "proxy implementation: pool (origin.Pool) or reverseproxy (httputil.ReverseProxy, for comparison)")
	server := flag.String("server", "std", "HTTP/1.1 server: std (net/http) or loop (a bare read-handle-flush loop, a measurement only: see loop.go)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT/SIGTERM")
	flag.Parse()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		go func() {
			c := make(chan os.Signal, 1)
			signal.Notify(c, os.Interrupt, syscall.SIGTERM)
			<-c
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}

	pool, err := origin.NewPool(config.Origin{Name: "legacy", URLs: []string{*upstream}}, origin.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	var h http.HandlerFunc = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Other errors mean the response had started; Forward aborted it.
		var oe *origin.Error
		if err := pool.Forward(w, r); errors.As(err, &oe) {
			http.Error(w, oe.Error(), oe.StatusCode())
		}
	})
	if *impl == "reverseproxy" {
		u, err := url.Parse(*upstream)
		if err != nil {
			log.Fatal(err)
		}
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
		rp.BufferPool = bufferPool{}
		h = rp.ServeHTTP
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Printf("benchproxy on %s → %s (%s server)", *listen, *upstream, *server)
	if *server == "loop" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(serveLoop(ln, h))
	}
	log.Fatal(srv.ListenAndServe())
}

var buffers = sync.Pool{New: func() any { return make([]byte, 32<<10) }}

type bufferPool struct{}

func (bufferPool) Get() []byte  { return buffers.Get().([]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(b) } //nolint:staticcheck // the slice header allocation is noise here
