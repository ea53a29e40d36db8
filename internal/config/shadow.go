package config

// Shadow mirrors a sampled share of a route's requests to a second target
// and compares its answers with the primary's, which alone answer the
// client (docs/shadow.md). The mirror is asynchronous and bounded: the
// client's answer and latency do not depend on it.
type Shadow struct {
	// To names the shadow target: a declared function or origin, other
	// than the route's own target. "function:NAME" or "origin:NAME" says
	// which when a function and an origin share the name. Parse resolves
	// it into Function or Origin.
	To       string `yaml:"to" json:"to"`
	Function string `yaml:"-" json:"function,omitempty"`
	Origin   string `yaml:"-" json:"origin,omitempty"`
	// Sample is the percent of the route's requests (of the methods
	// mirrored) copied to the shadow, 0–100 to 0.01: `sample: 10%` or
	// `sample: 10`. Default 100.
	Sample float64 `yaml:"sample" json:"sample"`
	// Methods are the methods mirrored. Default [GET, HEAD]; a method that
	// is not idempotent (POST, PATCH, ...) is mirrored only when listed.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Ignore are JSON paths whose differences are not counted:
	// "$.generatedAt", "$.items[*].etag".
	Ignore []string `yaml:"ignore" json:"ignore,omitempty"`
	// Headers are the response headers compared. Default: Content-Type,
	// and every header both answers set, except Date, Server, the value of
	// Set-Cookie, and request ids (X-Request-Id, X-Amzn-RequestId,
	// X-Amz-Apigw-Id, X-Amzn-Trace-Id, Apigw-Requestid).
	Headers []string `yaml:"headers" json:"headers,omitempty"`
	// Marker is the header every shadow request carries, with value "1",
	// so that a target can skip side effects. Default X-Turnout-Shadow.
	Marker string `yaml:"marker" json:"marker,omitempty"`
	// Timeout bounds one shadow request. Default 10s.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// MaxBodyBytes is the largest request or response body mirrored and
	// compared; a request with a larger body is not mirrored, an answer
	// larger is compared by its status, headers and a hash. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	// Concurrency is the most shadow requests of the route in flight, and
	// Queue the most waiting; a mirrored request past both is dropped and
	// counted. Defaults 8 and 64.
	Concurrency int `yaml:"concurrency" json:"concurrency,omitempty"`
	Queue       int `yaml:"queue" json:"queue,omitempty"`
	// Noise is the percent of mirrored idempotent requests also sent a
	// second time to the primary, to learn which JSON paths differ
	// between two answers of the primary itself (noise). Default 10.
	Noise float64 `yaml:"noise" json:"noise"`
	// Redact are further header names and JSON paths whose values the
	// report's examples replace with "[redacted]". Authorization, Cookie,
	// Set-Cookie, Proxy-Authorization and X-Api-Key always are.
	Redact []string `yaml:"redact" json:"redact,omitempty"`
}

// Target names the shadow's target as a route's is named: turnout's
// "function:NAME" for a function, the origin's name otherwise.
func (s Shadow) Target() string {
	return Route{Function: s.Function, Origin: s.Origin}.OnTarget()
}

// ShadowGate is a rollout plan's condition for its first canary step:
// the route's shadow comparison must have compared MinCompared requests
// at a match rate of at least MinMatchRate.
type ShadowGate struct {
	MinCompared int `yaml:"min_compared" json:"min_compared"`
	// MinMatchRate is a percent, 0–100: `min_match_rate: 99.5%`.
	MinMatchRate float64 `yaml:"min_match_rate" json:"min_match_rate"`
}
