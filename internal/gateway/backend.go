package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/origin"
)

// backend is one place a route's requests can go: an origin (a pool of
// instances, origin.Pool) or a function (hosted on this node or on AWS
// Lambda: invoke.Router picks, behind Options.Functions). A route's
// primary, its fallback and, next, its canary and shadow are each one.
type backend interface {
	// target is the backend's target name: "origin:NAME" or
	// "function:NAME" (turnout.OriginTarget, turnout.FunctionTarget).
	target() string
	// roundTrip sends x's request r (r carries this attempt's deadline)
	// and returns the answer unsent, or why there is none. Nothing has
	// been written to the client either way.
	roundTrip(x *exchange, r *http.Request) (reply, *failure)
	// failure says why the backend failed on r with err, nothing having
	// been written: roundTrip's own errors, and a reply whose Send failed
	// before writing (an origin upgrade whose hand-over failed).
	failure(r *http.Request, err error) *failure
}

// reply is a backend's answer held as a value, as httputil.ReverseProxy
// holds an *http.Response: its status is known before anything is sent,
// so the gateway can still drop it (fallback_on_status) and send the
// request elsewhere.
type reply interface {
	StatusCode() int
	// Send writes the answer to w and returns the body bytes written. An
	// error is an *origin.Error when nothing was written, else the answer
	// was cut short (the client went away, or the backend aborted it).
	Send(w http.ResponseWriter) (int64, error)
	// Discard drops the answer unsent.
	Discard()
}

// failure is a backend that did not answer usefully: before anything was
// written to the client (the request can still go to the fallback, or be
// answered with code and msg), or, with started, after its answer had
// begun (code was sent; the answer was cut short).
type failure struct {
	reason  string // metrics and the served-by header: a turnout.Reason… constant or an invoke.ErrorKind name
	code    int
	msg     string
	err     error // for the access log
	started bool
}

// fellBack is the access log's account of why the fallback answered.
func (f *failure) fellBack() error {
	if f.err == nil {
		return errors.New("fallback: " + f.reason)
	}
	return fmt.Errorf("fallback: %s: %w", f.reason, f.err)
}

// asError is f as an error, for a shadow's failure.
func (f *failure) asError() error {
	if f.err != nil {
		return fmt.Errorf("%s: %w", f.reason, f.err)
	}
	return errors.New(f.reason + ": " + f.msg)
}

// clientSide reports failures that do not count against the backend.
func (f *failure) clientSide() bool {
	switch f.reason {
	case turnout.ReasonThrottled, "request_too_large", turnout.ReasonTooLarge, turnout.ReasonBadRequest, "invalid_request", turnout.ReasonClientClosed:
		return true
	}
	return false
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

// originBackend is an origin: a pool shared by every table that declares
// the origin unchanged.
type originBackend struct {
	name    string // the origin's name
	tname   string // its target name, "origin:NAME"
	pool    *origin.Pool
	metrics *metrics.Metrics
}

func newOriginBackend(p *origin.Pool, m *metrics.Metrics) *originBackend {
	return &originBackend{name: p.Name(), pool: p, metrics: m, tname: turnout.OriginTarget(p.Name())}
}

func (b *originBackend) target() string { return b.tname }

func (b *originBackend) roundTrip(x *exchange, r *http.Request) (reply, *failure) {
	resp, err := b.pool.RoundTrip(x.w, r)
	if err != nil {
		return nil, b.failure(r, err)
	}
	return originReply{resp}, nil
}

// failure maps an origin exchange that failed before writing anything (an
// *origin.Error) to why: the client's doing (it went away, or its body
// broke), or the origin's, counted in turnout_origin_errors_total.
func (b *originBackend) failure(r *http.Request, err error) *failure {
	if clientGone(r.Context(), err) {
		return clientClosed(err)
	}
	var oe *origin.Error
	if !errors.As(err, &oe) {
		// Not reached: the origin package fails with *origin.Error only.
		oe = &origin.Error{Kind: origin.KindProtocol, Err: err}
	}
	b.count(oe)
	return b.failed(oe, err)
}

// count counts the origin's failure oe in turnout_origin_errors_total,
// unless the client's body was at fault.
func (b *originBackend) count(oe *origin.Error) {
	if oe.Kind != origin.KindClient {
		b.metrics.OriginErrors.WithLabelValues(b.name, oe.Kind.String()).Inc()
	}
}

// failed is why the origin did not answer, having failed with oe (err, for
// the access log, is oe or wraps it) while its client was still there.
func (b *originBackend) failed(oe *origin.Error, err error) *failure {
	if oe.Kind == origin.KindClient {
		return &failure{reason: turnout.ReasonBadRequest, code: oe.StatusCode(), msg: clientBodyMessage(oe), err: err}
	}
	f := &failure{reason: turnout.OriginReason(oe.Kind.String()), code: oe.StatusCode(), msg: "origin " + b.name + ": " + oe.Kind.String(), err: err}
	if f.code == http.StatusGatewayTimeout {
		f.msg = "origin " + b.name + " did not answer in time"
	}
	return f
}

// clientBodyMessage is the answer to a request whose body could not be read.
func clientBodyMessage(oe *origin.Error) string {
	if oe.StatusCode() == http.StatusRequestTimeout {
		return "the request body stalled"
	}
	return "malformed request body: " + oe.Err.Error()
}

// originReply is an origin's answer: its head read, its body not yet.
type originReply struct{ *origin.Response }

func (o originReply) StatusCode() int { return o.Status }
