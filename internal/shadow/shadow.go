// Package shadow compares a route's shadow answers with its primary's: the
// gateway mirrors sampled requests (internal/gateway, shadow.go) and hands
// each one's answers here, where they are compared (internal/shadow/diff),
// noise is learned from pairs of the primary's own answers, and a bounded
// report per route is kept for `turnout shadow`, the admin API, the
// dashboard and turnout_shadow_requests_total.
package shadow

import (
	"net/http"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/shadow/diff"
)

// Mirrored is one mirrored request and the answers it got: the primary's
// (the one the client got), the shadow's, and, when the request was probed
// for noise, the primary's second answer to the same request.
type Mirrored struct {
	// Route is the route's canonical pattern; Target the shadow's target
	// name ("function:NAME" or "origin:NAME").
	Route, Target string
	// Settings are the route's shadow settings, defaults filled in.
	Settings *config.Shadow
	// The request, as the client sent it (the report redacts it).
	Time      time.Time
	RequestID string
	Method    string
	Path      string
	RawQuery  string
	Header    http.Header
	Body      []byte

	Primary diff.Answer
	// Shadow is the shadow's answer; nil when it gave none, with Err
	// saying why (a timeout, a refused connection, a function error).
	Shadow *diff.Answer
	Err    error
	// Took is how long the shadow took.
	Took time.Duration
	// Probe is the primary's second answer, when probed for noise; nil
	// otherwise (or when the probe failed).
	Probe *diff.Answer
}

// The results of a mirrored request (turnout_shadow_requests_total's
// result label).
const (
	ResultMatch       = "match"        // the answers are the same (ignore rules applied)
	ResultDiff        = "diff"         // they differ somewhere that is not noise
	ResultNoiseOnly   = "noise_only"   // they differ only where the primary differs from itself
	ResultShadowError = "shadow_error" // the shadow gave no answer
	ResultDropped     = "dropped"      // the route's shadow queue was full: not sent
)
