package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/rollout"
	"github.com/turnout/turnout/internal/shadow"
)

// Client calls the admin API. Its methods mirror the endpoints; an error
// answer is returned as *APIError.
type Client struct {
	// BaseURL is the admin listener, e.g. "http://127.0.0.1:8081".
	BaseURL string
	// Token is sent as "Authorization: Bearer Token".
	Token string
	// HTTP sends the requests. Default http.DefaultClient.
	HTTP *http.Client
}

// maxResponseBytes bounds what the client reads from a response.
const maxResponseBytes = 64 << 20

// send makes one authenticated request to the admin API; the caller closes
// the response body.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	u := strings.TrimSuffix(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", c.BaseURL, err)
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("admin API at %s: read response: %w", c.BaseURL, err)
	}
	if resp.StatusCode >= 300 {
		var er ErrorResponse
		if json.Unmarshal(data, &er) != nil || er.Error == "" {
			msg := strings.TrimSpace(string(data))
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
			er = ErrorResponse{Error: strings.TrimSpace(resp.Status + " " + msg)}
		}
		return &APIError{Status: resp.StatusCode, Message: er.Error, Errors: er.Errors, Deployment: er.Deployment, Propagation: er.Propagation}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API at %s: decode %s %s response: %w", c.BaseURL, method, path, err)
	}
	return nil
}

// Healthz checks that the admin API answers.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/api/v1/healthz", nil, nil, nil)
}

// Status returns the gateway's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, nil, &s)
	return s, err
}

// Deployments lists up to limit deployments (0: the server's default of 20)
// with ids below before (0: from the newest), newest first.
func (c *Client) Deployments(ctx context.Context, before uint64, limit int) ([]DeploymentSummary, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var l []DeploymentSummary
	err := c.do(ctx, http.MethodGet, "/api/v1/deployments", q, nil, &l)
	return l, err
}

// Deployment returns deployment id with its config.
func (c *Client) Deployment(ctx context.Context, id uint64) (deploy.Deployment, error) {
	var d deploy.Deployment
	err := c.do(ctx, http.MethodGet, "/api/v1/deployments/"+strconv.FormatUint(id, 10), nil, nil, &d)
	return d, err
}

// ActiveDeployment returns the active deployment with its config.
func (c *Client) ActiveDeployment(ctx context.Context) (deploy.Deployment, error) {
	var d deploy.Deployment
	err := c.do(ctx, http.MethodGet, "/api/v1/deployments/active", nil, nil, &d)
	return d, err
}

// Apply deploys a config. An invalid one returns an *APIError with Status
// 400 and every problem in Errors. When the config has the active
// deployment's settings, nothing is stored: Apply
// returns the active deployment and an error matching deploy.ErrUnchanged
// ("no change: deployment 3 is already active").
func (c *Client) Apply(ctx context.Context, req ApplyRequest) (deploy.Deployment, error) {
	res, err := c.ApplyWait(ctx, req, 0)
	return res.Deployment, err
}

// Rollback restores deployment to (0: the one before the active one) as a
// new deployment.
func (c *Client) Rollback(ctx context.Context, to uint64, message string) (deploy.Deployment, error) {
	res, err := c.RollbackWait(ctx, to, message, 0)
	return res.Deployment, err
}

// RouteOff switches the route with the given match off.
func (c *Client) RouteOff(ctx context.Context, match, message string) (deploy.Deployment, error) {
	res, err := c.RouteOffWait(ctx, match, message, 0)
	return res.Deployment, err
}

// RouteOn switches the route with the given match back on.
func (c *Client) RouteOn(ctx context.Context, match, message string) (deploy.Deployment, error) {
	res, err := c.RouteOnWait(ctx, match, message, 0)
	return res.Deployment, err
}

// ApplyWait is Apply that, when wait > 0, also waits up to wait for every
// live node to ack the deployment (wait=1), and returns where each stands
// in Propagation. When a node refused it or did not ack it in time, the
// error is an *APIError (Status 502 or 504) whose Deployment and
// Propagation are set. ctx must outlast wait.
func (c *Client) ApplyWait(ctx context.Context, req ApplyRequest, wait time.Duration) (Applied, error) {
	return c.mutate(ctx, "/api/v1/deployments", req, wait)
}

// RollbackWait is Rollback with ApplyWait's wait.
func (c *Client) RollbackWait(ctx context.Context, to uint64, message string, wait time.Duration) (Applied, error) {
	return c.mutate(ctx, "/api/v1/rollback", RollbackRequest{To: to, Message: message}, wait)
}

