package gateway

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/authz"
)

// exchange is one request on its way through the gateway: who asked for
// what, the plan of the route it matched, and how it was answered.
// ServeHTTP takes one from a pool, the steps it calls fill it in, and end
// records it (metrics, the access log, the Observe hook).
type exchange struct {
	w      http.ResponseWriter
	r      *http.Request // nil on the event-loop path (loop.go)
	id     string        // X-Request-Id
	start  time.Time
	path   string   // the normalised path, matched and forwarded
	values []string // the route's wildcard values, in valueBuf
	plan   *plan    // nil until a route matched
	// at is the side of the plan that has the request (the primary, or
	// the canary when side is turnout.Canary); nil until a route matched.
	at   *side
	side turnout.Side
	// servedBy is the canonical name of the served-by header, "" for none.
	servedBy string

	// What the records (record: metrics, the access log, the Observe
	// hook) read of the request, captured from ServeHTTP's *http.Request
	// (begin) or from the event loop's h1.Request (BeginLoop), so that one
	// recorder serves both paths.
	method, host, remote string
	rawPath              string // the target's path as received, escaped
	rawQuery             string // what followed '?'
	reqBytes             int64  // Content-Length, -1 for a streamed body of unknown length
	reqType              string // Content-Type, read only for a request with a body

	// body is the request body when it was buffered (function routes,
	// replayable requests on routes with a fallback); buffered says so.
	body     []byte
	buffered bool
	// capture, while the primary answers a request copied to the shadow,
	// keeps the answer on its way to the client.
	capture *capture

	// How the request was answered.
	outcome  turnout.Outcome
	reason   string // why not served by the primary ("" when it was)
	code     int    // the status sent (turnout.StatusClientClosed when none was)
	n        int64  // response body bytes
	err      error  // for the access log
	fellBack bool   // the fallback answered
	cold     bool   // a function answered from an instance started for it

	// auth is what the route's authorizer said about the caller, when
	// authed: for the function's event, the origin's headers and the log.
	auth   authz.Result
	authed bool
	// authResult is turnout_auth_total's result for the request, "" when
	// its route has no authorizer.
	authResult string
	// apiKey is the name of the request's API key, when one matched;
	// apiKeyResult turnout_api_key_requests_total's result, "" when its
	// route requires no key.
	apiKey, apiKeyResult string

	valueBuf [8]string
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// begin starts the exchange of r: it gets its request id, on the request
// (for the backend) and on the response (for the client).
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request) *exchange {
	x := exchanges.Get().(*exchange)
	x.w, x.r, x.start = w, r, time.Now()
	x.method, x.host, x.remote = r.Method, r.Host, r.RemoteAddr
	x.rawPath, x.rawQuery, x.reqBytes = rawPath(r), r.URL.RawQuery, r.ContentLength
	if x.reqBytes != 0 {
		x.reqType = r.Header.Get("Content-Type")
	}
	// One slice for both headers (the client's own when it sent the id):
	// neither is changed in place — Header.Set and append replace it.
	v := r.Header["X-Request-Id"]
	if len(v) == 1 && validID(v[0]) {
		x.id = v[0]
	} else {
		v = newRequestID()
		x.id = v[0]
		r.Header["X-Request-Id"] = v
	}
	w.Header()["X-Request-Id"] = v
	return x
}

// end records an answered exchange (record) and puts it back in the pool.
func (g *Gateway) end(x *exchange) {
	g.record(x)
	*x = exchange{}
	exchanges.Put(x)
}

// record records an answered exchange, served by either path (ServeHTTP,
// or the event loop's LoopExchange.End): the route's (or the unrouted)
// request metrics, the access log and the Observe hook.
func (g *Gateway) record(x *exchange) {
	d := time.Since(x.start)
	if p := x.plan; p != nil {
		x.at.observerFor(p.metrics, p.pattern, x.fellBack).Observe(x.outcome, x.code, d.Seconds())
		if p.canary != nil {
			p.canary.observe(p.pattern, x.side, x.outcome, d.Seconds())
			if p.canary.compare.record(x.side, x.outcome, x.code, d, x.cold) && x.side == turnout.Canary && g.opts.OnCanaryFailure != nil {
				g.opts.OnCanaryFailure()
			}
		}
	} else {
		g.unrouted.Observe(x.outcome, x.code, d.Seconds())
	}
	g.logAccess(x, d)
	if g.opts.Observe != nil {
		g.observe(x, d)
	}
}

