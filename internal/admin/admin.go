// Package admin serves the admin API (JSON, bearer tokens with roles, a thin
// layer over deploy.Service) and the dashboard on their own listener, guarded
// against cross-site requests and DNS rebinding, and the Go client the CLI uses.
package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/dashboard"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/rollout"
	"github.com/turnout/turnout/internal/shadow"
)

// DefaultMaxBodyBytes limits request bodies when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 8 << 20

// Options configure a Server.
type Options struct {
	// Service runs the operations. Required.
	Service *deploy.Service
	// Store is read for listings, the audit trail, and written to for audit
	// events. Default Service.Store.
	Store deploy.Store
	// Tokens are the accepted credentials (config admin.tokens). A token
	// with Env is read from the environment now; New fails when it is empty.
	Tokens []config.Token
	// TokenFile is used when Tokens is empty: it holds a generated admin
	// token, created (mode 0600) on first start and reused after. turnout
	// puts it next to the store: "<store path>.token".
	TokenFile string
	// MaxBodyBytes limits request bodies; larger ones get 413. Default 8 MiB.
	MaxBodyBytes int64
	// Status reports the data plane's view for GET /status. When nil, the
	// status holds the active deployment and its routes only.
	Status func(ctx context.Context) (Status, error)
	// Metrics, when set, is served at /metrics without authentication, for
	// Prometheus scrapers: metrics carry no secrets, and the admin listener
	// is on loopback by default. Put the listener behind a firewall before
	// exposing it.
	Metrics http.Handler
	// Functions is the hosted-function pool, for function stats and logs;
	// nil when the node hosts none.
	Functions Functions
	// Live is the per-second series the dashboard charts read at
	// GET /api/v1/live; nil answers an empty series.
	Live *dashboard.Live
	// Traffic is the traffic table behind GET /api/v1/traffic; nil answers
	// an empty report.
	Traffic TrafficReporter
	// Listen is the admin listener's address; its host name, if it is one,
	// is an accepted Host (see Hosts).
	Listen string
	// Hosts are extra names the admin API answers to (config admin.hosts).
	// IP addresses, localhost and *.localhost are always accepted; any
	// other Host gets 421, so that a DNS-rebinding page cannot reach the
	// API under its own name.
	Hosts []string
	// Logger receives server-side errors. Default slog.Default().
	Logger *slog.Logger
	// LocalSwitch, when set, switches a route off on this node only, or
	// clears that switch — POST /api/v1/routes/off|on?local=1, admin role —
	// without the store, serves the result and records it in the node's
	// local audit (see local.go); it returns what it did in a sentence.
	// turnout serve wires it to deploy.LocalSwitches and the gateway. Nil
	// answers 501.
	LocalSwitch func(ctx context.Context, req deploy.LocalSwitchRequest) (string, error)
	// Rollouts reports the routes' rollouts for GET /api/v1/rollouts (see
	// rollouts.go): turnout serve wires it to the rollout controller's
	// Status. Nil answers an empty list.
	Rollouts func(ctx context.Context) ([]rollout.Status, error)
	// Shadow reports the shadowed routes' comparisons over the last since
	// (all routes with route "") for GET /api/v1/shadow (see shadow.go):
	// turnout serve wires it to its shadow.Report's Summaries. Nil answers
	// an empty list.
	Shadow func(route string, since time.Duration) []shadow.Summary
}

// Server is the admin API. Create it with New.
type Server struct {
	opts  Options
	store deploy.Store
	log   *slog.Logger
	creds []credential
	mux   *http.ServeMux
	hosts []string     // accepted Host names besides IP literals and localhost
	root  http.Handler // mux behind the Host and cross-origin checks

	// refusals bounds audit writes for refused attempts, so that a flood of
	// bad tokens cannot grow the store without bound; suppressed counts the
	// ones left out, reported in the next recorded refusal.
	refusals   *rate.Limiter
	suppressed atomic.Int64
	// lockout slows down clients that keep failing to authenticate.
	lockout lockout
}

