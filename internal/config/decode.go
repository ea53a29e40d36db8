package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The valid keys of each mapping, in the order the reference documents them.
var (
	topKeys     = []string{"listen", "http1_server", "admin", "invoke_api", "store", "node", "limits", "tls", "trusted_proxies", "legacy", "served_by_header", "origins", "functions", "authorizers", "api_keys", "cors", "routing", "routes"}
	adminKeys   = []string{"listen", "tokens", "max_body_bytes", "tls", "insecure_no_tls", "hosts"}
	tokenKeys   = []string{"name", "role", "sha256", "env"}
	limitsKeys  = []string{"read_header_timeout", "idle_timeout", "max_header_bytes", "max_body_bytes", "drain_timeout", "body_timeout", "max_connections", "max_concurrent_streams"}
	originKeys  = []string{"url", "urls", "host_header", "timeouts", "health_check", "passive", "max_idle_conns"}
	timeoutKeys = []string{"dial", "response_header", "overall"}
	healthKeys  = []string{"path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "expect_status"}
	passiveKeys = []string{"max_connect_failures", "eject_for"}
	routingKeys = []string{"case_insensitive"}
	routeKeys   = []string{"match", "origin", "function", "payload", "fallback", "fallback_on_status", "fallback_unsafe", "fallback_reserve", "circuit_breaker", "auto_rollback", "rate_limit", "canary", "rollout", "shadow", "auth", "api_key_required", "cors", "off", "timeout"}
)

// config decodes the document root.
// It returns false when root is not a mapping, which leaves nothing to validate.
func (d *decoder) config(root *yaml.Node) (*Config, bool) {
	c := &Config{}
	d.originsAt = d.rootPos
	ok := d.fields(root, "the top level", topKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "listen":
			if s, ok := d.address(v, "listen"); ok {
				c.Listen, d.listenPos = s, d.pos(v)
			}
		case "admin":
			d.admin(v, &c.Admin)
		case "invoke_api":
			d.fields(v, "invoke_api", []string{"listen"}, func(_ string, _, v *yaml.Node) {
				if s, ok := d.str(v, "invoke_api.listen"); ok && s == "off" {
					c.InvokeAPI.Listen = s
				} else if s, ok := d.address(v, "invoke_api.listen"); ok {
					c.InvokeAPI.Listen = s
				}
			})
		case "store":
			d.store(v, &c.Store)
		case "node":
			d.node(v, &c.Node)
		case "limits":
			d.limits(v, &c.Limits)
		case "tls":
			c.TLS = d.tls(v)
		case "trusted_proxies":
			c.TrustedProxies = d.trustedProxies(v)
		case "legacy":
			c.Legacy, _ = d.name(v, "legacy")
			d.legacyPos = d.pos(v)
		case "origins":
			d.originsAt = d.pos(k)
			c.Origins = d.origins(v)
		case "http1_server":
			if s, ok := d.str(v, "http1_server"); ok {
				if s != HTTP1ServerTurnout && s != HTTP1ServerNetHTTP && s != HTTP1ServerGoroutines {
					d.errorf(v, "http1_server %q: must be %s (the default), %s or %s", s, HTTP1ServerTurnout, HTTP1ServerGoroutines, HTTP1ServerNetHTTP)
				} else {
					c.HTTP1Server = s
				}
			}
		case "served_by_header":
			if s, ok := d.name(v, "served_by_header"); ok {
				if s != ServedByOff && !isHeaderName(s) {
					d.errorf(v, "served_by_header %q is not a header name: use letters, digits and '-', or off", s)
				} else {
					c.ServedByHeader = s
				}
			}
		case "functions":
			c.Functions = d.functions(v)
		case "authorizers":
			c.Authorizers = d.authorizers(v)
		case "api_keys":
			c.APIKeys = d.apiKeys(v)
		case "cors":
			c.CORS = d.cors(v, "cors", false)
		case "routing":
			d.fields(v, "routing", routingKeys, func(_ string, _, v *yaml.Node) {
				d.boolean(v, "routing.case_insensitive", &c.Routing.CaseInsensitive)
				d.caseInsensitivePos = d.pos(v)
			})
		case "routes":
			c.Routes = d.routeList(v)
		}
	})
	return c, ok
}

// name decodes a string that must not be empty.
func (d *decoder) name(v *yaml.Node, what string) (string, bool) {
	s, ok := d.str(v, what)
	if ok && s == "" {
		d.errorf(v, "%s is empty: write a value or remove the key", what)
		return "", false
	}
	return s, ok
}

