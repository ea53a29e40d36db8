package shadow

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/shadow/diff"
)

// Bounds of what a Report keeps per route: its memory does not grow with
// its traffic.
const (
	// Minutes is how far back the per-minute counts reach (--since).
	Minutes = 24 * 60
	// MaxPaths is how many differing (and noisy) paths are counted apart;
	// the rest count under OtherPath.
	MaxPaths = 200
	// MaxPathExamples is how many request ids a path keeps as examples.
	MaxPathExamples = 3
	// MaxExamples is how many compared requests are kept whole, both
	// answers side by side, the latest first.
	MaxExamples = 20
	// MaxExampleBody bounds each body an example keeps.
	MaxExampleBody = 16 << 10
	// OtherPath counts the paths past MaxPaths.
	OtherPath = "(other paths)"
)

// Report keeps what each route's shadow comparisons found: counts by
// minute, the paths that differ and those learned as noise, and a few whole
// examples, redacted. It is the gateway's ShadowSink; its methods are safe
// for concurrent use.
type Report struct {
	// Requests, when set, counts results by route and result
	// (turnout_shadow_requests_total).
	Requests *prometheus.CounterVec
	// Now is the clock. Default time.Now.
	Now func() time.Time

	mu     sync.Mutex
	routes map[string]*routeReport // by route pattern
}

type routeReport struct {
	route, target string
	since         time.Time
	rules         *diff.Rules
	rulesKey      string
	noise         diff.Noise            // where two answers of the primary differed
	paths         map[string]*PathCount // generalised path → times the shadow differed there (noise excluded)
	minutes       [Minutes]minute
	examples      []Example // latest first, at most MaxExamples
}

// minute is one minute's results.
type minute struct {
	at                                           int64 // Unix minute
	match, diff, noiseOnly, shadowError, dropped int64
}

func (m *minute) add(o *minute) {
	m.match += o.match
	m.diff += o.diff
	m.noiseOnly += o.noiseOnly
	m.shadowError += o.shadowError
	m.dropped += o.dropped
}

// PathCount is a JSON path (indexes as [*]), or "status", "header:NAME",
// "body", with how often it differed and a few request ids where it did.
type PathCount struct {
	Path     string   `json:"path"`
	Kind     string   `json:"kind"` // the kind of its first difference: changed, missing, added, type
	Count    int64    `json:"count"`
	Examples []string `json:"examples"`
}

// Example is one compared request kept whole, redacted: the request and
// both answers side by side.
type Example struct {
	RequestID   string            `json:"request_id"`
	Time        time.Time         `json:"time"`
	Result      string            `json:"result"`
	Method      string            `json:"method"`
	Path        string            `json:"path"`
	Query       string            `json:"query,omitempty"`
	Header      map[string]string `json:"header"`
	Primary     AnswerView        `json:"primary"`
	Shadow      *AnswerView       `json:"shadow,omitempty"` // nil with Error
	Error       string            `json:"error,omitempty"`
	Differences []diff.Difference `json:"differences,omitempty"`
	Noise       []string          `json:"noise,omitempty"` // paths of the differences that are noise
}

// AnswerView is an answer as an example shows it.
type AnswerView struct {
	Status    int               `json:"status"`
	Header    map[string]string `json:"header"`
	Body      string            `json:"body"`
	Truncated bool              `json:"truncated,omitempty"`
}

func (r *Report) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// routeLocked returns the report of route to target, starting one when
// the route is new or its shadow's target changed. r.mu is held.
func (r *Report) routeLocked(route, target string) *routeReport {
	if r.routes == nil {
		r.routes = map[string]*routeReport{}
	}
	rr := r.routes[route]
	if rr == nil || rr.target != target {
		rr = &routeReport{route: route, target: target, since: r.now(), paths: map[string]*PathCount{}}
		r.routes[route] = rr
	}
	return rr
}

// minuteLocked returns the counts of the current minute.
func (rr *routeReport) minuteLocked(now time.Time) *minute {
	at := now.Unix() / 60
	m := &rr.minutes[at%Minutes]
	if m.at != at {
		*m = minute{at: at}
	}
	return m
}

// rulesLocked returns the route's comparison rules for settings s,
// compiled again when they change.
func (rr *routeReport) rulesLocked(s *config.Shadow) *diff.Rules {
	key := strings.Join(s.Ignore, "\x00") + "\x01" + strings.Join(s.Headers, "\x00") + "\x01" + strings.Join(s.Redact, "\x00")
	if rr.rules == nil || rr.rulesKey != key {
		rules, err := diff.Compile(s.Ignore, s.Headers)
		if err == nil {
			// The redacted values stay out of the differences' values too.
			rules, err = rules.WithRedact(s.Redact)
		}
		if err != nil { // Parse validated them; never reached
			rules, _ = diff.Compile(nil, nil)
		}
		rr.rules, rr.rulesKey = rules, key
	}
	return rr.rules
}

