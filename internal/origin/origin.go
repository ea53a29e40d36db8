// Package origin proxies requests to legacy HTTP origins: a Pool holds the
// instances of one origin, picks one round-robin among the healthy ones, and
// forwards each request over a purpose-built HTTP/1.1 client that runs the whole
// exchange in the caller's goroutine. Pool.RoundTrip returns the answer's
// status and header as a Response before its body is read, so the caller
// decides (send it, or drop it for a fallback) without intercepting writes;
// Pool.Forward is a RoundTrip sent straight on.
//
// # Keep-alive connections the origin closes
//
// The origin may close
// a keep-alive connection whenever it likes, without Connection: close: at
// its idle timeout, after its limit of requests per connection, right after
// every answer, on a restart. A request sent on a connection the origin has
// closed meets a reset, and the exchange fails with nothing read.
//
// A request that can be replayed (an idempotent method, no body) is then
// sent again on a fresh connection; the origin cannot tell. Any other
// request (a POST, or anything with a body) is never replayed once a byte of
// it may have reached the origin: an origin that read it and died before
// answering looks exactly like one that closed before it arrived (a reset
// can mean either: the origin closed before our bytes arrived, or with some
// of them unread), so there is no "provably unseen" case worth a retry. For
// those requests the work is done before the send, so that the connection
// they go out on is open:
//
//  1. A liveness probe before every reuse: one non-blocking MSG_PEEK recv
//     (peekAlive). An origin that closed the connection has left an EOF (or
//     a reset) to read; the connection is dropped and the next one tried.
//     Replayable requests probe only connections idle for probeIdleAfter,
//     and rely on the retry otherwise: the probe is a syscall per request.
//  2. A settle time. An origin that closes after answering sends its FIN a
//     moment after the answer, and under load that moment is long enough
//     for the next request to be on its way: measured on loopback, 12% of
//     requests sent right after an answer met the close. So such a request
//     takes the most recently used connection whose answer ended settleTime
//     ago or more, and dials when there is none.
//  3. What the origin's own closes taught (silentCloses): a connection found
//     closed after n requests, or after sitting idle for d, is a sign of a
//     limit of requests per connection or of an idle timeout. A request that
//     cannot be replayed is not sent on a connection that has carried n
//     requests or sat idle d/2 or longer, so a slow origin that took longer
//     than settleTime to close is not met either. A connection that carried
//     more, or answered after a longer idle, refutes the lesson; lessons are
//     also forgotten after limitMemory, so a restart does not keep costing
//     connections.
//  4. An idle cap: such a request does not take a connection idle for
//     unsafeIdle (1 s) or longer, and dials instead; the connection stays for
//     replayable requests, which probe it. Origins that close idle
//     connections without a word mostly do so after seconds (gunicorn 2 s,
//     uvicorn 5 s, Puma 20 s, Tomcat 20 s, Go's net/http servers their
//     IdleTimeout), and a connection reaches such an age deep in the pool
//     while the requests above it keep the top busy: without the cap, the
//     first request to dig it out can arrive as the origin closes it. The
//     price is a dial after a second of quiet.
//  5. The origin's word: a Keep-Alive response field's timeout=N (Apache,
//     Node, IIS) ends a connection's reuse N less a margin after the answer
//     (reuseWindow), for every request.
//
// What is left is an origin that closes a connection at the instant a
// request that cannot be replayed is sent on it: at an idle timeout under a
// second that it does not announce and that has not been seen yet, or after
// answering more slowly than settleTime on a connection of a kind never
// seen closed. nginx, HAProxy and net/http leave that window open too,
// which is why their advice, and ours, is an origin idle timeout longer than
// the gateway's (turnout closes idle upstream connections after 90 s), or
// announced with Keep-Alive.
package origin

import (
	"fmt"
	"log/slog"
	"net"
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
	// Logger receives passive ejections, health flips, stale-connection
	// retries and, when it changes, whether the event loops can reach an
	// instance named by a host name; nothing is logged per request.
	// Default slog.Default().
	Logger *slog.Logger
	// Resolver looks up the instances' host names for every dial
	// (requests, WebSockets, the https path, health checks) and for the
	// event-loop path's addresses (resolve.go), so both paths see the same
	// answers. Not configuration: tests set it. Default net.DefaultResolver.
	Resolver *net.Resolver
}

// Kind classifies why RoundTrip or Forward failed before writing anything to
// the client.
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
	case KindClient:
		return "client"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Error is returned by RoundTrip, Send and Forward when nothing (but 1xx
// interim responses) has been written to the ResponseWriter yet, so the
// caller chooses the response: an error page, or a fallback backend. Any
// other error from Send or Forward means the response was already (partly)
// sent.
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
