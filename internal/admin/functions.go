package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/turnout/turnout/internal/fnhost"
)

// Functions is the hosted-function pool as the admin API reads it.
type Functions interface {
	Stats() []fnhost.FunctionStats
	Logs(function, requestID string) ([]fnhost.LogLine, error)
	Follow(ctx context.Context, function string) (<-chan fnhost.LogLine, error)
}

// functionRoutes adds the function endpoints (viewer role):
//
//	GET /api/v1/functions                       instances, concurrency, counters
//	GET /api/v1/functions/{name}/logs           NDJSON log lines from the ring;
//	    ?request_id=ID  only that invocation's lines
//	    ?follow=1       keep the response open and stream new lines
func (s *Server) functionRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/functions", s.guard(endpoint{action: "functions", role: RoleViewer, read: func(r *http.Request) (any, error) {
		if s.opts.Functions == nil {
			return []fnhost.FunctionStats{}, nil
		}
		return s.opts.Functions.Stats(), nil
	}}))
	mux.Handle("GET /api/v1/functions/{name}/logs", s.guard(endpoint{action: "functions.logs", role: RoleViewer, stream: s.functionLogs}))
}

func (s *Server) functionLogs(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Functions == nil {
		return &requestError{status: http.StatusNotFound, msg: "this node hosts no functions"}
	}
	name, id := r.PathValue("name"), r.URL.Query().Get("request_id")
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true"
	var live <-chan fnhost.LogLine
	if follow { // subscribe before reading the ring, so no line falls between
		ch, err := s.opts.Functions.Follow(r.Context(), name)
		if err != nil {
			return &requestError{status: http.StatusNotFound, msg: err.Error()}
		}
		live = ch
	}
	lines, err := s.opts.Functions.Logs(name, id)
	if err != nil {
		return &requestError{status: http.StatusNotFound, msg: err.Error()}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return nil
		}
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	if live == nil {
		return nil
	}
	for l := range live {
		if id != "" && l.RequestID != id {
			continue
		}
		if enc.Encode(l) != nil || rc.Flush() != nil {
			return nil
		}
	}
	return nil
}

// FunctionStats returns the hosted functions' state.
func (c *Client) FunctionStats(ctx context.Context) ([]fnhost.FunctionStats, error) {
	var out []fnhost.FunctionStats
	err := c.do(ctx, http.MethodGet, "/api/v1/functions", nil, nil, &out)
	return out, err
}

// FunctionLogs calls each for every log line of function (only requestID's
// when set); with follow it keeps reading new lines until ctx ends.
func (c *Client) FunctionLogs(ctx context.Context, function, requestID string, follow bool, each func(fnhost.LogLine)) error {
	q := url.Values{}
	if requestID != "" {
		q.Set("request_id", requestID)
	}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/functions/"+url.PathEscape(function)+"/logs", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var er ErrorResponse
		json.NewDecoder(resp.Body).Decode(&er)
		return &APIError{Status: resp.StatusCode, Message: er.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l fnhost.LogLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			each(l)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}