// Dropped counts a copy of route's request its full queue dropped.
func (r *Report) Dropped(route, target string) {
	r.mu.Lock()
	rr := r.routeLocked(route, target)
	rr.minuteLocked(r.now()).dropped++
	r.mu.Unlock()
	r.count(route, ResultDropped)
}

func (r *Report) count(route, result string) {
	if r.Requests != nil {
		r.Requests.WithLabelValues(route, result).Inc()
	}
}

// Mirrored compares one mirrored request's answers and records the result:
// the primary's second answer, when probed, teaches the route's noise
// first, then the shadow's differences at noise places are noise, the
// rest count against it. The comparisons run outside the lock.
func (r *Report) Mirrored(m *Mirrored) {
	r.mu.Lock()
	rr := r.routeLocked(m.Route, m.Target)
	rules, noise := rr.rulesLocked(m.Settings), &rr.noise
	r.mu.Unlock()

	var res diff.Result
	if m.Shadow != nil {
		if m.Probe != nil {
			noise.Learn(rules.Compare(&m.Primary, m.Probe))
		}
		res = rules.CompareNoise(&m.Primary, m.Shadow, noise)
	}
	result := ResultMatch
	switch {
	case m.Shadow == nil:
		result = ResultShadowError
	case len(res.Differences) > 0:
		result = ResultDiff
	case len(res.Noise) > 0:
		result = ResultNoiseOnly
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	rr = r.routeLocked(m.Route, m.Target)
	for _, d := range res.Differences {
		addPath(rr.paths, diff.Generalize(d.Path), d.Kind, m.RequestID)
	}
	mn := rr.minuteLocked(r.now())
	switch result {
	case ResultMatch:
		mn.match++
	case ResultDiff:
		mn.diff++
	case ResultNoiseOnly:
		mn.noiseOnly++
	case ResultShadowError:
		mn.shadowError++
	}
	r.count(m.Route, result)
	if result != ResultMatch || len(rr.examples) < MaxExamples {
		rr.examples = slices.Insert(rr.examples, 0, example(m, result, res))
		if len(rr.examples) > MaxExamples {
			rr.examples = rr.examples[:MaxExamples]
		}
	}
}

// addPath counts a difference at generalised path p.
func addPath(paths map[string]*PathCount, p, kind, id string) {
	pc := paths[p]
	if pc == nil {
		if len(paths) >= MaxPaths {
			p = OtherPath
			if pc = paths[p]; pc == nil {
				pc = &PathCount{Path: p, Kind: kind}
				paths[p] = pc
			}
		} else {
			pc = &PathCount{Path: p, Kind: kind}
			paths[p] = pc
		}
	}
	pc.Count++
	if len(pc.Examples) < MaxPathExamples && !slices.Contains(pc.Examples, id) {
		pc.Examples = append(pc.Examples, id)
	}
}

// example keeps m whole, redacted: the request's and both answers' headers
// (Authorization, Cookie, Set-Cookie, … and the settings' redact names)
// and the bodies' values at the settings' redacted JSON paths.
func example(m *Mirrored, result string, res diff.Result) Example {
	names, paths := diff.SplitRedact(m.Settings.Redact)
	view := func(a *diff.Answer) AnswerView {
		v := AnswerView{Status: a.Status, Header: flat(diff.RedactHeader(a.Header, names)), Truncated: a.Truncated || len(a.Body) > MaxExampleBody}
		switch {
		case len(paths) > 0 && (a.Truncated || !json.Valid(a.Body)):
			// RedactJSON can only redact what parses: show nothing.
			v.Body = "[not shown: the route redacts JSON paths and this body is not whole JSON]"
		default:
			body := diff.RedactJSON(a.Body, paths)
			v.Body = string(body[:min(len(body), MaxExampleBody)])
		}
		return v
	}
	var noise []string
	for _, d := range res.Noise {
		noise = append(noise, d.Path)
	}
	e := Example{RequestID: m.RequestID, Time: m.Time, Result: result, Method: m.Method, Path: m.Path, Query: m.RawQuery,
		Header: flat(diff.RedactHeader(m.Header, names)), Primary: view(&m.Primary), Differences: slices.Clone(res.Differences[:min(len(res.Differences), 20)]), Noise: noise}
	if m.Shadow != nil {
		s := view(m.Shadow)
		e.Shadow = &s
	}
	if m.Err != nil {
		e.Error = m.Err.Error()
	}
	return e
}

// flat joins a header's values, for a compact example.
func flat(h map[string][]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = strings.Join(v, ", ")
	}
	return out
}

