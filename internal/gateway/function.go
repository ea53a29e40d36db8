package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
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

// fnBackend is a route's function, hosted or on AWS Lambda. Its requests
// become API Gateway proxy events (payload 1.0 or 2.0, as the route says);
// its answers, parsed from the function's response, come whole.
type fnBackend struct {
	name    string
	payload string // "1.0" or "2.0"
	eventRoute
	maxBody  int64
	timeout  time.Duration
	platform string // metrics: "hosted" or "aws"
	tname    string // its target name, "function:NAME"

	functions Functions
	metrics   *metrics.Metrics
	observer  atomic.Pointer[metrics.Function] // resolved on first use
}

func newFnBackend(p *route.Pattern, r config.Route, f config.Function, fns Functions, m *metrics.Metrics) *fnBackend {
	b := &fnBackend{name: f.Name, payload: r.Payload, eventRoute: newEventRoute(p), maxBody: f.MaxRequestBytes,
		timeout: f.Timeout.D(), platform: "hosted", tname: turnout.FunctionTarget(f.Name), functions: fns, metrics: m}
	if f.AWS != nil {
		b.platform = "aws"
	}
	return b
}

// eventRoute is how API Gateway events name a route: its routeKey,
// resource and wildcard names.
type eventRoute struct {
	resource string   // API Gateway resource template, "/user/{id}"
	routeKey string   // "GET /user/{id}", "$default" for the catch-all
	names    []string // the route's wildcard names, for pathParameters
}

func newEventRoute(p *route.Pattern) eventRoute {
	method := p.Method
	if method == "" {
		method = "ANY"
	}
	e := eventRoute{resource: p.Template(), names: p.Names()}
	e.routeKey = method + " " + e.resource
	if p.Method == "" && p.Host == "" && e.resource == "/" {
		e.routeKey = "$default"
	}
	return e
}

// eventInfo is what an API Gateway event of route e says about x's
// request r beyond r itself.
func (x *exchange) eventInfo(r *http.Request, e eventRoute) apigw.Info {
	in := apigw.Info{
		Route: e.routeKey, Resource: e.resource, Stage: "$default", RequestID: x.id,
		SourceIP: peerIP(r.RemoteAddr), Time: x.start, DomainName: route.NormalizeHost(r.Host), Path: x.path,
	}
	if len(e.names) > 0 {
		in.PathParams = make(map[string]string, len(e.names))
		for i, n := range e.names {
			if i < len(x.values) {
				in.PathParams[n] = x.values[i]
			}
		}
	}
	return in
}

func (b *fnBackend) target() string { return b.tname }

// invocations returns the function's turnout_function_invocations_total and
// duration children, resolved on first use as route metrics are.
func (b *fnBackend) invocations() *metrics.Function {
	f := b.observer.Load()
	if f == nil {
		f = b.metrics.Function(b.name, b.platform)
		b.observer.Store(f)
	}
	return f
}

// bodyLimit is how much of a request body the function accepts: its own
// max_request_bytes, or the gateway's max_body_bytes when lower; whose
// names the one that applies.
func (b *fnBackend) bodyLimit(gateway int64) (limit int64, whose string) {
	limit, whose = b.maxBody, "function's"
	if gateway > 0 && gateway < limit {
		limit, whose = gateway, "gateway's"
	}
	return limit, whose
}

// roundTrip invokes the function with r, whose body x holds (the gateway
// reads a function route's body whole before the attempt), and returns its
// parsed response.
func (b *fnBackend) roundTrip(x *exchange, r *http.Request) (reply, *failure) {
	in := x.eventInfo(r, b.eventRoute)
	if x.authed {
		in.Authorizer = x.auth.Event()
	}
	var event []byte
	var err error
	if b.payload == "1.0" {
		event, err = apigw.EventV1(r, x.body, in)
	} else {
		event, err = apigw.EventV2(r, x.body, in)
	}
	if err != nil {
		return nil, &failure{reason: turnout.ReasonBadRequest, code: http.StatusBadRequest, msg: "cannot build the function event: " + err.Error(), err: err}
	}
	t0 := time.Now()
	resp, err := b.functions.Invoke(r.Context(), invoke.Request{
		Function: b.name, Payload: event, PayloadChecked: true, RequestID: x.id, TraceID: r.Header.Get("X-Amzn-Trace-Id"),
	})
	took := time.Since(t0)
	x.cold = resp.InitDuration > 0
	var out *apigw.Response
	var f *failure
	if err != nil {
		f = b.failure(r, err)
	} else {
		out, f = b.parse(resp)
	}
	b.invocations().Observe(invocationResult(resp, err, f), took.Seconds())
	if f != nil {
		return nil, f
	}
	return fnReply{out}, nil
}

// failure says why an invocation that did not complete failed: the client
// went away, the route's deadline passed, or the invoke.ErrorKind.
func (b *fnBackend) failure(r *http.Request, err error) *failure {
	if clientGone(r.Context(), err) {
		return clientClosed(err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &failure{reason: turnout.ReasonTimeout, code: http.StatusGatewayTimeout, msg: "function " + b.name + " did not answer within the route's deadline", err: err}
	}
	code, msg := functionErrorStatus(b.name, err)
	return &failure{reason: invoke.KindOf(err).String(), code: code, msg: msg, err: err}
}

// fnReply is a function's answer, parsed whole.
type fnReply struct{ *apigw.Response }

func (f fnReply) StatusCode() int { return f.Status }

func (f fnReply) Send(w http.ResponseWriter) (int64, error) {
	f.Write(w)
	return int64(len(f.Body)), nil
}

func (f fnReply) Discard() {}

// parse turns a completed invocation into the function's HTTP response,
// or why there is none (the function failed, timed out, or answered
// something that is not an API Gateway proxy response).
func (b *fnBackend) parse(resp invoke.Response) (*apigw.Response, *failure) {
	if resp.FunctionError != "" {
		f := &failure{reason: turnout.ReasonFunctionError, code: http.StatusBadGateway, msg: "function " + b.name + " failed",
			err: fmt.Errorf("function %s: %s: %s", b.name, resp.FunctionError, clip(resp.Payload, 512))}
		if resp.TimedOut {
			f.reason, f.code, f.msg = turnout.ReasonTimeout, http.StatusGatewayTimeout, fmt.Sprintf("function %s timed out after %s", b.name, b.timeout)
		}
		return nil, f
	}
	var out *apigw.Response
	var err error
	if b.payload == "1.0" {
		out, err = apigw.ParseV1(resp.Payload)
	} else {
		out, err = apigw.ParseV2(resp.Payload)
	}
	if err != nil {
		return nil, &failure{reason: turnout.ReasonMalformedResponse, code: http.StatusBadGateway,
			msg: "function " + b.name + " returned a malformed response: " + err.Error(),
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
