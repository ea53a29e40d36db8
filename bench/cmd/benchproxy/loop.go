package main

import (
	"bufio"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// serveLoop serves HTTP/1.1 keep-alive connections on ln with h, without
// net/http's server: a read-parse-handle-flush loop per connection, no
// background read while the handler runs, no per-request context, the
// response head and body written with one flush. It is
// a measurement, not a server: it trusts well-formed GETs from wrk (no
// request bodies, no pipelining limits, no timeouts, no TLS), to show how
// much of a proxied request's cost is net/http's server machinery
// (docs/performance.md, issue 20). Never expose it.
func serveLoop(ln net.Listener, h http.Handler) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveConn(c, h)
	}
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

func serveConn(c net.Conn, h http.Handler) {
	defer c.Close()
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
		bw.Reset(nil)
		writers.Put(bw)
	}()
	for serveOne(c, br, bw, h) {
	}
}

func serveOne(c net.Conn, br *bufio.Reader, bw *bufio.Writer, h http.Handler) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	req.RemoteAddr = c.RemoteAddr().String()
	w := &loopWriter{header: http.Header{}, bw: bw}
	h.ServeHTTP(w, req)
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if err := bw.Flush(); err != nil {
		log.Print(err)
		return false
	}
	return !req.Close
}

// loopWriter is serveLoop's http.ResponseWriter: Content-Length responses
// only (the origin's example answers have one), written through bw.
type loopWriter struct {
	header http.Header
	bw     *bufio.Writer
	wrote  bool
}

func (w *loopWriter) Header() http.Header { return w.header }

func (w *loopWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.bw.WriteString("HTTP/1.1 ")
	w.bw.WriteString(strconv.Itoa(code))
	w.bw.WriteString(" ")
	w.bw.WriteString(http.StatusText(code))
	w.bw.WriteString("\r\n")
	w.header.Write(w.bw)
	w.bw.WriteString("\r\n")
}

func (w *loopWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.bw.Write(p)
}

func (w *loopWriter) Flush() {}