// refuse answers a request turnout will not serve (no deployment, a
// request the policy refuses, no route): outcome rejected.
func (x *exchange) refuse(code int, reason, msg string, err error) {
	answeredByGateway(x.w, x.servedBy, reason, "", "")
	writeError(x.w, code, msg, x.id)
	x.outcome, x.reason, x.code, x.err = turnout.Rejected, reason, code, err
}

// fail answers with f's error because no backend answered usefully.
// target is the backend that failed (or refused the request), fellBackFor
// the side's failure when target was the fallback. The exchange's reason
// stays the side's when it has one.
func (x *exchange) fail(outcome turnout.Outcome, f *failure, target, fellBackFor string) {
	answeredByGateway(x.w, x.servedBy, f.reason, target, fellBackFor)
	x.markCanary()
	writeError(x.w, f.code, f.msg, x.id)
	if x.reason == "" {
		x.reason = f.reason
	}
	x.outcome, x.code, x.n, x.err = outcome, f.code, 0, f.err
}

// markCanary ends the served-by header with "; canary" when the canary's
// side had the request and the header was set for something other than
// the canary's own answer (whose value says it already): the fallback, or
// turnout answering for it.
func (x *exchange) markCanary() {
	if x.side != turnout.Canary || x.servedBy == "" {
		return
	}
	if v := x.w.Header()[x.servedBy]; len(v) == 1 {
		x.w.Header()[x.servedBy] = []string{v[0] + "; canary"}
	}
}

// answeredByGateway sets the served-by header (named header, "" when off)
// of an answer turnout writes itself: "turnout; reason=REASON", then
// "; target=T" for the target that failed or was refused, then
// "; fallback=WHY" when that target was the fallback, sent there because
// the primary failed with WHY.
func answeredByGateway(w http.ResponseWriter, header, reason, target, fellBackFor string) {
	if header == "" {
		return
	}
	w.Header()[header] = []string{servedByGateway(reason, target, fellBackFor)}
}

// servedByGateway is the served-by value of an answer turnout writes
// itself (answeredByGateway).
func servedByGateway(reason, target, fellBackFor string) string {
	v := "turnout; reason=" + reason
	if target != "" {
		v += "; target=" + target
	}
	if fellBackFor != "" {
		v += "; fallback=" + fellBackFor
	}
	return v
}

// newRequestID returns a new random request id, 32 hex digits, as the one
// value of a header: the id's bytes and the header's slice are one
// allocation, never changed once made.
func newRequestID() []string {
	id := new(struct {
		v [1]string
		b [32]byte
	})
	randomID(&id.b)
	id.v[0] = unsafe.String(&id.b[0], len(id.b))
	return id.v[:]
}

// randomID fills b with a new random request id, 32 hex digits.
func randomID(b *[32]byte) {
	hex := "0123456789abcdef"
	x, y := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		b[i] = hex[x>>(4*i)&15]
		b[16+i] = hex[y>>(4*i)&15]
	}
}

// validID reports whether a client's X-Request-Id is a sane token to keep
// (1–128 bytes of letters, digits and ._:-).
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
	body := errorBody(code, msg, id)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(code)
	w.Write(body)
}

// errorBody is writeError's body: a JSON object and a newline.
func errorBody(code int, msg, id string) []byte {
	body, _ := json.Marshal(struct {
		Error     string `json:"error"`
		Detail    string `json:"detail"`
		RequestID string `json:"request_id"`
	}{http.StatusText(code), msg, id})
	return append(body, '\n')
}
