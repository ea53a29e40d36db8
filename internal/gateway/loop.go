package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/origin"
	"github.com/turnout/turnout/internal/route"
)

// The event-loop path (issue 20, docs/performance.md "Decision
// (2026-12-06)"): a loop that owns its sockets parses request heads with
// h1.Parse and asks BeginLoop whether it may serve each one itself. The
// gateway says yes only for a request it would serve exactly so on
// ServeHTTP: no body, a route whose plan is one origin and nothing else
// (loopable), an instance the loop can reach. Everything else — refusals,
// 404s, preflights, functions, guards — stays with ServeHTTP, the one place
// they are written. What the loop serves is recorded by the recorder
// ServeHTTP's requests go through (record), from the same exchange, so
// that metrics, the access log, the Observe hook and the auto-rollback
// window cannot tell the two paths apart.

// loopable returns the plan's primary origin when the event loop may serve
// the plan's requests: the primary is an origin, and nothing on the plan
// changes how a request is answered or adds to what is recorded beyond the
// auto-rollback window (which End feeds as serve does). A route switched
// off qualifies when its off target is such an origin. TestLoopablePlanFields
// holds every field of plan and side to a decision here.
func loopable(p *plan) *originBackend {
	b, ok := p.primary.backend.(*originBackend)
	if !ok || p.canary != nil || p.shadow != nil || p.guard != nil || p.keys != nil || p.cors != nil ||
		p.limiter != nil || p.breaker != nil || p.primary.fallback != nil || p.primary.timeout != 0 || p.primary.bodyLimit != 0 {
		return nil
	}
	return b
}

// LoopExchange is a request the event-loop path serves, from BeginLoop to
// End. Its methods are for the loop's goroutine; it goes back to a pool at
// End and must not be used after.
type LoopExchange struct {
	x     exchange
	g     *Gateway
	t     *Table // its ref held until End
	b     *originBackend
	wire  origin.Wire
	query []byte // nil when the target had no '?'
}

var loopExchanges = sync.Pool{New: func() any { return new(LoopExchange) }}

// BeginLoop decides whether the event loop serves req, a head parsed by
// h1.Parse, from the client at remote ("ip:port"). It says no (nil,
// false), recording and holding nothing, for every request ServeHTTP must
// serve: one with a body (Content-Length over 0, chunked), Expect, Upgrade,
// HTTP/1.0, no deployment, any the request policy refuses (check's rules,
// applied by the same functions), an absolute-form or "*" target (rare;
// ServeHTTP keeps the host rule), OPTIONS (CORS preflights are answered
// in one place), no route, a route that is not loopable, an instance the
// loop cannot reach (origin.Pool.PickWire). When it says yes, the exchange
// holds a reference to the table until End (its pools stay open), and its
// request id is the client's X-Request-Id when that is one valid value,
// else a new one, as begin decides.
//
// Its allocation is one block for the strings it keeps (host, path,
// request id, query); the route match allocates as it does for ServeHTTP
// (nothing for a lower-case host on a case-sensitive table).
func (g *Gateway) BeginLoop(req *h1.Request, remote string) (*LoopExchange, bool) {
	if req.Method == http.MethodOptions || req.ProtoMinor != 1 || req.Chunked || req.ContentLength > 0 || req.Expect100 ||
		len(req.Target) == 0 || req.Target[0] != '/' {
		return nil, false
	}
	start := time.Now()
	t := g.cur.Load()
	if t == nil {
		return nil, false
	}
	t.refs.Add(1) // before anything of t is used, as in ServeHTTP
	lx, ok := g.beginLoop(t, req, remote, start)
	if !ok {
		t.refs.Add(-1)
	}
	return lx, ok
}

func (g *Gateway) beginLoop(t *Table, req *h1.Request, remote string, start time.Time) (*LoopExchange, bool) {
	var clientID []byte
	ids := 0
	for _, f := range req.Fields {
		switch {
		case underscoreName(f.Name), h1.FieldIs(f.Name, "upgrade"):
			return nil, false
		case h1.FieldIs(f.Name, "x-request-id"):
			ids++
			clientID = f.Value
		}
	}
	rawb, query, hasQuery := splitTarget(req.Target)
	// Views of req's buffer, for deciding; what is kept is copied below.
	raw, host := view(rawb), view(req.Host)
	path, _, err := normalizePath(raw)
	if err != nil {
		return nil, false
	}
	var buf [8]string
	idx, _, ok := t.routes.Match(route.NormalizeHost(host), req.Method, path, buf[:0])
	if !ok || t.plans[idx].loop == nil {
		return nil, false
	}
	p := t.plans[idx]
	w, ok := p.loop.pool.PickWire()
	if !ok {
		return nil, false
	}

	lx := loopExchanges.Get().(*LoopExchange)
	lx.g, lx.t, lx.b, lx.wire = g, t, p.loop, w
	x := &lx.x
	x.start, x.method, x.remote = start, req.Method, remote
	x.plan, x.at, x.side, x.servedBy = p, &p.primary, turnout.Baseline, t.servedBy

	// One allocation holds every string kept: they are never written
	// again once made, so they may share it.
	keepID := ids == 1 && validID(view(clientID))
	n := len(req.Host) + len(rawb) + len(query)
	if keepID {
		n += len(clientID)
	} else {
		n += 32
	}
	a := make(arena, 0, n)
	x.host = a.str(req.Host)
	if path == raw {
		path = a.str(rawb) // raw is a view: keep a copy
		x.rawPath = path
	} else {
		x.rawPath = a.str(rawb)
	}
	x.path = path
	if keepID {
		x.id = a.str(clientID)
	} else {
		var id [32]byte
		randomID(&id)
		x.id = a.str(id[:])
	}
	if hasQuery {
		i := len(a)
		x.rawQuery = a.str(query)
		lx.query = a[i:len(a):len(a)]
	}
	return lx, true
}