// address decodes a listen address, "host:port" or ":port".
func (d *decoder) address(v *yaml.Node, what string) (string, bool) {
	s, ok := d.str(v, what)
	if !ok {
		return "", false
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		d.errorf(v, "%s %q is not a listen address: write host:port or :port, like \":8080\" or \"127.0.0.1:8081\"", what, s)
		return "", false
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		d.errorf(v, "%s %q: the port must be a number from 0 to 65535", what, s)
		return "", false
	}
	return s, true
}

func (d *decoder) admin(v *yaml.Node, a *Admin) {
	d.fields(v, "admin", adminKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "listen":
			if s, ok := d.address(v, "admin.listen"); ok {
				a.Listen, d.adminPos = s, d.pos(v)
			}
		case "tokens":
			items, _ := d.list(v, "admin.tokens", "[{name: ci, role: deployer, sha256: <hex>}]")
			for i, it := range items {
				t, tp := d.token(it, i)
				a.Tokens = append(a.Tokens, t)
				d.tokens = append(d.tokens, tp)
			}
		case "max_body_bytes":
			if n, ok := d.integer(v, "admin.max_body_bytes", 64, 1, "omit it for the default 8 MiB"); ok {
				a.MaxBodyBytes = n
			}
		case "tls":
			a.TLS = d.adminTLS(v)
		case "insecure_no_tls":
			d.boolean(v, "admin.insecure_no_tls", &a.InsecureNoTLS)
		case "hosts":
			items, _ := d.list(v, "admin.hosts", "[turnout-admin.internal]")
			for _, it := range items {
				if s, ok := d.str(it, "admin.hosts[]"); ok {
					if !isHostName(s) {
						d.errorf(it, "admin.hosts entry %q is not a host name: write a DNS name without scheme, port or path, like turnout-admin.internal", s)
						continue
					}
					a.Hosts = append(a.Hosts, s)
				}
			}
		}
	})
}

// token decodes admin.tokens[i]. The positions it returns are zero for keys
// not written, which is how presence is told from an invalid value.
func (d *decoder) token(n *yaml.Node, i int) (Token, tokenPos) {
	n = deref(n)
	t := Token{Pos: d.pos(n)}
	var tp tokenPos
	var roleGiven bool
	what := fmt.Sprintf("admin.tokens[%d]", i)
	ok := d.fields(n, what, tokenKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			tp.name = d.pos(v)
		case "role":
			roleGiven = true
		case "sha256":
			tp.sha256 = d.pos(k)
		case "env":
			tp.env = d.pos(k)
		}
		s, ok := d.str(v, what+"."+key)
		if !ok {
			return
		}
		switch key {
		case "name":
			if s == "" || strings.IndexFunc(s, isSpaceOrControl) >= 0 {
				d.errorf(v, "%s.name %q must be a non-empty name without spaces, like ci or alice", what, s)
				return
			}
			t.Name = s
		case "role":
			switch s {
			case "viewer", "deployer", "admin":
				t.Role = s
			default:
				d.errorf(v, "%s.role %q is not a role: use viewer (read only), deployer (apply, rollback, route off/on) or admin (everything)", what, s)
			}
		case "sha256":
			if len(s) != 64 {
				d.errorf(v, "%s.sha256 must be 64 hex digits, the SHA-256 of the token (printf %%s TOKEN | sha256sum), got %d characters", what, len(s))
				return
			}
			if i := strings.IndexFunc(s, notHex); i >= 0 {
				r, _ := utf8.DecodeRuneInString(s[i:])
				d.errorf(v, "%s.sha256 must be hex digits only (0-9, a-f), got %q at character %d", what, r, utf8.RuneCountInString(s[:i])+1)
				return
			}
			t.SHA256 = strings.ToLower(s)
		case "env":
			if !isEnvName(s) {
				d.errorf(v, "%s.env %q is not an environment variable name: use letters, digits and _, like TURNOUT_ADMIN_TOKEN", what, s)
				return
			}
			t.Env = s
		}
	})
	if !ok {
		return t, tp
	}
	if tp.name == (Pos{}) {
		d.errorAt(t.Pos, what+" has no name: add name: (it names the actor in the audit trail)")
	}
	if !roleGiven {
		d.errorAt(t.Pos, what+" has no role: add role: viewer, deployer or admin")
	}
	switch {
	case tp.sha256 != (Pos{}) && tp.env != (Pos{}):
		later := tp.sha256
		if before(tp.sha256, tp.env) {
			later = tp.env
		}
		d.errorAt(later, what+" sets both sha256 and env: keep one (sha256 to store the token's hash in the config, env to read the token from the environment)")
	case tp.sha256 == (Pos{}) && tp.env == (Pos{}):
		d.errorAt(t.Pos, what+" has no secret: add sha256: <SHA-256 of the token in hex> (printf %s TOKEN | sha256sum), or env: VARIABLE naming an environment variable that holds the token")
	}
	return t, tp
}

