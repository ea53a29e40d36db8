package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/route"
	"github.com/turnout/turnout/internal/shadow"
)

// The shadow endpoint, `turnout shadow` and the dashboard's Shadow page
// (docs/shadow.md):
//
//	GET /api/v1/shadow               each shadowed route's report (viewer)
//	    ?route=MATCH                 only that route's (after route.Canonical)
//	    ?since=DURATION              the span counted: a Go duration, default
//	                                 1h, at most 24h (shadow.Minutes)
//
// The report is this node's: the requests it mirrored and compared.

// DefaultShadowSince is the span GET /api/v1/shadow counts without since.
const DefaultShadowSince = time.Hour

// MaxShadowSince is the longest span the report keeps.
const MaxShadowSince = shadow.Minutes * time.Minute

// Shadows is the answer to GET /api/v1/shadow.
type Shadows struct {
	// Routes are the routes with a shadow that this node has mirrored
	// requests of, in route order.
	Routes []shadow.Summary `json:"routes"`
}

func (s *Server) shadowRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/shadow", s.guard(endpoint{action: "shadow", role: RoleViewer, read: s.shadows}))
}

// ParseShadowSince reads a since parameter: empty is DefaultShadowSince; a
// Go duration above 0 and at most MaxShadowSince otherwise.
func ParseShadowSince(v string) (time.Duration, error) {
	if v == "" {
		return DefaultShadowSince, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 || d > MaxShadowSince {
		return 0, badRequest("since %q: want a duration above 0 and at most %s, e.g. 15m or 1h", v, "24h")
	}
	return d, nil
}

func (s *Server) shadows(r *http.Request) (any, error) {
	q := r.URL.Query()
	since, err := ParseShadowSince(q.Get("since"))
	if err != nil {
		return nil, err
	}
	want, filter := q.Get("route"), q.Has("route")
	if filter && strings.TrimSpace(want) == "" {
		return nil, badRequest("query parameter route is empty: give a route's match, e.g. route=GET /user/{id}")
	}
	out := Shadows{Routes: []shadow.Summary{}}
	if s.opts.Shadow == nil {
		return out, nil
	}
	want = route.Canonical(want)
	for _, sum := range s.opts.Shadow("", since) {
		if !filter || route.Canonical(sum.Route) == want {
			out.Routes = append(out.Routes, sum)
		}
	}
	return out, nil
}
