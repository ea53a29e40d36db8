package turnout

// A reason says why a request was not served by its route's primary, or
// was refused: the reason label of turnout_requests_rejected_total and
// turnout_fallbacks_total, the Reason of an Observation and of the access
// log, and "reason=" in the served-by header. Reasons are plain strings
// because the set is open: a function invocation that could not run has
// invoke.ErrorKind's name ("request_too_large", "init_failed", ...), and an
// origin failure OriginReason's.
const (
	// Refused before routing (Outcome Rejected), by the request policy.
	ReasonNoDeployment     = "no_deployment"     // nothing is deployed yet
	ReasonNoRoute          = "no_route"          // no route matches
	ReasonBadPath          = "bad_path"          // the path does not normalise
	ReasonUnderscoreHeader = "underscore_header" // a header name with '_'
	ReasonAbsoluteForm     = "absolute_form"     // a target naming a host no route serves
	ReasonConnect          = "connect"           // the CONNECT method

	// Refused by the route's authorizer (Outcome Rejected).
	ReasonUnauthorized = "unauthorized" // no token, or one that does not verify: 401
	ReasonForbidden    = "forbidden"    // a valid token without the route's scopes, or a Lambda authorizer's no: 403
	// A Lambda authorizer crashed, timed out or answered nonsense: 500,
	// never let through.
	ReasonAuthorizerError = "authorizer_error"

	// Refused for the route's API key (api_key_required), after its
	// authorizer: no x-api-key, an unknown or a disabled key (403), or a
	// key over its own rate limit (429, outcome Throttled).
	ReasonAPIKey          = "api_key"
	ReasonAPIKeyThrottled = "api_key_throttled"

	// A CORS preflight turnout answered itself, for the route the method
	// it asks for matches (docs/cors.md): outcome served (204) when the
	// route's policy allows it, rejected (403) when not.
	ReasonCORSPreflight = "cors_preflight"

	// Why the primary did not answer.
	ReasonRateLimited       = "rate_limited"       // over the route's rate limit
	ReasonThrottled         = "throttled"          // the function is at its concurrency limit
	ReasonBadRequest        = "bad_request"        // the request could not be read or turned into an event
	ReasonTooLarge          = "too_large"          // the body is over the function's payload limit
	ReasonTimeout           = "timeout"            // the function did not answer in time
	ReasonFunctionError     = "function_error"     // the function reported an error
	ReasonMalformedResponse = "malformed_response" // the function's answer is not a proxy response
	ReasonStatus            = "status"             // the primary answered a fallback_on_status status
	ReasonBreakerOpen       = "breaker_open"       // the route's breaker kept the request off the primary
	ReasonClientClosed      = "client_closed"      // the client went away first
	ReasonOriginAborted     = "origin_aborted"     // the origin failed after its response had started
)

// OriginReason is the reason of an origin failure of kind (origin.Kind's
// name: "connect", "timeout", "protocol", ...): "origin_KIND".
func OriginReason(kind string) string { return "origin_" + kind }
