package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/apigw"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
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
	platform string // metrics: "hosted" or "aws"
}

func newFnTarget(p *route.Pattern, r config.Route, f config.Function) *fnTarget {
	method := p.Method
	if method == "" {
		method = "ANY"
	}
	ft := &fnTarget{name: f.Name, payload: r.Payload, resource: p.Template(), maxBody: f.MaxRequestBytes, timeout: f.Timeout.D()}
	ft.routeKey = method + " " + ft.resource
	ft.platform = "hosted"
	if f.AWS != nil {
		ft.platform = "aws"
	}
	if p.Method == "" && p.Host == "" && ft.resource == "/" {
		ft.routeKey = "$default"
	}
	return ft
}

// failure is a primary backend that did not answer usefully, before
// anything was written to the client: the request can still go to the
// fallback, or be answered with code and msg.
type failure struct {
	reason string // metrics and the served-by header: a turnout.Reason… constant or an invoke.ErrorKind name
	code   int
	msg    string
	err    error // for the access log
}

// clientClosed is the failure of a backend call whose client went away.
func clientClosed(err error) *failure {
	return &failure{reason: turnout.ReasonClientClosed, code: turnout.StatusClientClosed, msg: "the client closed the request", err: err}
}

// clientGone reports that a backend call failed because its client went
// away: err is a cancellation and ctx, the context the call ran under,
// was canceled rather than past a deadline. net/http cancels a request's
// context when the client closes its connection or resets its HTTP/2
// stream, and nothing in the gateway cancels one before the handler
// returns, so a canceled ctx means the client left. A route deadline that
// passed first leaves ctx at DeadlineExceeded for good: that stays the
// backend's timeout.
func clientGone(ctx context.Context, err error) bool {
	return err != nil && errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled)
}

// readFunctionBody reads the request body for a function event, bounded by
// the function's and the gateway's limits.
func (g *Gateway) readFunctionBody(r *http.Request, ft *fnTarget) ([]byte, *failure) {
	limit, whose := ft.maxBody, "function's"
	if m := g.opts.MaxBodyBytes; m > 0 && m < limit {
		limit, whose = m, "gateway's"
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, &failure{reason: turnout.ReasonBadRequest, code: http.StatusBadRequest, msg: "reading the request body: " + err.Error(), err: err}
	}
	if int64(len(body)) > limit {
		msg := fmt.Sprintf("request body is over the %s limit of %d bytes", whose, limit)
		return nil, &failure{reason: turnout.ReasonTooLarge, code: http.StatusRequestEntityTooLarge, msg: msg, err: errors.New(msg)}
	}
	return body, nil
}

// callFunction invokes tg's function with r (whose body is body) and
// returns its parsed response, or why there is none.
func (g *Gateway) callFunction(r *http.Request, tg *target, body []byte, id, path string, values []string, start time.Time) (*apigw.Response, *failure) {
	ft := tg.fn
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
	var err error
	if ft.payload == "1.0" {
		event, err = apigw.EventV1(r, body, in)
	} else {
		event, err = apigw.EventV2(r, body, in)
	}
	if err != nil {
		return nil, &failure{reason: turnout.ReasonBadRequest, code: http.StatusBadRequest, msg: "cannot build the function event: " + err.Error(), err: err}
	}
	t0 := time.Now()
	resp, err := g.opts.Functions.Invoke(r.Context(), invoke.Request{
		Function: ft.name, Payload: event, RequestID: id, TraceID: r.Header.Get("X-Amzn-Trace-Id"),
	})
	took := time.Since(t0)
	var out *apigw.Response
	var f *failure
	if clientGone(r.Context(), err) {
		f = clientClosed(err)
	} else {
		out, f = parseInvocation(ft, resp, err)
	}
	tg.fnMetrics().Observe(invocationResult(resp, err, f), took.Seconds())
	return out, f
}

// parseInvocation turns an invocation's outcome into the function's HTTP
// response, or why there is none.
func parseInvocation(ft *fnTarget, resp invoke.Response, err error) (*apigw.Response, *failure) {
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, &failure{reason: turnout.ReasonTimeout, code: http.StatusGatewayTimeout, msg: "function " + ft.name + " did not answer within the route's deadline", err: err}
	}
	if err != nil {
		code, msg := functionErrorStatus(ft.name, err)
		return nil, &failure{reason: invoke.KindOf(err).String(), code: code, msg: msg, err: err}
	}
	if resp.FunctionError != "" {
		f := &failure{reason: turnout.ReasonFunctionError, code: http.StatusBadGateway, msg: "function " + ft.name + " failed",
			err: fmt.Errorf("function %s: %s: %s", ft.name, resp.FunctionError, clip(resp.Payload, 512))}
		if resp.TimedOut {
			f.reason, f.code, f.msg = turnout.ReasonTimeout, http.StatusGatewayTimeout, fmt.Sprintf("function %s timed out after %s", ft.name, ft.timeout)
		}
		return nil, f
	}
	var out *apigw.Response
	if ft.payload == "1.0" {
		out, err = apigw.ParseV1(resp.Payload)
	} else {
		out, err = apigw.ParseV2(resp.Payload)
	}
	if err != nil {
		return nil, &failure{reason: turnout.ReasonMalformedResponse, code: http.StatusBadGateway,
			msg: "function " + ft.name + " returned a malformed response: " + err.Error(),
			err: fmt.Errorf("%w; raw response: %s", err, clip(resp.Payload, 1024))}
	}
	return out, nil
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

// invocationResult is the result label of turnout_function_invocations_total
// for one invocation: success, function_error, crash, timeout,
// malformed_response, client_closed (the client went away), or the
// invoke.ErrorKind of an invocation that could not run.
func invocationResult(resp invoke.Response, err error, f *failure) string {
	switch {
	case f == nil:
		return metrics.ResultSuccess
	case f.reason == turnout.ReasonClientClosed:
		return metrics.ResultClientClosed
	case err != nil:
		return f.reason // "timeout" or the error kind
	case resp.TimedOut:
		return metrics.ResultTimeout
	case resp.FunctionError != "":
		// The host reports a runtime that exited mid-invocation as
		// Runtime.ExitError (Lambda's own name for it).
		var doc struct {
			ErrorType string `json:"errorType"`
		}
		if json.Unmarshal(resp.Payload, &doc) == nil && doc.ErrorType == "Runtime.ExitError" {
			return metrics.ResultCrash
		}
		return metrics.ResultError
	}
	return f.reason // malformed_response
}