// RouteOffWait is RouteOff with ApplyWait's wait.
func (c *Client) RouteOffWait(ctx context.Context, match, message string, wait time.Duration) (Applied, error) {
	return c.mutate(ctx, "/api/v1/routes/off", RouteRequest{Match: match, Message: message}, wait)
}

// RouteOnWait is RouteOn with ApplyWait's wait.
func (c *Client) RouteOnWait(ctx context.Context, match, message string, wait time.Duration) (Applied, error) {
	return c.mutate(ctx, "/api/v1/routes/on", RouteRequest{Match: match, Message: message}, wait)
}

// mutate posts body to path, with wait=1 when wait > 0. An answer saying
// the change is already in effect returns the active deployment and an
// error matching deploy.ErrUnchanged.
func (c *Client) mutate(ctx context.Context, path string, body any, wait time.Duration) (Applied, error) {
	var q url.Values
	if wait > 0 {
		q = url.Values{"wait": {"1"}, "wait_timeout": {wait.String()}}
	}
	var res Applied
	if err := c.do(ctx, http.MethodPost, path, q, body, &res); err != nil {
		return Applied{}, err
	}
	if res.Unchanged {
		return res, deploy.Unchanged(res.ID)
	}
	return res, nil
}

// Nodes lists the live nodes of the fleet.
func (c *Client) Nodes(ctx context.Context) (Fleet, error) {
	var f Fleet
	err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, nil, &f)
	return f, err
}

// Diff compares deployments a and b (0: b the active one, a the one before b).
func (c *Client) Diff(ctx context.Context, a, b uint64) (deploy.DiffResult, error) {
	q := url.Values{}
	if a > 0 {
		q.Set("a", strconv.FormatUint(a, 10))
	}
	if b > 0 {
		q.Set("b", strconv.FormatUint(b, 10))
	}
	var r deploy.DiffResult
	err := c.do(ctx, http.MethodGet, "/api/v1/diff", q, nil, &r)
	return r, err
}

// Audit returns up to limit audit events (0: the server's default of 50),
// newest first. It needs an admin token.
func (c *Client) Audit(ctx context.Context, limit int) ([]deploy.AuditEvent, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var evs []deploy.AuditEvent
	err := c.do(ctx, http.MethodGet, "/api/v1/audit", q, nil, &evs)
	return evs, err
}

// Rollouts returns the routes' rollouts; with match, only that route's
// (none when it has no rollout).
func (c *Client) Rollouts(ctx context.Context, match string) ([]rollout.Status, error) {
	var q url.Values
	if match != "" {
		q = url.Values{"route": {match}}
	}
	var raw rolloutsAnswer
	if err := c.do(ctx, http.MethodGet, "/api/v1/rollouts", q, nil, &raw); err != nil {
		return nil, err
	}
	return raw.statuses(), nil
}

// Rollout takes action (one of RolloutActions) on route match's rollout,
// with ApplyWait's wait. A route without a rollout returns an *APIError
// with Status 409; an action already in effect (pausing a paused rollout)
// one with Status 409 too.
func (c *Client) Rollout(ctx context.Context, action, match, message string, wait time.Duration) (Applied, error) {
	return c.mutate(ctx, "/api/v1/rollouts/"+url.PathEscape(action), RolloutRequest{Route: match, Message: message}, wait)
}

// rolloutsAnswer is a Rollouts answer.
type rolloutsAnswer struct {
	Rollouts []rollout.Status `json:"rollouts"`
}

func (a rolloutsAnswer) statuses() []rollout.Status {
	if a.Rollouts == nil {
		return []rollout.Status{}
	}
	return a.Rollouts
}

// Shadow returns the shadowed routes' reports over the last since (0: the
// server's default of 1h); with match, only that route's (none when it has
// no shadow, or this node mirrored none of its requests yet).
func (c *Client) Shadow(ctx context.Context, match string, since time.Duration) ([]shadow.Summary, error) {
	q := url.Values{}
	if match != "" {
		q.Set("route", match)
	}
	if since != 0 {
		q.Set("since", since.String())
	}
	var raw Shadows
	if err := c.do(ctx, http.MethodGet, "/api/v1/shadow", q, nil, &raw); err != nil {
		return nil, err
	}
	if raw.Routes == nil {
		return []shadow.Summary{}, nil
	}
	return raw.Routes, nil
}
