// Command legacy is the sample legacy monolith: a small JSON API that turnout
// migrates away from in the examples, and the origin of the peer benchmark
// (bench/peers.sh), so its handlers are kept cheap.
//
//	GET  /healthz              {"status":"ok"}
//	GET  /bench                a fixed 132-byte JSON body (the benchmark target)
//	GET  /user/{id}            a user
//	GET  /user/{id}/orders     the user's orders
//	POST /orders               create an order from {"user":"…","items":[…]}
//	GET  /products?ids=1;2;3   products by id; ";" separates ids, repeated ids= add more
//	*    anything else         echoes method, path, raw query, host and headers as JSON
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

var (
	jsonType  = []string{"application/json"}
	benchBody = []byte(`{"id":"42","name":"Ada Lovelace","email":"ada@example.com","plan":"pro","created":"2015-12-10T00:00:00Z","tags":["legacy","bench"]}` + "\n")
	benchLen  = []string{strconv.Itoa(len(benchBody))}
	healthz   = []byte(`{"status":"ok"}` + "\n")
	nextOrder atomic.Int64
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, healthz) })
	mux.HandleFunc("GET /bench", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = jsonType
		h["Content-Length"] = benchLen
		w.Write(benchBody)
	})
	mux.HandleFunc("GET /user/{id}", user)
	mux.HandleFunc("GET /user/{id}/orders", orders)
	mux.HandleFunc("POST /orders", createOrder)
	mux.HandleFunc("GET /products", products)
	mux.HandleFunc("/", echo)

	srv := &http.Server{
		Addr:              *listen,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute, // longer than any proxy's upstream keep-alive
	}
	log.Printf("legacy listening on %s", *listen)
	log.Fatal(srv.ListenAndServe())
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, append(b, '\n'))
}

// user answers with a small JSON document built by appending, not by
// encoding/json: this handler is on the benchmark path.
func user(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !numeric(id) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no user " + id})
		return
	}
	b := make([]byte, 0, 128)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","name":"User `...)
	b = append(b, id...)
	b = append(b, `","email":"user`...)
	b = append(b, id...)
	b = append(b, `@example.com","plan":"pro"}`+"\n"...)
	writeRaw(w, http.StatusOK, b)
}

func orders(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !numeric(id) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no user " + id})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": id,
		"orders": []map[string]any{
			{"id": "o-1", "total": 1250, "currency": "EUR"},
			{"id": "o-2", "total": 499, "currency": "EUR"},
		},
	})
}

func createOrder(w http.ResponseWriter, r *http.Request) {
	var in struct {
		User  string   `json:"user"`
		Items []string `json:"items"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return
	}
	if in.User == "" || len(in.Items) == 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "user and items are required"})
		return
	}
	id := "o-" + strconv.FormatInt(1000+nextOrder.Add(1), 10)
	w.Header().Set("Location", "/orders/"+id)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "user": in.User, "items": in.Items})
}

// products reads ids from the raw query itself: url.ParseQuery rejects ";",
// and this monolith, like many, treats it as a list separator.
func products(w http.ResponseWriter, r *http.Request) {
	var ids []string
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "ids" {
			continue
		}
		v, err := url.QueryUnescape(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad ids: " + err.Error()})
			return
		}
		for _, id := range strings.Split(v, ";") {
			if id != "" {
				ids = append(ids, id)
			}
		}
	}
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, map[string]any{"id": id, "name": "Product " + id, "price": 100 * len(id)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": out})
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	writeJSON(w, http.StatusOK, map[string]any{
		"method":   r.Method,
		"path":     r.URL.Path,
		"raw_path": r.URL.EscapedPath(),
		"query":    r.URL.RawQuery,
		"host":     r.Host,
		"headers":  r.Header,
		"body":     string(body),
	})
}

func numeric(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
