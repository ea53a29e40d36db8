// Package traffic counts requests by route and by a template inferred from
// each raw path (/user/42/orders → /user/{id}/orders), with the figures a
// team needs to pick what to migrate next and to spot function-readiness
// risks. The live gateway and `turnout analyze` both feed it Observations.
package traffic

import "time"

// Observation is one request, as the gateway served it or as an access log
// line recorded it. Fields an access-log format does not carry are zero.
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
	// "origin:NAME", "function:NAME", or a log's upstream address.
	Route  string
	Target string
	// Outcome says how the request was answered: "served" (by the route's
	// primary), "fallback", "throttled", "breaker_open", "rejected" (refused
	// before routing), "error" (no backend answered), "client_closed" (the
	// client went away first; Status 499): turnout.Outcome's names. Reason
	// is the fallback's or error's reason ("timeout", "function_error", ...).
	Outcome string
	Reason  string
	Status  int
	// Bytes is the response body size; RequestBytes the request body size
	// (-1 when unknown).
	Bytes        int64
	RequestBytes int64
	Duration     time.Duration
	// BinaryBody reports a request body that is not valid UTF-8 (or, when
	// the body is streamed unread, declares a non-text Content-Type).
	BinaryBody bool
}
