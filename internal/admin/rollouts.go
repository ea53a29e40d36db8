package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/rollout"
	"github.com/turnout/turnout/internal/route"
)

// The rollout endpoints, `turnout rollout` and the dashboard's Rollouts
// page (docs/rollouts.md):
//
//	GET  /api/v1/rollouts            each route's rollout (viewer)
//	     ?route=MATCH                only that route's (after route.Canonical)
//	POST /api/v1/rollouts/{action}   start, pause, resume, promote or abort
//	     {"route": MATCH, "message": ...}   (deployer; wait=1 as other changes)
//
// An action is a deployment made by deploy.Service.Rollout, answered and
// audited as a route switch is ("rollout.pause", ...). A route without a
// rollout plan or canary is 409 — the request is well formed, the route's
// state refuses it, as switching off a route already off does — and an
// unknown route 404, listing the routes there are.

// RolloutActions are the actions POST /api/v1/rollouts/{action} takes, in
// the order a rollout meets them. The controller's own step is not one:
// an operator skips ahead with promote.
var RolloutActions = []string{deploy.RolloutStart, deploy.RolloutPause, deploy.RolloutResume, deploy.RolloutPromote, deploy.RolloutAbort}

// Rollouts is the answer to GET /api/v1/rollouts.
type Rollouts struct {
	// Rollouts are the routes under rollout as this node sees them: the
	// step from the active deployment, the verdict from its own requests.
	Rollouts []rollout.Status `json:"rollouts"`
}

// RolloutRequest is the body of POST /api/v1/rollouts/{action}.
type RolloutRequest struct {
	// Route is the route's match as written in the config.
	Route   string `json:"route"`
	Message string `json:"message,omitempty"`
}

func (s *Server) rolloutRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/rollouts", s.guard(endpoint{action: "rollouts", role: RoleViewer, read: s.rollouts}))
	for _, a := range RolloutActions {
		mux.Handle("POST /api/v1/rollouts/"+a, s.guard(endpoint{action: "rollout." + a, role: RoleDeployer, mutate: s.rolloutAction(a)}))
	}
	// Any other action: 404 naming the ones there are, after the token is
	// checked, so that the list is no help to a caller without one.
	mux.Handle("POST /api/v1/rollouts/{action}", s.guard(endpoint{action: "rollout", role: RoleViewer, read: func(r *http.Request) (any, error) {
		return nil, &requestError{http.StatusNotFound, "unknown rollout action " + strings.TrimSpace(r.PathValue("action")) +
			": want " + strings.Join(RolloutActions, ", ")}
	}}))
}

func (s *Server) rollouts(r *http.Request) (any, error) {
	out := Rollouts{Rollouts: []rollout.Status{}}
	if s.opts.Rollouts == nil {
		return out, nil
	}
	all, err := s.opts.Rollouts(r.Context())
	if err != nil {
		return nil, err
	}
	want, filter := r.URL.Query().Get("route"), r.URL.Query().Has("route")
	if filter && strings.TrimSpace(want) == "" {
		return nil, badRequest("query parameter route is empty: give a route's match, e.g. route=GET /user/{id}")
	}
	want = route.Canonical(want)
	for _, st := range all {
		if !filter || route.Canonical(st.Route) == want {
			out.Rollouts = append(out.Rollouts, st)
		}
	}
	return out, nil
}

func (s *Server) rolloutAction(action string) func(http.ResponseWriter, *http.Request, credential) (deploy.Deployment, error) {
	return func(w http.ResponseWriter, r *http.Request, who credential) (deploy.Deployment, error) {
		var req RolloutRequest
		if err := s.decode(w, r, &req); err != nil {
			return deploy.Deployment{}, err
		}
		if strings.TrimSpace(req.Route) == "" {
			return deploy.Deployment{}, badRequest(`route is empty: send the route's match, e.g. {"route": "GET /user/{id}"}`)
		}
		d, err := s.opts.Service.Rollout(r.Context(), deploy.RolloutChange{Action: action, Match: req.Route, Author: who.name, Message: req.Message})
		if errors.Is(err, deploy.ErrNoRollout) {
			err = &requestError{http.StatusConflict, err.Error()}
		}
		return d, err
	}
}
