package gateway

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/turnout/turnout"
)

var observationPool = sync.Pool{New: func() any { return new(turnout.Observation) }}

// observe hands the Observe hook one request:
//
//   - Path is the request target's path as received (escaped, before
//     normalisation), RawQuery what followed '?'.
//   - Route and Target are "" for requests no route took; Target is the
//     fallback's "origin:NAME" when the fallback answered, else the target
//     of the route's side that had the request (its own, or its canary's:
//     Side says which), including when the gateway answered for it (a
//     429, a 502).
//   - RequestBytes is the buffered body's length, else Content-Length,
//     -1 for a streamed body of unknown length.
//   - BinaryBody: a buffered body (function routes, replayable requests on
//     routes with a fallback) is binary when it is not valid UTF-8; a
//     streamed body is judged by its Content-Type (see binaryType).
func (g *Gateway) observe(x *exchange, d time.Duration) {
	o := observationPool.Get().(*turnout.Observation)
	*o = turnout.Observation{
		Time: x.start, Method: x.method, Host: x.host, Path: x.rawPath, RawQuery: x.rawQuery,
		Outcome: x.outcome, Reason: x.reason, Status: x.code, Bytes: x.n,
		RequestBytes: x.reqBytes, Duration: d,
	}
	if p := x.plan; p != nil {
		o.Route, o.Target, o.Side = p.pattern, x.at.target(), x.side
		if x.fellBack {
			o.Target = x.at.fallback.backend.target()
		}
	}
	switch {
	case x.buffered:
		o.RequestBytes, o.BinaryBody = int64(len(x.body)), !utf8.Valid(x.body)
	case o.RequestBytes != 0:
		o.BinaryBody = binaryType(x.reqType)
	}
	g.opts.Observe(o)
	*o = turnout.Observation{}
	observationPool.Put(o)
}

// rawPath is the path of the request target as the client sent it.
func rawPath(r *http.Request) string {
	raw := r.RequestURI
	if raw == "" || raw[0] != '/' {
		// Absolute form (or "*"): the path inside the URL, still escaped.
		// check may have rewritten r.URL to the normalised path, so parse
		// what was received.
		if u, err := url.ParseRequestURI(raw); err == nil {
			return u.EscapedPath()
		}
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return raw
}

// binaryType judges a streamed (unread) request body by its Content-Type.
// Text types are text/*, JSON, XML, form-urlencoded, JavaScript, GraphQL,
// NDJSON and YAML, including any +json or +xml suffix; a body without a
// Content-Type counts as text. Everything else is binary: octet-stream,
// image/*, audio/*, video/*, archives, protobuf, and multipart/* (form
// uploads usually carry files, and the parts are not read to find out).
func binaryType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return false
	}
	switch mt {
	case "application/json", "application/xml", "application/x-www-form-urlencoded", "application/javascript",
		"application/ecmascript", "application/graphql", "application/x-ndjson", "application/yaml",
		"application/x-yaml", "application/jsonl":
		return false
	}
	return true
}
