package gateway

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"

	"github.com/turnout/turnout/internal/origin"
)

// requestID returns the client's X-Request-Id when it is a sane token
// (1–128 bytes of letters, digits and ._:-), or a new random one.
func requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && validID(v[0]) {
		return v[0]
	}
	var b [32]byte
	hex := "0123456789abcdef"
	x, y := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		b[i] = hex[x>>(4*i)&15]
		b[16+i] = hex[y>>(4*i)&15]
	}
	return string(b[:])
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// writeError answers with a small JSON error that carries the request id,
// so a user's report can be found in the access log.
func writeError(w http.ResponseWriter, code int, msg, id string) {
	body, _ := json.Marshal(struct {
		Error     string `json:"error"`
		Detail    string `json:"detail"`
		RequestID string `json:"request_id"`
	}{http.StatusText(code), msg, id})
	body = append(body, '\n')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(code)
	w.Write(body)
}

// recorder notes the status and size of a response for metrics and the
// access log. Unwrap lets http.ResponseController reach the Flusher and
// Hijacker underneath.
type recorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

// forward proxies r to pool, answering on w, and returns the status and
// the number of body bytes written. code is 0 when nothing was written: the
// exchange failed before the response, or the connection was hijacked (an
// upgrade).
func forward(pool *origin.Pool, w http.ResponseWriter, r *http.Request) (code int, n int64, err error) {
	rec := recorderPool.Get().(*recorder)
	rec.ResponseWriter, rec.code, rec.bytes = w, 0, 0
	err = pool.Forward(rec, r)
	code, n = rec.code, rec.bytes
	rec.ResponseWriter = nil
	recorderPool.Put(rec)
	return code, n, err
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 || r.code < 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
