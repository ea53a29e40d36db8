// Package awsimport reads a team's existing AWS routing setup — a CloudFront
// distribution (the API's JSON or a CloudFormation resource), an API
// Gateway export, a SAM template or a serverless.yml — into a Setup (the
// origins, functions and routes turnout can carry over, with findings), and
// writes a Setup as a turnout config a person reads. Nothing is dropped
// silently: every feature not carried over is a Finding at its source
// location, every template placeholder is listed until a value is given,
// and every request shape turnout would route differently is listed by
// Shapes, which compares the source's own router with turnout's real route
// table.
//
// The routing semantics and the decisions taken are in docs/import.md.
package awsimport

import (
	"fmt"
	"strings"
)

// Level is how much a Finding matters.
type Level int

const (
	// Info is something ignored without effect on routing.
	Info Level = iota
	// Warn is a feature not imported, or a request shape routed differently.
	Warn
	// MustWarn would open or break access; import refuses without
	// --accept-risk.
	MustWarn
)

func (l Level) String() string {
	switch l {
	case MustWarn:
		return "MUST-WARN"
	case Warn:
		return "WARN"
	}
	return "INFO"
}

// Loc is where something is in a source file: its line (when the parser
// knows it) and its JSON pointer (RFC 6901).
type Loc struct {
	File    string
	Line    int
	Pointer string
}

func (l Loc) String() string {
	var b strings.Builder
	b.WriteString(l.File)
	if l.Line > 0 {
		fmt.Fprintf(&b, ":%d", l.Line)
	}
	if l.Pointer != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "(%s)", l.Pointer)
	}
	return b.String()
}

// Finding is one thing the import could not carry over exactly.
type Finding struct {
	Level Level
	Loc   Loc
	Msg   string
}

func (f Finding) String() string { return fmt.Sprintf("%s: %s: %s", f.Loc, f.Level, f.Msg) }

// Placeholder is a value the source leaves to deployment time (a template
// parameter, a resource attribute, a ${var}): never guessed, filled by
// --set NAME=VALUE, or by its Default with --use-defaults.
type Placeholder struct {
	Name string
	Loc  Loc
	// Default is the template's default, when it declares one.
	Default    string
	HasDefault bool
}

// Origin is an HTTP service the setup sends requests to.
type Origin struct {
	// Name is a valid turnout origin name, unique in the Setup.
	Name string
	// URL is the scheme, host, port and path prefix requests are sent to.
	URL string
	// HostHeader is "origin" or "client" (config.Origin.HostHeader).
	HostHeader string
	// Dial and ResponseHeader are the source's timeouts, 0 when it sets none.
	Dial, ResponseHeader int // seconds
	// From names where it came from, for the comment above it.
	From string
	Loc  Loc
}

// Function is a function the setup invokes: on AWS Lambda, by ARN or
// name, or hosted by turnout (Handler).
type Function struct {
	// Name is a valid turnout function name, unique in the Setup.
	Name string
	// ARN is the function's ARN (with its qualifier if the source has one)
	// or name; Region its region.
	ARN, Region string
	// Handler is the executable turnout runs, for a hosted function, with
	// its environment, timeout (seconds) and memory (MB), 0 for defaults.
	Handler  string
	Env      map[string]string
	Timeout  int
	MemoryMB int
	From     string
	Loc      Loc
}

// Route is one source route, in source precedence order. It may need
// several turnout patterns (a method list, or "/api" and "/api/").
type Route struct {
	// Patterns are the turnout patterns written for it, each a route entry.
	Patterns []string
	// Origin or Function is its target; Fallback, FallbackOn its failover.
	Origin   string
	Function string
	// Payload is the API Gateway event format of a function route.
	Payload string
	// TimeoutMS is the source's timeout for the route, 0 when it sets none.
	TimeoutMS  int
	Fallback   string
	FallbackOn []int
	// From names where it came from, for the comment above it.
	From string
	// Note says how the patterns differ from the source's, if they do.
	Note string
	Loc  Loc
}

// Setup is what an import read: the turnout origins and routes it carries
// over, the findings, and the source's own router for comparing.
type Setup struct {
	// File is the source file, Kind what it holds.
	File, Kind string
	Origins    []Origin
	// Legacy is the origin a switched-off route goes to (config.Legacy):
	// the source's catch-all origin, when it has one.
	Legacy    string
	Functions []Function
	Routes    []Route
	Findings  []Finding
	// Placeholders left without a value; import refuses while any is.
	Placeholders []Placeholder
	// Defaults are the placeholders filled with their template default
	// (--use-defaults); the output says so.
	Defaults []Placeholder
	// Source routes a request as the source setup does.
	Source Router
	// srcMatchers are the source's patterns as automata, one per rule of
	// Source, for Shapes.
	srcMatchers []matcher
}

// Decision is where a setup sends one request.
type Decision struct {
	// Target is "origin:NAME" or "function:NAME" with turnout's names, or
	// "" when the setup answers itself with Status (403, 404).
	Target string
	Status int
	// By names the source rule or turnout route that decided.
	By string
	// Rule is the index of the deciding rule (a source route or a turnout
	// route), -1 for none.
	Rule int
	// Loc is where the source says so, when no rule decided (an API
	// Gateway resource without the method).
	Loc Loc
}

func (d Decision) String() string {
	if d.Target == "" {
		return fmt.Sprintf("%d (%s)", d.Status, d.By)
	}
	return fmt.Sprintf("%s (%s)", d.Target, d.By)
}

// Same reports whether two decisions send a request to the same place.
func (d Decision) Same(e Decision) bool {
	return d.Target == e.Target && (d.Target != "" || d.Status == e.Status)
}

// Router routes a request (method and normalised path; query strings never
// take part) as a setup does.
type Router interface {
	Route(method, path string) Decision
}

// MustWarns returns the findings at MustWarn.
func (s *Setup) MustWarns() []Finding {
	var out []Finding
	for _, f := range s.Findings {
		if f.Level == MustWarn {
			out = append(out, f)
		}
	}
	return out
}

func (s *Setup) add(l Level, loc Loc, format string, args ...any) {
	s.Findings = append(s.Findings, Finding{Level: l, Loc: loc, Msg: fmt.Sprintf(format, args...)})
}
