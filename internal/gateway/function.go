package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/turnout/turnout/internal/apigw"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/route"
)

// Functions runs the functions routes target: hosted processes and AWS
// Lambda (invoke.Router). Configure is called with each deployment's
// functions before its table is swapped in.
type Functions interface {
	Invoke(ctx context.Context, req invoke.Request) (invoke.Response, error)
	Configure(ctx context.Context, fns []config.Function) error
}

// fnTarget is a route's function.
type fnTarget struct {
	name     string
	payload  string // "1.0" or "2.0"
	resource string // API Gateway resource template, "/user/{id}"
	routeKey string // "GET /user/{id}", "$default" for the catch-all
	maxBody  int64
	timeout  time.Duration
}

func newFnTarget(p *route.Pattern, r config.Route, f config.Function) *fnTarget {
	method := p.Method
	if method == "" {
		method = "ANY"
	}
	ft := &fnTarget{name: f.Name, payload: r.Payload, resource: p.Template(), maxBody: f.MaxRequestBytes, timeout: f.Timeout.D()}
	ft.routeKey = method + " " + ft.resource
	if p.Method == "" && p.Host == "" && ft.resource == "/" {
		ft.routeKey = "$default"
	}
	return ft
}

// serveFunction answers r with tg's function: HTTP → API Gateway event →
// invocation → response. It returns the status written and the body size.
func (g *Gateway) serveFunction(w http.ResponseWriter, r *http.Request, tg *target, id, path string, values []string, start time.Time) (int, int64, error) {
	ft := tg.fn
	limit, whose := ft.maxBody, "function's"
	if m := g.opts.MaxBodyBytes; m > 0 && m < limit {
		limit, whose = m, "gateway's"
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error(), id)
		return http.StatusBadRequest, 0, err
	}
	if int64(len(body)) > limit {
		msg := fmt.Sprintf("request body is over the %s limit of %d bytes", whose, limit)
		writeError(w, http.StatusRequestEntityTooLarge, msg, id)
		return http.StatusRequestEntityTooLarge, 0, errors.New(msg)
	}
	in := apigw.Info{
		Route: ft.routeKey, Resource: ft.resource, Stage: "$default", RequestID: id,
		SourceIP: peerIP(r.RemoteAddr), Time: start, DomainName: route.NormalizeHost(r.Host), Path: path,
	}
	if len(tg.names) > 0 {
		in.PathParams = make(map[string]string, len(tg.names))
		for i, n := range tg.names {
			if i < len(values) {
				in.PathParams[n] = values[i]
			}
		}
	}
	var event []byte
	if ft.payload == "1.0" {
		event, err = apigw.EventV1(r, body, in)
	} else {
		event, err = apigw.EventV2(r, body, in)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot build the function event: "+err.Error(), id)
		return http.StatusBadRequest, 0, err
	}
	resp, err := g.opts.Functions.Invoke(r.Context(), invoke.Request{
		Function: ft.name, Payload: event, RequestID: id, TraceID: r.Header.Get("X-Amzn-Trace-Id"),
	})
	if err != nil {
		code, msg := functionErrorStatus(ft.name, err)
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		g.opts.Metrics.FunctionErrors.WithLabelValues(ft.name, invoke.KindOf(err).String()).Inc()
		writeError(w, code, msg, id)
		return code, 0, err
	}
	if resp.FunctionError != "" {
		code, kind, msg := http.StatusBadGateway, "function_error", "function "+ft.name+" failed"
		if resp.TimedOut {
			code, kind, msg = http.StatusGatewayTimeout, "timeout", fmt.Sprintf("function %s timed out after %s", ft.name, ft.timeout)
		}
		g.opts.Metrics.FunctionErrors.WithLabelValues(ft.name, kind).Inc()
		writeError(w, code, msg, id)
		return code, 0, fmt.Errorf("function %s: %s: %s", ft.name, resp.FunctionError, clip(resp.Payload, 512))
	}
	var out *apigw.Response
	if ft.payload == "1.0" {
		out, err = apigw.ParseV1(resp.Payload)
	} else {
		out, err = apigw.ParseV2(resp.Payload)
	}
	if err != nil {
		g.opts.Metrics.FunctionErrors.WithLabelValues(ft.name, "malformed_response").Inc()
		writeError(w, http.StatusBadGateway, "function "+ft.name+" returned a malformed response: "+err.Error(), id)
		return http.StatusBadGateway, 0, fmt.Errorf("%w; raw response: %s", err, clip(resp.Payload, 1024))
	}
	out.Write(w)
	return out.Status, int64(len(out.Body)), nil
}

// functionErrorStatus maps an invocation that did not complete to a status.
func functionErrorStatus(name string, err error) (int, string) {
	switch invoke.KindOf(err) {
	case invoke.KindThrottled:
		return http.StatusTooManyRequests, "function " + name + " is at its concurrency limit"
	case invoke.KindTooLarge:
		return http.StatusRequestEntityTooLarge, "request is over function " + name + "'s payload limit"
	case invoke.KindResponseTooLarge:
		return http.StatusBadGateway, "function " + name + " returned a response over its payload limit"
	case invoke.KindInitFailed:
		return http.StatusBadGateway, "function " + name + " failed to start"
	case invoke.KindNotFound:
		return http.StatusBadGateway, "function " + name + " is not available"
	}
	return http.StatusBadGateway, "function " + name + " failed: " + err.Error()
}

func peerIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

func clip(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…(" + strconv.Itoa(len(b)) + " bytes)"
}
