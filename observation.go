package turnout

import "time"

// Observation is one request, as the gateway served it or as an access log
// line recorded it: the gateway makes one per answer, the readers of other
// products' access logs (internal/foreignlog) one per line, and traffic
// analysis (internal/traffic, the dashboard's live series) reads them.
// Fields an access-log format does not carry are zero.
type Observation struct {
	Time   time.Time
	Method string
	Host   string
	// Path is the raw request path as received, still escaped, without
	// the query. RawQuery is what followed '?', without it.
	Path     string
	RawQuery string
	// Route is the pattern of the route that matched ("" when none did or
	// the source is a log from before turnout). Target is what served it:
	// "origin:NAME", "function:NAME" (OriginTarget, FunctionTarget), or a
	// log's upstream address.
	Route  string
	Target string
	// Outcome says how the request was answered: Served (by the route's
	// primary), Fallback, Throttled, BreakerOpen, Rejected (refused before
	// routing), Error (no backend answered), ClientClosed (the client went
	// away first; Status 499). Reason is the fallback's or error's reason
	// ("timeout", "function_error", ...).
	Outcome Outcome
	Reason  string
	// Side is the route's side that had the request, on a route with a
	// canary (Target is then the canary's, or the fallback's when it
	// answered); Baseline everywhere else.
	Side   Side
	Status int
	// Bytes is the response body size; RequestBytes the request body size
	// (-1 when unknown).
	Bytes        int64
	RequestBytes int64
	Duration     time.Duration
	// BinaryBody reports a request body that is not valid UTF-8 (or, when
	// the body is streamed unread, declares a non-text Content-Type).
	BinaryBody bool
}
