// Package origin proxies requests to legacy HTTP origins: a Pool holds the
// instances of one origin, picks one round-robin among the healthy ones, and
// forwards each request over a purpose-built HTTP/1.1 client that runs the whole
// exchange in the caller's goroutine.
package origin

import (
	"fmt"
	"log/slog"
	"net/netip"
)

// Options are per-pool settings that come from the deployment, not the origin.
type Options struct {
	// TrustedProxies are the TCP peers (matched against r.RemoteAddr) whose
	// X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host are believed:
	// turnout appends the peer address to their X-Forwarded-For and keeps their
	// -Proto and -Host. From every other peer all three are replaced, so a
	// client cannot forge its address. Default: none (trust nobody).
	TrustedProxies []netip.Prefix
	// Logger receives passive ejections, health flips and stale-connection
	// retries; nothing is logged per request. Default slog.Default().
	Logger *slog.Logger
}

// Kind classifies why Forward failed before writing anything to the client.
type Kind uint8

const (
	// KindConnect means no connection to the instance could be made (refused,
	// unreachable, dial timeout). The origin never saw the request, so even a
	// non-idempotent request is safe to replay elsewhere. It counts toward
	// passive ejection.
	KindConnect Kind = iota + 1
	// KindTimeout means a deadline passed before the response headers
	// arrived: the response-header timeout, the overall timeout, or the end of
	// r.Context() (a deadline, or cancellation when the client went away —
	// errors.Is(err, context.Canceled) tells that case apart). The origin may
	// have seen (and acted on) the request.
	KindTimeout
	// KindProtocol means the exchange broke after a connection was made: the
	// connection was reset or closed before a complete response head, or the
	// origin sent a malformed response (bad status line, bad framing headers,
	// a refused upgrade). The origin may have seen the request.
	KindProtocol
	// KindNoInstance means no instance could be tried. With the current
	// policy (an all-down pool is tried anyway, see Pool.Forward) Forward does
	// not return it; it is kept for callers that switch on every kind.
	KindNoInstance
	// KindClient means the client's request body could not be read while it
	// was sent: malformed chunked framing, a body shorter than its
	// Content-Length, or a stall past the server's read deadline. The client
	// is at fault; the origin saw a truncated request (its connection is
	// closed) and is not to blame.
	KindClient
)

func (k Kind) String() string {
	switch k {
	case KindConnect:
		return "connect"
	case KindTimeout:
		return "timeout"
	case KindProtocol:
		return "protocol"
	case KindNoInstance:
		return "no instance"
	case KindClient:
		return "client"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Error is returned by Forward when nothing has been written to the
// ResponseWriter yet, so the caller chooses the response: an error page now,
// a fallback backend later. Any other error from Forward means the response
// was already (partly) sent.
type Error struct {
	Kind Kind
	// Instance is the URL of the instance that failed, as configured.
	Instance string
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("origin %s: %s: %v", e.Instance, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// StatusCode is the status a gateway should answer with: 504 Gateway Timeout
// for KindTimeout; for KindClient 408 Request Timeout when the body stalled,
// else 400 Bad Request; 502 Bad Gateway otherwise.
func (e *Error) StatusCode() int {
	switch e.Kind {
	case KindTimeout:
		return 504
	case KindClient:
		if isTimeout(e.Err) {
			return 408
		}
		return 400
	}
	return 502
}

// clientBodyError is a failure to read the client's request body, as opposed
// to a failure to write it to the origin.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }
