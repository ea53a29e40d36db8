package h1conformance

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Handler returns the http.Handler the server under test must serve at the
// root of addr. Its endpoints are the ones the cases use:
//
//	/echo            reads the whole body; answers 200 with the body and its
//	                 request in X-Echo-Method, X-Echo-Target (the request
//	                 target as sent), X-Echo-Host, X-Echo-Proto,
//	                 X-Echo-Test (the X-Test field) and X-Echo-Body-Length;
//	                 400 if the body could not be read
//	/discard         answers 200 "ok" without reading the body
//	/status/NNN      answers NNN and tries to write a body, which the server
//	                 must drop where NNN allows none
//	/big?n=N         writes N bytes (at most 16 MiB) without a Content-Length
//	/stream?n=N      writes N lines, flushing after each
//	/abort           writes and flushes a line, then aborts the response
//	                 with panic(http.ErrAbortHandler)
//	/slow?id=ID      waits until its request's context is done or 5 s pass,
//	                 and records which came first under ID
//	/slow-result?id= answers "cancelled", "finished" or "pending" for ID
//
// Each call returns a handler with its own /slow records.
func Handler() http.Handler {
	h := &handler{slow: make(map[string]string)}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/discard", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/status/{code}", status)
	mux.HandleFunc("/big", big)
	mux.HandleFunc("/stream", stream)
	mux.HandleFunc("/abort", abort)
	mux.HandleFunc("/slow", h.serveSlow)
	mux.HandleFunc("/slow-result", h.serveSlowResult)
	return mux
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("X-Echo-Method", r.Method)
	h.Set("X-Echo-Target", r.RequestURI)
	h.Set("X-Echo-Host", r.Host)
	h.Set("X-Echo-Proto", r.Proto)
	h.Set("X-Echo-Test", strings.Join(r.Header.Values("X-Test"), ","))
	h.Set("X-Echo-Body-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func status(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.PathValue("code"))
	if err != nil || code < 200 || code > 599 {
		http.Error(w, "status must be 200 to 599", http.StatusBadRequest)
		return
	}
	w.WriteHeader(code)
	io.WriteString(w, "this body must not be sent for 204 or 304\n")
}

// query reads a bounded integer from the query string.
func query(r *http.Request, name string, def, max int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || n < 0 {
		return def
	}
	return min(n, max)
}

func big(w http.ResponseWriter, r *http.Request) {
	n := query(r, "n", 1024, 16<<20)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for n > 0 {
		k := min(n, len(line))
		if _, err := w.Write(line[len(line)-k:]); err != nil {
			return
		}
		n -= k
	}
}

func stream(w http.ResponseWriter, r *http.Request) {
	for i := range query(r, "n", 3, 1000) {
		fmt.Fprintf(w, "line %d\n", i)
		http.NewResponseController(w).Flush()
	}
}

func abort(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "partial\n")
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// handler holds what /slow saw, for /slow-result to report. The records
// travel over HTTP rather than through a Go value so that a case can read
// them through a proxy too.
type handler struct {
	mu   sync.Mutex
	slow map[string]string
}

// maxSlowRecords bounds the /slow records a long-running server keeps.
const maxSlowRecords = 1024

func (h *handler) record(id, what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.slow[id]; !ok && len(h.slow) >= maxSlowRecords {
		clear(h.slow)
	}
	h.slow[id] = what
}

func (h *handler) serveSlow(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		http.Error(w, "id is required", http.StatusBadRequest)
		return
	}
	h.record(id, "pending")
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		h.record(id, "cancelled")
	case <-t.C:
		h.record(id, "finished")
		io.WriteString(w, "finished")
	}
}

func (h *handler) serveSlowResult(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	what, ok := h.slow[r.URL.Query().Get("id")]
	h.mu.Unlock()
	if !ok {
		http.Error(w, "no such id", http.StatusNotFound)
		return
	}
	io.WriteString(w, what)
}