// Wire is the origin instance the request goes to.
func (lx *LoopExchange) Wire() origin.Wire { return lx.wire }

// Path is the normalised path to forward (what the route matched).
func (lx *LoopExchange) Path() string { return lx.x.path }

// RawQuery is what followed the target's first '?': nil when there was
// none, empty and not nil for a bare '?' (which the goroutine path
// forwards, as url.URL's ForceQuery). The exchange owns it until End.
func (lx *LoopExchange) RawQuery() []byte { return lx.query }

// RequestID is the request's X-Request-Id, to forward to the origin.
func (lx *LoopExchange) RequestID() string { return lx.x.id }

// AppendServedFields appends the fields the gateway puts on an answer the
// origin gave, "Name: value\r\n" each: X-Request-Id, and the served-by
// header when the deployment has one on. Append them before the origin's
// own fields: where the origin sends the same name, ServeHTTP's client
// gets the gateway's value first.
func (lx *LoopExchange) AppendServedFields(dst []byte) []byte {
	x := &lx.x
	dst = appendField(dst, "X-Request-Id", x.id)
	if x.servedBy != "" {
		dst = appendField(dst, x.servedBy, x.at.servedByValue[0])
	}
	return dst
}

// AppendFailure appends the whole answer ServeHTTP sends when the origin
// failed with err before answering: the status line (502, or 504 for a
// timeout), the fields — Content-Type, Content-Length, X-Content-Type-
// Options, X-Request-Id and the served-by header ("turnout; reason=...;
// target=origin:NAME") — in h1.Server's order, the blank line and the JSON
// error body (none for HEAD, whose Content-Length still gives the body's).
// The loop adds Date, as h1.Server adds it to every answer, and
// "Connection: close" when it closes the connection after the answer. End
// records the failure (turnout_origin_errors_total included); the passive
// health of the instance is origin.Wire.Failed's to record.
func (lx *LoopExchange) AppendFailure(dst []byte, err *origin.Error) []byte {
	x := &lx.x
	f := lx.b.failed(err, err)
	body := errorBody(f.code, f.msg, x.id)
	fields := [...]struct{ k, v string }{
		{"Content-Length", strconv.Itoa(len(body))},
		{"Content-Type", "application/json"},
		{"X-Content-Type-Options", "nosniff"},
		{"X-Request-Id", x.id},
		{x.servedBy, servedByGateway(f.reason, x.at.target(), "")},
	}
	kv := fields[:]
	if x.servedBy == "" {
		kv = kv[:len(kv)-1]
	}
	slices.SortFunc(kv, func(a, b struct{ k, v string }) int { return strings.Compare(a.k, b.k) })
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(f.code), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(f.code)...)
	dst = append(dst, "\r\n"...)
	for _, f := range kv {
		dst = appendField(dst, f.k, f.v)
	}
	dst = append(dst, "\r\n"...)
	if x.method != http.MethodHead {
		dst = append(dst, body...)
	}
	return dst
}

// End records the exchange as ServeHTTP records a request on the same
// route that ended the same way, and releases the table. The cases, first
// that applies:
//   - oe: the origin failed before answering (the loop sent
//     AppendFailure's answer); err is not read.
//   - gone: the client went away; status is what was sent, 0 or
//     turnout.StatusClientClosed when nothing was (recorded as 499), n
//     the body bytes written. err is the access log's error: for a client
//     gone before the answer, ServeHTTP logs the *origin.Error RoundTrip
//     failed with (origin.Wire.Failed's).
//   - err: the answer (status, n bytes so far) was cut short on the
//     origin's side (outcome error, reason origin_aborted).
//   - otherwise the origin's answer went out whole: status, n body bytes.
//
// The auto-rollback window learns what serve would teach it, with the time
// since BeginLoop. lx must not be used after End.
func (lx *LoopExchange) End(status int, n int64, oe *origin.Error, gone bool, err error) {
	x, g := &lx.x, lx.g
	var f *failure
	switch {
	case oe != nil:
		lx.b.count(oe)
		f = lx.b.failed(oe, oe)
		x.outcome = turnout.Error
		if f.reason == turnout.ReasonBadRequest {
			x.outcome = turnout.Rejected
		}
		x.reason, x.code, x.n, x.err = f.reason, f.code, 0, f.err
	case gone:
		f = clientClosed(err)
		x.outcome, x.err = turnout.ClientClosed, err
		if status == 0 || status == turnout.StatusClientClosed {
			x.code, x.n = turnout.StatusClientClosed, 0
		} else {
			f.started = true
			x.code, x.n = status, n
		}
	case err != nil:
		f = &failure{reason: turnout.ReasonOriginAborted, code: status, err: err, started: true}
		x.outcome, x.reason, x.code, x.n, x.err = turnout.Error, f.reason, status, n, err
	default:
		x.outcome, x.code, x.n = turnout.Served, status, n
	}
	x.plan.record(f, time.Since(x.start))
	g.record(x)
	lx.t.refs.Add(-1)
	*lx = LoopExchange{}
	loopExchanges.Put(lx)
}

// arena hands out strings copied into one allocation.
type arena []byte

func (a *arena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	i := len(*a)
	*a = append(*a, b...)
	return unsafe.String(&(*a)[i], len(b))
}

// view is b as a string without a copy, for reading only while b's buffer
// is unchanged: never kept.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// appendField appends "k: v\r\n".
func appendField(dst []byte, k, v string) []byte {
	dst = append(dst, k...)
	dst = append(dst, ": "...)
	dst = append(dst, v...)
	return append(dst, "\r\n"...)
}