func before(a, b Pos) bool { return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column }

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f || r == 0x85 || r == 0xa0 }

func notHex(r rune) bool {
	return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
}

func isEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

// isHeaderName reports whether s is a plain HTTP header name: letters,
// digits and '-'.
func isHeaderName(s string) bool {
	for _, c := range s {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

// isOriginName reports whether s can name an origin: it appears in metric
// labels, admin API paths and CLI arguments, so it is kept to one plain word.
func isOriginName(s string) bool {
	for i, r := range s {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')) {
			return false
		}
	}
	return s != ""
}

func (d *decoder) limits(v *yaml.Node, l *Limits) {
	d.fields(v, "limits", limitsKeys, func(key string, _, v *yaml.Node) {
		what := "limits." + key
		switch key {
		case "read_header_timeout":
			d.duration(v, what, &l.ReadHeaderTimeout, "the default 10s")
		case "idle_timeout":
			d.duration(v, what, &l.IdleTimeout, "the default 120s")
		case "max_header_bytes":
			d.intField(v, what, &l.MaxHeaderBytes, 1, "omit it for the default 64 KiB")
		case "max_body_bytes":
			if n, ok := d.integer(v, what, 64, 1, "omit it for the default 10 MiB"); ok {
				l.MaxBodyBytes = n
			}
		case "drain_timeout":
			d.duration(v, what, &l.DrainTimeout, "the default 30s")
		case "body_timeout":
			d.duration(v, what, &l.BodyTimeout, "the default 30s")
		case "max_connections":
			d.intField(v, what, &l.MaxConnections, 1, "omit it for the default 10000")
		case "max_concurrent_streams":
			d.intField(v, what, &l.MaxConcurrentStreams, 1, "omit it for the default 250")
		}
	})
}

func (d *decoder) trustedProxies(v *yaml.Node) []string {
	items, _ := d.list(v, "trusted_proxies", "[10.0.0.0/8, 192.168.1.7]")
	var out []string
	for i, it := range items {
		what := fmt.Sprintf("trusted_proxies[%d]", i)
		s, ok := d.str(it, what)
		if !ok {
			continue
		}
		var err error
		if strings.Contains(s, "/") {
			_, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil && a.Zone() != "" {
				d.errorf(it, "%s %q: remove the zone (%%%s); peers are matched by address only", what, s, a.Zone())
				continue
			}
		}
		if err != nil {
			d.errorf(it, "%s %q is not an IP address or CIDR: write it like 10.0.0.0/8 or 192.168.1.7", what, s)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) origins(v *yaml.Node) []Origin {
	return named(d, v, "origins", "origin", `origins: {legacy: {url: "http://10.0.0.5:8080"}}`, d.origin)
}

// named decodes a section that maps names to settings (origins:,
// functions:), each entry with one, in the file's order; kind is what one
// entry is, example a short section to show when v is not a mapping.
func named[T any](d *decoder, v *yaml.Node, section, kind, example string, one func(k, v *yaml.Node) T) []T {
	if n := deref(v); n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must map each %s's name to its settings, like %s, got %s", section, kind, example, describe(n))
		return nil
	}
	es, _ := d.entries(v, section, kind)
	out := make([]T, 0, len(es))
	for _, e := range es {
		out = append(out, one(e.k, e.v))
	}
	return out
}

// checkName reports a name under origins: or functions: (kind) that
// isOriginName refuses.
func (d *decoder) checkName(k *yaml.Node, kind string) {
	if !isOriginName(k.Value) {
		d.errorf(k, "%s name %q must start with a letter or digit and use only letters, digits, '-', '_' and '.'", kind, k.Value)
	}
}

// origin decodes the origin declared as key k with settings v.
func (d *decoder) origin(k, v *yaml.Node) Origin {
	o := Origin{Name: k.Value, Pos: d.pos(k)}
	hp := healthPos{}
	defer func() { d.health = append(d.health, hp) }()
	what := "origins." + o.Name
	d.checkName(k, "origin")
	v = deref(v)
	if isNull(v) {
		d.errorf(k, "origin %q has no urls: add url: http://host:port (or urls: [...] for several instances)", o.Name)
		return o
	}
	if v.Kind != yaml.MappingNode {
		d.errorf(v, "%s must be a mapping of settings, like %s: {url: \"http://10.0.0.5:8080\"}, got %s", what, o.Name, describe(v))
		return o
	}
	var urlKey, urlsKey *yaml.Node
	seen := map[string]Pos{}
	addURL := func(n *yaml.Node, what string) {
		s, ok := d.str(n, what)
		if !ok || !d.checkURL(n, what, s) {
			return
		}
		if p, dup := seen[s]; dup {
			d.errorf(n, "%s %q is listed twice (also at %s): remove one", what, s, p)
			return
		}
		seen[s] = d.pos(n)
		o.URLs = append(o.URLs, s)
		o.URLsPos = append(o.URLsPos, d.pos(n))
	}
	d.fields(v, what, originKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "url", "urls":
			if urlKey != nil || urlsKey != nil {
				d.errorf(k, "%s sets both url and urls: use url for one instance or urls for several, not both", what)
				return
			}
			if key == "url" {
				urlKey = k
				addURL(v, what+".url")
				return
			}
			urlsKey = k
			items, ok := d.list(v, what+".urls", "[http://10.0.0.5:8080, http://10.0.0.6:8080]")
			if ok && len(items) == 0 {
				d.errorf(v, "%s.urls is empty: list at least one instance, like urls: [http://10.0.0.5:8080]", what)
			}
			for i, it := range items {
				addURL(it, fmt.Sprintf("%s.urls[%d]", what, i))
			}
		case "host_header":
			switch s, ok := d.str(v, what+".host_header"); {
			case !ok:
			case s == "client" || s == "origin":
				o.HostHeader = s
			default:
				d.errorf(v, "%s.host_header must be client (forward the client's Host) or origin (send the instance's host), got %s", what, describe(v))
			}
		case "timeouts":
			d.fields(v, what+".timeouts", timeoutKeys, func(key string, _, v *yaml.Node) {
				w := what + ".timeouts." + key
				switch key {
				case "dial":
					d.duration(v, w, &o.Timeouts.Dial, "the default 2s")
				case "response_header":
					d.duration(v, w, &o.Timeouts.ResponseHeader, "the default 30s")
				case "overall":
					d.duration(v, w, &o.Timeouts.Overall, "the default 60s")
				}
			})
		case "health_check":
			hp.node = d.pos(v)
			d.healthCheck(v, what+".health_check", &o.HealthCheck, &hp)
		case "passive":
			d.fields(v, what+".passive", passiveKeys, func(key string, _, v *yaml.Node) {
				w := what + ".passive." + key
				switch key {
				case "max_connect_failures":
					n, ok := d.integer(v, w, strconv.IntSize, -1, "use -1 to disable passive ejection")
					if ok && n == 0 {
						d.errorf(v, "%s must not be 0: use -1 to disable passive ejection, or omit it for the default 3", w)
						ok = false
					}
					if ok {
						o.Passive.MaxConnectFailures = int(n)
					}
				case "eject_for":
					d.duration(v, w, &o.Passive.EjectFor, "the default 10s")
				}
			})
		case "max_idle_conns":
			d.intField(v, what+".max_idle_conns", &o.MaxIdleConns, 1, "omit it for the default 256")
		}
	})
	if urlKey == nil && urlsKey == nil {
		d.errorf(k, "origin %q has no urls: add url: http://host:port (or urls: [...] for several instances)", o.Name)
	}
	return o
}

// checkURL reports why s cannot be an origin instance URL.
func (d *decoder) checkURL(n *yaml.Node, what, s string) bool {
	bad := func(format string, args ...any) bool {
		d.errorf(n, "%s %q "+format, append([]any{what, s}, args...)...)
		return false
	}
	if !strings.Contains(s, "://") {
		return bad("has no scheme: write http://%s (or https://)", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return bad("is not a URL (%v): write it like http://10.0.0.5:8080", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("has scheme %q: use http or https", u.Scheme)
	case u.User != nil:
		return bad("contains credentials (user@): remove them; turnout forwards the client's Authorization header")
	case u.Hostname() == "":
		return bad("has no host: write it like http://10.0.0.5:8080")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("has a query (?...): remove it; the client's query string is forwarded as is")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return bad("has a fragment (#...): remove it")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("has port %s: use a number from 1 to 65535", p)
		}
	}
	return true
}

func (d *decoder) healthCheck(v *yaml.Node, what string, h *HealthCheck, hp *healthPos) {
	pathGiven := false
	ok := d.fields(v, what, healthKeys, func(key string, _, v *yaml.Node) {
		w := what + "." + key
		switch key {
		case "path":
			pathGiven = true
			s, ok := d.str(v, w)
			if ok && (!strings.HasPrefix(s, "/") || strings.IndexFunc(s, isSpaceOrControl) >= 0) {
				d.errorf(v, "%s %q must be a path starting with /, like /healthz", w, s)
				return
			}
			h.Path = s
		case "interval":
			hp.interval = d.pos(v)
			d.duration(v, w, &h.Interval, "the default 5s")
		case "timeout":
			hp.timeout = d.pos(v)
			d.duration(v, w, &h.Timeout, "the default 1s")
		case "healthy_threshold":
			d.intField(v, w, &h.HealthyThreshold, 1, "it counts consecutive passing probes")
		case "unhealthy_threshold":
			d.intField(v, w, &h.UnhealthyThreshold, 1, "it counts consecutive failing probes")
		case "expect_status":
			s, ok := d.str(v, w)
			if !ok {
				return
			}
			if _, _, err := parseStatusRange(s); err != nil {
				d.errorf(v, "%s %q %v: write a status or an inclusive range, like \"200\" or \"200-399\"", w, s, err)
				return
			}
			h.ExpectStatus = s
		}
	})
	if ok && !pathGiven {
		d.errorAt(hp.node, what+" has no path, so no probe would run: add path: /healthz (or remove health_check)")
	}
}

// parseStatusRange parses "200" or "200-399".
func parseStatusRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("is not a status code or range")
	case lo < 100 || hi > 599:
		return 0, 0, fmt.Errorf("is outside 100-599")
	case lo > hi:
		return 0, 0, fmt.Errorf("ends before it starts")
	}
	return lo, hi, nil
}

