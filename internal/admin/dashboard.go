package admin

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/turnout/turnout/internal/dashboard"
	"github.com/turnout/turnout/internal/traffic"
)

// TrafficReporter is the traffic table as the admin API reads it.
type TrafficReporter interface {
	Report(q traffic.Query) traffic.Report
}

// dashboardRoutes adds the dashboard and the data only it reads:
//
//	GET /                 redirect to /ui/
//	GET /ui/...           the embedded UI (static files, no token needed)
//	GET /api/v1/live      per-second series per route and target (viewer)
//	    ?since=UNIX       only the seconds after it
//	GET /api/v1/traffic   path templates by calls, unused, risky (viewer)
//	    ?sort=calls|errors|p99|last_seen|template &limit=N
//	    &unused_for=DURATION &risky=1
func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	toUI := http.RedirectHandler("/ui/", http.StatusFound)
	mux.Handle("GET /{$}", toUI)
	mux.Handle("GET /ui", toUI)
	mux.Handle("GET /ui/", dashboard.Handler("/ui/"))
	mux.Handle("GET /api/v1/live", s.guard(endpoint{action: "live", role: RoleViewer, read: s.live}))
	mux.Handle("GET /api/v1/traffic", s.guard(endpoint{action: "traffic", role: RoleViewer, read: s.traffic}))
}

func (s *Server) live(r *http.Request) (any, error) {
	since, err := queryUint(r, "since")
	if err != nil {
		return nil, err
	}
	if since > 1<<40 {
		return nil, badRequest("query parameter since=%d: want Unix seconds", since)
	}
	if s.opts.Live == nil {
		return dashboard.NewLive(1).Points(int64(since)), nil
	}
	return s.opts.Live.Points(int64(since)), nil
}

// parseTrafficQuery reads the traffic report's query parameters.
func parseTrafficQuery(v url.Values) (traffic.Query, error) {
	q := traffic.Query{Sort: v.Get("sort"), Now: time.Now()}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return q, badRequest("query parameter limit=%q: want a non-negative integer (0: all rows)", l)
		}
		q.Limit = n
	}
	if u := v.Get("unused_for"); u != "" {
		d, err := time.ParseDuration(u)
		if err != nil || d < 0 {
			return q, badRequest("query parameter unused_for=%q: want a duration such as 30m, 24h or 720h", u)
		}
		q.UnusedFor = d
	}
	switch v.Get("risky") {
	case "", "0", "false":
	case "1", "true":
		q.Risky = true
	default:
		return q, badRequest("query parameter risky=%q: want 1 or 0", v.Get("risky"))
	}
	if err := q.Validate(); err != nil {
		return q, badRequest("%v", err)
	}
	return q, nil
}

func (s *Server) traffic(r *http.Request) (any, error) {
	q, err := parseTrafficQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	if s.opts.Traffic == nil {
		return traffic.NewTable(traffic.Options{}).Report(q), nil
	}
	return s.opts.Traffic.Report(q), nil
}

// Live returns the per-second series after since (Unix seconds; 0: the
// whole window).
func (c *Client) Live(ctx context.Context, since int64) (dashboard.Points, error) {
	var p dashboard.Points
	err := c.do(ctx, http.MethodGet, "/api/v1/live", url.Values{"since": {strconv.FormatInt(since, 10)}}, nil, &p)
	return p, err
}

// Traffic returns the traffic report for q (Now is the server's).
func (c *Client) Traffic(ctx context.Context, q traffic.Query) (traffic.Report, error) {
	v := url.Values{}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.UnusedFor > 0 {
		v.Set("unused_for", q.UnusedFor.String())
	}
	if q.Risky {
		v.Set("risky", "1")
	}
	var rep traffic.Report
	err := c.do(ctx, http.MethodGet, "/api/v1/traffic", v, nil, &rep)
	return rep, err
}