// New checks opts and builds the server. It fails when a token is
// malformed, an Env token's variable is empty, or no token is configured
// and the token file cannot be read or written.
func New(opts Options) (*Server, error) {
	if opts.Service == nil {
		return nil, errors.New("admin: Options.Service is required")
	}
	s := &Server{
		opts:     opts,
		store:    opts.Store,
		log:      opts.Logger,
		refusals: rate.NewLimiter(rate.Every(100*time.Millisecond), 50),
	}
	if s.store == nil {
		s.store = opts.Service.Store
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.opts.MaxBodyBytes <= 0 {
		s.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	for _, t := range opts.Tokens {
		c, err := credentialOf(t)
		if err != nil {
			return nil, err
		}
		s.creds = append(s.creds, c)
	}
	if len(s.creds) == 0 {
		c, err := loadGeneratedToken(opts.TokenFile, s.log)
		if err != nil {
			return nil, err
		}
		s.creds = append(s.creds, c)
	}
	s.hosts = allowedHosts(opts.Listen, opts.Hosts)
	s.routes()
	s.root = s.protect(s.mux)
	return s, nil
}

func credentialOf(t config.Token) (credential, error) {
	role, err := ParseRole(t.Role)
	if err != nil {
		return credential{}, fmt.Errorf("admin token %q: %w", t.Name, err)
	}
	c := credential{name: t.Name, role: role}
	switch {
	case t.SHA256 != "" && t.Env != "":
		return credential{}, fmt.Errorf("admin token %q: set sha256 or env, not both", t.Name)
	case t.SHA256 != "":
		b, err := hex.DecodeString(t.SHA256)
		if err != nil || len(b) != sha256.Size {
			return credential{}, fmt.Errorf("admin token %q: sha256 must be 64 hex digits (printf %%s TOKEN | sha256sum)", t.Name)
		}
		copy(c.hash[:], b)
	case t.Env != "":
		v := os.Getenv(t.Env)
		if v == "" {
			return credential{}, fmt.Errorf("admin token %q: environment variable %s is empty or unset", t.Name, t.Env)
		}
		c.hash = sha256.Sum256([]byte(v))
	default:
		return credential{}, fmt.Errorf("admin token %q: set sha256 or env", t.Name)
	}
	return c, nil
}

// Handler returns the HTTP handler of the admin API and the dashboard.
func (s *Server) Handler() http.Handler { return s.root }

// endpoint is one authenticated admin operation.
type endpoint struct {
	action string // in the audit trail
	role   Role   // the least role allowed
	// read answers a GET with 200 and the returned value.
	read func(r *http.Request) (any, error)
	// stream writes its own response (logs that follow); an error returned
	// before anything is written is answered as JSON.
	stream func(w http.ResponseWriter, r *http.Request) error
	// mutate creates a deployment, answered with 201, or finds that the
	// change is already in effect (deploy.ErrUnchanged), answered with 200
	// and Unchanged. Mutations, failed or not, are audited. With wait=1,
	// the answer waits for the live nodes' acks (see Server.await).
	mutate func(w http.ResponseWriter, r *http.Request, who credential) (deploy.Deployment, error)
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	s.mux = mux
	handle := func(pattern string, e endpoint) { mux.Handle(pattern, s.guard(e)) }

	healthz := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.Handle("GET /healthz", healthz)
	mux.Handle("GET /api/v1/healthz", healthz)
	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", s.opts.Metrics)
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, ErrorResponse{Error: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})

	handle("GET /api/v1/status", endpoint{action: "status", role: RoleViewer, read: s.status})
	handle("GET /api/v1/deployments", endpoint{action: "deployments.list", role: RoleViewer, read: s.listDeployments})
	handle("GET /api/v1/deployments/active", endpoint{action: "deployments.get", role: RoleViewer, read: func(r *http.Request) (any, error) {
		return s.store.Active(r.Context())
	}})
	handle("GET /api/v1/deployments/{id}", endpoint{action: "deployments.get", role: RoleViewer, read: s.getDeployment})
	handle("GET /api/v1/diff", endpoint{action: "diff", role: RoleViewer, read: s.diff})
	handle("GET /api/v1/nodes", endpoint{action: "nodes", role: RoleViewer, read: s.fleet})
	handle("GET /api/v1/audit", endpoint{action: "audit", role: RoleAdmin, read: s.auditLog})

	handle("POST /api/v1/deployments", endpoint{action: "apply", role: RoleDeployer, mutate: s.apply})
	handle("POST /api/v1/rollback", endpoint{action: "rollback", role: RoleDeployer, mutate: s.rollback})
	mux.Handle("POST /api/v1/routes/off", s.orLocal(true, s.guard(endpoint{action: "route.off", role: RoleDeployer, mutate: s.routeSwitch(true)})))
	mux.Handle("POST /api/v1/routes/on", s.orLocal(false, s.guard(endpoint{action: "route.on", role: RoleDeployer, mutate: s.routeSwitch(false)})))
	s.functionRoutes(mux)
	s.rolloutRoutes(mux)
	s.shadowRoutes(mux)
	s.dashboardRoutes(mux)
}

// guard authenticates and authorises the request, runs the endpoint and
// audits what must be audited.
func (s *Server) guard(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := s.lockout.wait(r.RemoteAddr, time.Now()); d > 0 {
			s.refused(r, "unknown", e.action, "too many failed authentications from this address")
			w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds()+0.999)))
			writeError(w, http.StatusTooManyRequests, ErrorResponse{Error: "too many failed authentications from this address; try again later"})
			return
		}
		who, missing, ok := s.authenticate(r)
		if !ok {
			if !missing { // a wrong token is a guess; no token is not
				s.lockout.fail(r.RemoteAddr, time.Now())
			}
			actor, detail := "unknown", "unknown token"
			if missing {
				actor, detail = "anonymous", "no bearer token"
			}
			s.refused(r, actor, e.action, detail)
			w.Header().Set("WWW-Authenticate", `Bearer realm="turnout"`)
			writeError(w, http.StatusUnauthorized, ErrorResponse{Error: detail + ": send Authorization: Bearer TOKEN"})
			return
		}
		if who.role < e.role {
			detail := fmt.Sprintf("role %s may not %s (needs %s)", who.role, e.action, e.role)
			s.refused(r, who.name, e.action, detail)
			writeError(w, http.StatusForbidden, ErrorResponse{Error: "token " + who.name + ": " + detail})
			return
		}

		if e.stream != nil {
			if err := e.stream(w, r); err != nil {
				s.fail(w, r, err)
			}
			return
		}
		if e.read != nil {
			v, err := e.read(r)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, v)
			return
		}

		// wait=1 is checked before the change: bad input changes nothing.
		wait, err := waitOf(r)
		var d deploy.Deployment
		if err == nil {
			d, err = e.mutate(w, r, who)
		}
		ev := deploy.AuditEvent{Actor: who.name, Action: e.action, Remote: r.RemoteAddr, Deployment: d.ID}
		unchanged := errors.Is(err, deploy.ErrUnchanged)
		switch {
		case unchanged:
			ev.Result, ev.Detail = "unchanged", err.Error()
		case err == nil:
			ev.Result, ev.Detail = "ok", d.Cause
		case statusOf(err) < 500:
			ev.Result, ev.Detail = "invalid", clip(err.Error())
		default:
			ev.Result, ev.Detail = "error", clip(err.Error())
		}
		if d.Message != "" && err == nil {
			ev.Detail += ": " + clip(d.Message)
		}
		s.audit(r.Context(), ev)
		if err != nil && !unchanged {
			s.fail(w, r, err)
			return
		}
		status, res := http.StatusCreated, Applied{Deployment: d}
		if unchanged {
			status, res.Unchanged, res.Detail = http.StatusOK, true, err.Error()
		}
		if wait > 0 {
			p, err := s.await(r.Context(), d, wait)
			res.Propagation = &p
			if err != nil {
				s.log.Warn("admin: deployment not acked by every node", "deployment", d.ID, "err", err)
				writeError(w, statusOf(err), ErrorResponse{Error: err.Error(), Deployment: &d, Propagation: &p})
				return
			}
		}
		writeJSON(w, status, res)
	})
}

