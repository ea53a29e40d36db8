package gateway

import (
	"fmt"
	"net/http"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/cors"
	"github.com/turnout/turnout/internal/route"
)

// corsPolicies compiles each route's CORS policy (nil for none), in
// cfg.Routes' order; routes that have the top-level policy share one.
func corsPolicies(cfg *config.Config) ([]*cors.Policy, error) {
	out := make([]*cors.Policy, len(cfg.Routes))
	var global *cors.Policy
	for i, r := range cfg.Routes {
		c := cfg.RouteCORS(i)
		switch {
		case c == nil:
			continue
		case c == cfg.CORS && global != nil:
			out[i] = global
			continue
		}
		p, err := cors.New(c.Policy())
		if err != nil { // Parse refuses it; a hand-built config may not
			return nil, fmt.Errorf("route %s: cors: %w", r.Match, err)
		}
		if c == cfg.CORS {
			global = p
		}
		out[i] = p
	}
	return out, nil
}

// preflight answers x's request when it is a CORS preflight for a route
// with a CORS policy, and reports whether it did. API Gateway answers
// preflights itself, even without an OPTIONS route, and so does turnout:
// the route is the one the method asked for (Access-Control-Request-
// Method) matches, and the answer comes before its authorizer, since a
// preflight never carries credentials (Fetch), and never reaches its
// target. An allowed preflight gets 204 with the policy's headers (outcome
// served); a refused one 403 without CORS headers, which the browser
// reads as a refusal (outcome rejected, counted in
// turnout_requests_rejected_total). Both have reason cors_preflight and
// are counted with the requests no route took (route ""), so a route's
// targets, breaker and canary comparison see only the requests they serve.
func (g *Gateway) preflight(t *Table, x *exchange) bool {
	method, ok := cors.IsPreflight(x.r)
	if !ok {
		return false
	}
	idx, _, ok := t.routes.Match(route.NormalizeHost(x.r.Host), method, x.path, x.valueBuf[:0])
	if !ok || t.plans[idx].cors == nil {
		return false
	}
	p := t.plans[idx]
	err := p.cors.Preflight(x.w.Header(), x.r, method)
	x.reason = turnout.ReasonCORSPreflight
	answeredByGateway(x.w, x.servedBy, x.reason, "", "")
	if err != nil {
		g.opts.Metrics.Rejected.WithLabelValues(x.reason).Inc()
		writeError(x.w, http.StatusForbidden, "CORS preflight refused by route "+p.pattern+": "+err.Error(), x.id)
		x.outcome, x.code, x.err = turnout.Rejected, http.StatusForbidden, err
		return true
	}
	x.w.WriteHeader(http.StatusNoContent)
	x.outcome, x.code = turnout.Served, http.StatusNoContent
	return true
}

// withCORS makes every answer to x, on a route with a CORS policy, carry
// the policy's headers: the target's, and those turnout writes itself
// (its errors, the authorizer's 401 and 403), so that a page can read why
// it was refused. The target's own CORS headers are dropped, as API
// Gateway ignores them when CORS is configured.
func withCORS(x *exchange) {
	x.w = &corsWriter{ResponseWriter: x.w, policy: x.plan.cors, origin: cors.Origin(x.r)}
}

// corsWriter decorates the final response head with a CORS policy's
// headers, when it is written. Unwrap lets http.ResponseController reach
// the Flusher and Hijacker underneath.
type corsWriter struct {
	http.ResponseWriter
	policy *cors.Policy
	origin string // the request's Origin, "" for none
	done   bool
}

func (c *corsWriter) WriteHeader(code int) {
	if !c.done && code >= 200 { // not on an interim 1xx
		c.done = true
		c.policy.Decorate(c.ResponseWriter.Header(), c.origin)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *corsWriter) Write(b []byte) (int, error) {
	if !c.done {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

func (c *corsWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
