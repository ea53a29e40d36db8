package admin

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// protect wraps the admin handler in the two checks a browser-facing API
// on loopback needs, whatever the endpoint:
//
//   - DNS rebinding: a page on evil.example can make its own name resolve
//     to 127.0.0.1 and then talk to this listener "same-origin". Its
//     requests still carry Host: evil.example, so only Host values this
//     listener answers to are accepted: IP literals (a rebinding attack
//     needs a name), localhost and *.localhost (which browsers resolve to
//     loopback themselves), the listener's own name, and Options.Hosts.
//   - Cross-site requests: http.CrossOriginProtection refuses non-safe
//     methods whose Sec-Fetch-Site (or, from older browsers, Origin) shows
//     another site, so a page elsewhere cannot make a signed-in browser
//     roll back. Requests without those headers — the CLI, curl — pass.
//
// Both answer with a JSON error saying what to do.
func (s *Server) protect(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			s.refused(r, "anonymous", "host", fmt.Sprintf("Host %q refused (DNS rebinding protection)", clip(r.Host)))
			writeError(w, http.StatusMisdirectedRequest, ErrorResponse{Error: fmt.Sprintf(
				"the admin API does not answer to Host %q: use an IP address or localhost, or add the name to admin.hosts in the config", clip(r.Host))})
			return
		}
		if err := cop.Check(r); err != nil {
			s.refused(r, "anonymous", "cross-origin", "cross-site "+r.Method+" "+r.URL.Path+" refused")
			writeError(w, http.StatusForbidden, ErrorResponse{Error: "cross-site request refused: " + err.Error() +
				"; the dashboard must be opened from the admin listener itself"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the admin API answers to a request's Host.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, h := range s.hosts {
		if host == h {
			return true
		}
	}
	return false
}

// allowedHosts normalises Options.Hosts and the listener's own name.
func allowedHosts(listen string, hosts []string) []string {
	var out []string
	add := func(h string) {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if h != "" {
			out = append(out, h)
		}
	}
	if h, _, err := net.SplitHostPort(listen); err == nil {
		add(h)
	}
	for _, h := range hosts {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		add(h)
	}
	return out
}