// refused audits a 401 or 403, within the refusal rate limit.
func (s *Server) refused(r *http.Request, actor, action, detail string) {
	if !s.refusals.Allow() {
		if s.suppressed.Add(1) == 1 {
			s.log.Warn("admin: too many refused requests; not auditing every one", "remote", r.RemoteAddr)
		}
		return
	}
	if n := s.suppressed.Swap(0); n > 0 {
		detail += fmt.Sprintf(" (%d more refusals before this one not recorded)", n)
	}
	s.audit(r.Context(), deploy.AuditEvent{Actor: actor, Action: action, Result: "denied", Detail: detail, Remote: r.RemoteAddr})
}

func (s *Server) audit(ctx context.Context, e deploy.AuditEvent) {
	// The audit write must not be lost because the client went away.
	if err := s.store.Audit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("admin: audit event not recorded", "action", e.Action, "actor", e.Actor, "err", err)
	}
}

// clip bounds audit details; an invalid config's full error list is in the
// response, not the trail.
func clip(s string) string {
	const max = 500
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// requestError is a malformed request.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// statusOf maps an operation's error to an HTTP status.
func statusOf(err error) int {
	var (
		list config.ErrorList
		re   *requestError
		pe   *propagationError
		mbe  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &re):
		return re.status
	case errors.As(err, &pe):
		return pe.status
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &list):
		return http.StatusBadRequest
	case errors.Is(err, deploy.ErrNotFound), errors.Is(err, deploy.ErrUnknownRoute):
		return http.StatusNotFound
	case errors.Is(err, deploy.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, deploy.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, deploy.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail writes err as a JSON error answer.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	resp := ErrorResponse{Error: err.Error()}
	var (
		list config.ErrorList
		ae   *deploy.ActivateError
		mbe  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		resp.Error = fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	case errors.As(err, &list):
		resp.Error = fmt.Sprintf("invalid config: %d error(s); nothing was changed", len(list))
		for _, e := range list {
			resp.Errors = append(resp.Errors, FieldError{Pos: e.Pos.String(), Message: e.Msg})
		}
	case errors.As(err, &ae):
		d := ae.Deployment
		resp.Deployment = &d
	}
	if status >= 500 {
		s.log.Error("admin: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, e ErrorResponse) { writeJSON(w, status, e) }

// decode reads a JSON body of at most MaxBodyBytes into v.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return badRequest("empty request body: send a JSON object")
		}
		return badRequest("malformed JSON body: %v", err)
	}
	// Read to the end so that an oversized body is refused even when its
	// first JSON value is complete.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	return nil
}

func queryUint(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, badRequest("query parameter %s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

// queryLimit parses ?limit=, defaulting to def and capped at 1000.
func queryLimit(r *http.Request, def int) (int, error) {
	n, err := queryUint(r, "limit")
	if err != nil {
		return 0, err
	}
	switch {
	case n == 0:
		return def, nil
	case n > 1000:
		return 1000, nil
	}
	return int(n), nil
}

func (s *Server) status(r *http.Request) (any, error) {
	ctx := r.Context()
	var st Status
	if s.opts.Status != nil {
		var err error
		if st, err = s.opts.Status(ctx); err != nil {
			return nil, err
		}
	}
	if st.Active.ID == 0 {
		d, err := s.store.Active(ctx)
		if err != nil {
			return nil, err
		}
		st.Active = Summarize(d)
		if s.opts.Status == nil {
			if cfg, err := config.Parse("active.yaml", []byte(d.Config)); err == nil {
				legacy := cfg.LegacyOrigin()
				for _, rt := range cfg.Routes {
					st.Routes = append(st.Routes, rt.Status(legacy))
				}
			}
		}
	}
	return st, nil
}

func (s *Server) listDeployments(r *http.Request) (any, error) {
	limit, err := queryLimit(r, 20)
	if err != nil {
		return nil, err
	}
	before, err := queryUint(r, "before")
	if err != nil {
		return nil, err
	}
	ds, err := s.store.List(r.Context(), before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]DeploymentSummary, 0, len(ds))
	for _, d := range ds {
		out = append(out, Summarize(d))
	}
	return out, nil
}

func (s *Server) getDeployment(r *http.Request) (any, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, badRequest("deployment id %q: want a positive integer or \"active\"", r.PathValue("id"))
	}
	return s.store.Get(r.Context(), id)
}

func (s *Server) diff(r *http.Request) (any, error) {
	a, err := queryUint(r, "a")
	if err != nil {
		return nil, err
	}
	b, err := queryUint(r, "b")
	if err != nil {
		return nil, err
	}
	return s.opts.Service.Diff(r.Context(), a, b)
}

func (s *Server) auditLog(r *http.Request) (any, error) {
	limit, err := queryLimit(r, 50)
	if err != nil {
		return nil, err
	}
	evs, err := s.store.AuditLog(r.Context(), limit)
	if evs == nil {
		evs = []deploy.AuditEvent{}
	}
	return evs, err
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, who credential) (deploy.Deployment, error) {
	var req ApplyRequest
	if err := s.decode(w, r, &req); err != nil {
		return deploy.Deployment{}, err
	}
	if strings.TrimSpace(req.Config) == "" {
		return deploy.Deployment{}, badRequest("config is empty: send the YAML text in \"config\"")
	}
	file := req.File
	if file == "" {
		file = "config.yaml"
	}
	return s.opts.Service.Apply(r.Context(), []byte(req.Config), file, who.name, req.Message)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request, who credential) (deploy.Deployment, error) {
	var req RollbackRequest
	if err := s.decode(w, r, &req); err != nil {
		return deploy.Deployment{}, err
	}
	return s.opts.Service.Rollback(r.Context(), req.To, who.name, req.Message)
}

func (s *Server) routeSwitch(off bool) func(http.ResponseWriter, *http.Request, credential) (deploy.Deployment, error) {
	return func(w http.ResponseWriter, r *http.Request, who credential) (deploy.Deployment, error) {
		var req RouteRequest
		if err := s.decode(w, r, &req); err != nil {
			return deploy.Deployment{}, err
		}
		return s.opts.Service.RouteSwitch(r.Context(), req.Match, off, who.name, req.Message)
	}
}