// Summary is one route's report over a span of time.
type Summary struct {
	Route  string    `json:"route"`
	Target string    `json:"target"`
	Since  time.Time `json:"since"` // when the counts start: the span asked for, or the shadow's start
	// Compared counts requests both sides answered; MatchRate is the
	// percent of them that matched, noise aside ((match + noise_only) /
	// compared × 100), 0 with none compared.
	Compared    int64   `json:"compared"`
	Match       int64   `json:"match"`
	Diff        int64   `json:"diff"`
	NoiseOnly   int64   `json:"noise_only"`
	ShadowError int64   `json:"shadow_error"`
	Dropped     int64   `json:"dropped"`
	MatchRate   float64 `json:"match_rate"`
	// Timeline is the match rate minute by minute, oldest first; minutes
	// with nothing compared are left out.
	Timeline []Point `json:"timeline"`
	// Paths are where the shadow differed, most often first; Noise are
	// where the primary differed from itself (candidates for ignore
	// rules). Both since the shadow started.
	Paths []PathCount `json:"paths"`
	Noise []PathCount `json:"noise"`
	// Examples are the latest compared requests kept whole, differing ones
	// first to be kept.
	Examples []Example `json:"examples"`
}

// Point is one minute of a route's comparisons.
type Point struct {
	Time      time.Time `json:"time"`
	Compared  int64     `json:"compared"`
	MatchRate float64   `json:"match_rate"`
}

// Summaries returns the report of each route with a shadow (or only of
// route, when not ""), over the last since (at most Minutes minutes; 0: all
// that is kept), routes in order.
func (r *Report) Summaries(route string, since time.Duration) []Summary {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []Summary{}
	for _, rr := range r.routes {
		if route != "" && rr.route != route {
			continue
		}
		out = append(out, rr.summary(now, since))
	}
	slices.SortFunc(out, func(a, b Summary) int { return cmp.Compare(a.Route, b.Route) })
	return out
}

func (rr *routeReport) summary(now time.Time, since time.Duration) Summary {
	s := Summary{Route: rr.route, Target: rr.target, Since: rr.since}
	if since <= 0 || since > Minutes*time.Minute {
		since = Minutes * time.Minute
	}
	if from := now.Add(-since); from.After(s.Since) {
		s.Since = from
	}
	first, last := s.Since.Unix()/60, now.Unix()/60
	var total minute
	for at := first; at <= last; at++ {
		m := &rr.minutes[at%Minutes]
		if m.at != at {
			continue
		}
		total.add(m)
		if c := m.match + m.diff + m.noiseOnly; c > 0 {
			s.Timeline = append(s.Timeline, Point{Time: time.Unix(at*60, 0).UTC(), Compared: c, MatchRate: rate(m.match+m.noiseOnly, c)})
		}
	}
	s.Match, s.Diff, s.NoiseOnly, s.ShadowError, s.Dropped = total.match, total.diff, total.noiseOnly, total.shadowError, total.dropped
	s.Compared = total.match + total.diff + total.noiseOnly
	s.MatchRate = rate(total.match+total.noiseOnly, s.Compared)
	s.Paths = ranked(rr.paths)
	places, _ := rr.noise.Places()
	s.Noise = make([]PathCount, 0, len(places))
	for _, p := range places {
		s.Noise = append(s.Noise, PathCount{Path: p.Path, Kind: diff.KindChanged, Count: int64(p.Count)})
	}
	s.Examples = slices.Clone(rr.examples)
	return s
}

func rate(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// ranked returns the paths most often first.
func ranked(m map[string]*PathCount) []PathCount {
	out := make([]PathCount, 0, len(m))
	for _, p := range m {
		c := *p
		c.Examples = slices.Clone(p.Examples)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b PathCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Path, b.Path))
	})
	return out
}

// Gate reports route's comparisons since its shadow started, for a rollout
// plan's shadow gate: how many were compared and the match rate (percent).
func (r *Report) Gate(route string) (compared int64, matchRate float64) {
	s := r.Summaries(route, 0)
	if len(s) == 0 {
		return 0, 0
	}
	return s[0].Compared, s[0].MatchRate
}