func (d *decoder) routeList(v *yaml.Node) []Route {
	items, _ := d.list(v, "routes", `[{match: "GET /users/{id}", origin: legacy}]`)
	out := make([]Route, 0, len(items))
	d.routes = make([]routePos, 0, len(items))
	for i, it := range items {
		r, rp := d.route(it, i)
		out = append(out, r)
		d.routes = append(d.routes, rp)
	}
	return out
}

func (d *decoder) route(n *yaml.Node, i int) (Route, routePos) {
	n = deref(n)
	r := Route{Pos: d.pos(n)}
	var rp routePos
	what := "routes[" + strconv.Itoa(i) + "]"
	matchGiven := false
	// name decodes the common case, a plain non-empty value, without
	// building the key path that only messages need.
	name := func(v *yaml.Node, key string) string {
		if v.Kind == yaml.ScalarNode && v.Value != "" {
			return v.Value
		}
		s, _ := d.name(v, what+"."+key)
		return s
	}
	ok := d.fields(n, what, routeKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "match":
			matchGiven = true
			r.MatchPos = d.pos(v)
			if s, ok := d.str(v, what+".match"); ok {
				if strings.TrimSpace(s) == "" {
					d.errorf(v, `%s.match is empty: write [METHOD ][HOST]/path, like "GET /users/{id}" or "/"`, what)
					return
				}
				r.Match = s
			}
		case "origin":
			rp.origin = d.pos(v)
			r.Origin = name(v, key)
		case "function":
			rp.function = d.pos(v)
			r.Function = name(v, key)
		case "payload":
			rp.payload = d.pos(v)
			r.Payload, _ = d.str(v, what+".payload")
		case "fallback_on_status":
			items, _ := d.list(v, what+".fallback_on_status", "[502, 503, 504]")
			for j, it := range items {
				var n int
				d.intField(it, fmt.Sprintf("%s.fallback_on_status[%d]", what, j), &n, 100, "statuses are 100-599")
				if n > 599 {
					d.errorf(it, "%s.fallback_on_status[%d] %d is not an HTTP status: use 100-599", what, j, n)
					continue
				}
				if n != 0 {
					r.FallbackOn = append(r.FallbackOn, n)
				}
			}
		case "fallback_unsafe":
			d.boolean(v, what+".fallback_unsafe", &r.FallbackUnsafe)
		case "fallback_reserve":
			d.duration(v, what+".fallback_reserve", &r.FallbackReserve, "a quarter of the route's timeout")
		case "rate_limit":
			r.RateLimit = d.rateLimit(v, what+".rate_limit", []string{"rps", "burst", "over"})
		case "auto_rollback":
			a := &AutoRollback{}
			w := what + ".auto_rollback"
			d.fields(v, w, []string{"max_error_rate", "max_p99", "window", "min_requests"}, func(key string, _, v *yaml.Node) {
				switch key {
				case "max_error_rate":
					f, err := strconv.ParseFloat(v.Value, 64)
					if v.Kind != yaml.ScalarNode || err != nil || f < 0 || f > 1 {
						d.errorf(v, "%s.max_error_rate must be a number from 0 to 1 (0.01 is 1%%), got %s", w, describe(v))
						return
					}
					a.MaxErrorRate = f
				case "max_p99":
					d.duration(v, w+".max_p99", &a.MaxP99, "remove it to judge errors only")
				case "window":
					d.duration(v, w+".window", &a.Window, "the default 60s")
				case "min_requests":
					d.intField(v, w+".min_requests", &a.MinRequests, 1, "omit it for the default 20")
				}
			})
			if a.MaxErrorRate == 0 && a.MaxP99 == 0 {
				d.errorf(v, "%s needs max_error_rate or max_p99 (or both), like {max_error_rate: 0.01, max_p99: 500ms, window: 60s}", w)
			}
			r.AutoRollback = a
		case "auth":
			if m := deref(v); m.Kind == yaml.MappingNode {
				if j := mapIndexNode(m, "authorizer"); j != nil {
					rp.auth = d.pos(j)
				}
			}
			r.Auth = d.routeAuth(v, what+".auth")
		case "api_key_required":
			d.routeAPIKeyRequired(v, what+".api_key_required", &r, &rp)
		case "cors":
			r.CORS = d.cors(v, what+".cors", true)
		case "canary":
			rp.canary = d.pos(v)
			r.Canary = d.canary(v, what+".canary", &rp)
		case "rollout":
			rp.rollout = d.pos(k)
			r.Rollout = d.rollout(v, what+".rollout", &rp)
		case "shadow":
			rp.shadow = d.pos(v)
			r.Shadow = d.shadow(v, what+".shadow", &rp)
		case "circuit_breaker":
			on := true
			d.boolean(v, what+".circuit_breaker", &on)
			r.NoBreaker = !on
		case "fallback":
			rp.fallback = d.pos(v)
			r.Fallback = name(v, key)
		case "off":
			d.boolean(v, what+".off", &r.Off)
		case "timeout":
			d.duration(v, what+".timeout", &r.Timeout, "the origin's overall timeout")
		}
	})
	if ok && !matchGiven {
		d.errorAt(r.Pos, what+` has no match: add match: with the requests it serves, like match: "GET /users/{id}"`)
	}
	if ok && rp.origin == (Pos{}) && rp.function == (Pos{}) {
		d.errorAt(r.Pos, what+" has no target: add origin: (or function:) with the name of what serves it")
	}
	if rp.origin != (Pos{}) && rp.function != (Pos{}) {
		later := rp.origin
		if before(rp.origin, rp.function) {
			later = rp.function
		}
		d.errorAt(later, what+" sets both origin and function: a route has one target, keep one (fallback names where it falls back to)")
	}
	return r, rp
}

// rateLimit decodes a token bucket (w) with the given keys: a route's
// rate_limit (rps, burst, over) or an API key's (rps, burst).
func (d *decoder) rateLimit(v *yaml.Node, w string, keys []string) *RateLimit {
	rl := &RateLimit{}
	d.fields(v, w, keys, func(key string, _, v *yaml.Node) {
		switch key {
		case "rps":
			f, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || err != nil || f <= 0 {
				d.errorf(v, "%s.rps must be a positive number of requests per second, got %s", w, describe(v))
				return
			}
			rl.RPS = f
		case "burst":
			d.intField(v, w+".burst", &rl.Burst, 1, "omit it for rps rounded up")
		case "over":
			if s, ok := d.str(v, w+".over"); ok {
				if s != "spillover" && s != "reject" {
					d.errorf(v, "%s.over must be spillover (send the excess to the fallback) or reject (429 + Retry-After), got %q", w, s)
					return
				}
				rl.Over = s
			}
		}
	})
	if rl.RPS == 0 {
		d.errorf(v, "%s needs rps, like {rps: 100, burst: 200}", w)
	}
	return rl
}

// isHostName reports whether s is a DNS name: dot-separated labels of
// letters, digits, '-' and '_', at most 253 bytes.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
