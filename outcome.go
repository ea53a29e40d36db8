package turnout

// Outcome says how a request was answered. Its String form is the outcome
// label of turnout_requests_total, the outcome of the access log and of a
// traffic observation, and what the dashboard tells apart.
type Outcome uint8

const (
	// Served: the route's primary answered.
	Served Outcome = iota
	// Fallback: the primary failed (reason: timeout, function_error, ...)
	// and the fallback answered.
	Fallback
	// Throttled: the primary was at its concurrency or rate limit; the
	// fallback answered, or the client got a 429.
	Throttled
	// BreakerOpen: the route's circuit breaker kept the request off the
	// primary; the fallback answered.
	BreakerOpen
	// Rejected: refused before reaching a backend (bad request, no route).
	Rejected
	// Error: no backend answered usefully (the gateway wrote an error, or
	// the origin aborted a response it had started).
	Error
	// ClientClosed: the client went away (closed its connection or reset
	// its HTTP/2 stream) before the answer was complete, nginx's 499. It
	// says nothing about the backend: it never counts against a route's
	// breaker or auto-rollback window, and the request is not sent to the
	// fallback. Status is StatusClientClosed when nothing had been sent,
	// else the status already sent.
	ClientClosed

	// NumOutcomes is the number of outcomes, for arrays indexed by one.
	NumOutcomes = iota
)

// StatusClientClosed is the status recorded (metrics, access log) for a
// request whose client went away before any answer was sent: nginx's 499
// "Client Closed Request". Nothing is sent to the client.
const StatusClientClosed = 499

var outcomeNames = [NumOutcomes]string{"served", "fallback", "throttled", "breaker_open", "rejected", "error", "client_closed"}

// String returns the outcome's name: "served", "fallback", "throttled",
// "breaker_open", "rejected", "error" or "client_closed"; "error" for a
// value out of range.
func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return "error"
}
