package admin

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/turnout/turnout/internal/deploy"
)

// A route switch with ?local=1 — `turnout route off|on MATCH --local` —
// switches the route on this node only, without the store, through
// Options.LocalSwitch: the emergency switch for when the store (an etcd
// cluster without quorum) refuses deployments. It needs the admin role:
// unlike a deployment, no other node and no history sees it. It is audited
// in the node's local audit (the hook writes it), not the store's.

// LocalSwitchAnswer is the answer to POST /api/v1/routes/off|on?local=1.
type LocalSwitchAnswer struct {
	Match string `json:"match"`
	Off   bool   `json:"off"`
	Local bool   `json:"local"` // true
	// Detail says what was done, in a sentence.
	Detail string `json:"detail"`
}

// orLocal sends a route switch with the local query parameter set to a true
// value to the local switch, and every other to next, the deployment.
func (s *Server) orLocal(off bool, next http.Handler) http.Handler {
	action := "route.on.local"
	if off {
		action = "route.off.local"
	}
	local := s.guard(endpoint{action: action, role: RoleAdmin, stream: s.localSwitch(off)})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get("local")
		if v == "" {
			next.ServeHTTP(w, r)
			return
		}
		switch b, err := strconv.ParseBool(v); {
		case err != nil:
			writeError(w, http.StatusBadRequest, ErrorResponse{Error: "query parameter local=" + strconv.Quote(v) + ": want 1 or 0"})
		case b:
			local.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) localSwitch(off bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.opts.LocalSwitch == nil {
			return &requestError{http.StatusNotImplemented, "this node has no local route switches: only turnout serve has"}
		}
		var req RouteRequest
		if err := s.decode(w, r, &req); err != nil {
			return err
		}
		who, _, _ := s.authenticate(r) // guard has checked it
		detail, err := s.opts.LocalSwitch(r.Context(), deploy.LocalSwitchRequest{
			Match: req.Match, Off: off, Actor: who.name, Remote: r.RemoteAddr, Message: req.Message})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, LocalSwitchAnswer{Match: req.Match, Off: off, Local: true, Detail: detail})
		return nil
	}
}

// RouteLocal switches the route with the given match off (off) on the
// node the client talks to only, or clears that switch: `turnout route
// off|on MATCH --local`. It needs an admin token.
func (c *Client) RouteLocal(ctx context.Context, match string, off bool, message string) (LocalSwitchAnswer, error) {
	path := "/api/v1/routes/on"
	if off {
		path = "/api/v1/routes/off"
	}
	var a LocalSwitchAnswer
	err := c.do(ctx, http.MethodPost, path, url.Values{"local": {"1"}}, RouteRequest{Match: match, Message: message}, &a)
	return a, err
}
