package gateway

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"

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

// forward proxies r to pool, answering on w, and returns the status and
// the number of body bytes written. code is 0 when nothing was written (the
// exchange failed before the response; err is then an *origin.Error).
func forward(pool *origin.Pool, w http.ResponseWriter, r *http.Request) (code int, n int64, err error) {
	resp, err := pool.RoundTrip(w, r)
	if err != nil {
		return 0, 0, err
	}
	return send(resp, w)
}

// send sends resp on w and returns the status and the number of body bytes
// written, as forward does.
func send(resp *origin.Response, w http.ResponseWriter) (code int, n int64, err error) {
	code = resp.Status
	n, err = resp.Send(w)
	if err != nil {
		if oe := (*origin.Error)(nil); errors.As(err, &oe) {
			return 0, 0, err // an upgrade whose hand-over failed: nothing written
		}
	}
	return code, n, err
}
