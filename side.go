package turnout

// Side says which of a route's two targets served a request when the route
// splits its traffic (a canary on the route): the Baseline (the route's
// own target, the one the canary is judged against) or the Canary. Its
// String form is the side label of turnout_canary_requests_total, the side
// of the access log and of an Observation, and the "; canary" of the
// served-by header. A route without a canary serves every request from its
// baseline.
type Side uint8

const (
	// Baseline: the route's own target (origin or function).
	Baseline Side = iota
	// Canary: the route's canary target, which serves a weighted, sticky
	// share of the route's requests.
	Canary
)

// String returns "baseline" or "canary".
func (s Side) String() string {
	if s == Canary {
		return "canary"
	}
	return "baseline"
}
