package config

import (
	_ "embed"
	"slices"
	"time"

	"github.com/turnout/turnout/internal/route"
)

// The documented defaults, applied by WithDefaults.
// The served-by header (Config.ServedByHeader): its default name, and the
// value that turns it off.
const (
	DefaultServedByHeader = "X-Turnout-Served-By"
	ServedByOff           = "off"
)

// The values of Config.HTTP1Server.
const (
	HTTP1ServerTurnout    = "turnout"
	HTTP1ServerNetHTTP    = "net/http"
	HTTP1ServerGoroutines = "turnout-goroutines"
)

// ServedBy returns the served-by header's name, DefaultServedByHeader when
// unset, or "" when it is off.
func (c *Config) ServedBy() string {
	switch c.ServedByHeader {
	case ServedByOff:
		return ""
	case "":
		return DefaultServedByHeader
	}
	return c.ServedByHeader
}

const (
	defaultListen             = ":8080"
	defaultAdminListen        = "127.0.0.1:8081"
	defaultAdminMaxBodyBytes  = 8 << 20
	defaultStorePath          = "turnout.db"
	defaultInvokeAPIListen    = "127.0.0.1:9001"
	defaultReadHeaderTimeout  = Duration(10 * time.Second)
	defaultIdleTimeout        = Duration(120 * time.Second)
	defaultMaxHeaderBytes     = 64 << 10
	defaultMaxBodyBytes       = 10 << 20
	defaultDrainTimeout       = Duration(30 * time.Second)
	defaultHostHeader         = "client"
	defaultDialTimeout        = Duration(2 * time.Second)
	defaultResponseHeader     = Duration(30 * time.Second)
	defaultOverallTimeout     = Duration(60 * time.Second)
	defaultHealthInterval     = Duration(5 * time.Second)
	defaultHealthTimeout      = Duration(1 * time.Second)
	defaultHealthyThreshold   = 2
	defaultUnhealthyThreshold = 3
	defaultExpectStatus       = "200-399"
	defaultMaxConnectFailures = 3
	defaultEjectFor           = Duration(10 * time.Second)
	defaultMaxIdleConns       = 256
)

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// WithDefaults returns a copy of c with every documented default filled in,
// so that code serving a config never mistakes a zero for "unlimited". c is
// not changed and the copy shares no slices with it.
//
// Health check settings are filled in only for origins whose HealthCheck.Path
// is set: without a path there is no active health check. A route's Timeout
// defaults to its origin's overall timeout; a route without an origin keeps 0.
// Legacy is not filled in; LegacyOrigin says which origin it resolves to.
func (c *Config) WithDefaults() *Config {
	out := *c
	out.Admin.Tokens = slices.Clone(c.Admin.Tokens)
	out.TrustedProxies = slices.Clone(c.TrustedProxies)
	out.Origins = slices.Clone(c.Origins)
	out.Routes = slices.Clone(c.Routes)
	for i := range out.Routes {
		r := &out.Routes[i]
		r.FallbackOn = slices.Clone(r.FallbackOn)
		if r.Canary != nil {
			c := *r.Canary
			c.Sticky = orDefault(c.Sticky, StickyIP)
			r.Canary = &c
		}
		if r.Rollout != nil {
			ro := *r.Rollout
			ro.Steps = slices.Clone(ro.Steps)
			r.Rollout = &ro
		}
		if r.Shadow != nil {
			r.Shadow = r.Shadow.withDefaults()
		}
		if r.Rollout != nil && r.Rollout.Shadow != nil {
			g := *r.Rollout.Shadow
			r.Rollout.Shadow = &g
		}
		if r.AutoRollback != nil {
			a := *r.AutoRollback
			a.Window = orDefault(a.Window, Duration(60e9))
			a.MinRequests = orDefault(a.MinRequests, 20)
			r.AutoRollback = &a
		}
	}
	out.Functions = slices.Clone(c.Functions)
	for i := range out.Functions {
		functionDefaults(&out.Functions[i])
	}

	out.Listen = orDefault(out.Listen, defaultListen)
	out.HTTP1Server = orDefault(out.HTTP1Server, HTTP1ServerTurnout)
	out.Admin.Listen = orDefault(out.Admin.Listen, defaultAdminListen)
	out.Admin.MaxBodyBytes = orDefault(out.Admin.MaxBodyBytes, defaultAdminMaxBodyBytes)
	out.Store = storeDefaults(c.Store)
	out.ServedByHeader = orDefault(out.ServedByHeader, DefaultServedByHeader)
	out.InvokeAPI.Listen = orDefault(out.InvokeAPI.Listen, defaultInvokeAPIListen)

	l := &out.Limits
	l.ReadHeaderTimeout = orDefault(l.ReadHeaderTimeout, defaultReadHeaderTimeout)
	l.IdleTimeout = orDefault(l.IdleTimeout, defaultIdleTimeout)
	l.MaxHeaderBytes = orDefault(l.MaxHeaderBytes, defaultMaxHeaderBytes)
	l.MaxBodyBytes = orDefault(l.MaxBodyBytes, defaultMaxBodyBytes)
	l.DrainTimeout = orDefault(l.DrainTimeout, defaultDrainTimeout)
	l.BodyTimeout = orDefault(l.BodyTimeout, defaultBodyTimeout)
	l.MaxConnections = orDefault(l.MaxConnections, defaultMaxConnections)
	l.MaxConcurrentStreams = orDefault(l.MaxConcurrentStreams, defaultMaxConcurrentStream)
	out.TLS = tlsDefaults(c.TLS)

	overall := make(map[string]Duration, len(out.Origins))
	for i := range out.Origins {
		o := &out.Origins[i]
		o.URLs = slices.Clone(o.URLs)
		o.URLsPos = slices.Clone(o.URLsPos)
		o.HostHeader = orDefault(o.HostHeader, defaultHostHeader)
		o.Timeouts.Dial = orDefault(o.Timeouts.Dial, defaultDialTimeout)
		o.Timeouts.ResponseHeader = orDefault(o.Timeouts.ResponseHeader, defaultResponseHeader)
		o.Timeouts.Overall = orDefault(o.Timeouts.Overall, defaultOverallTimeout)
		if h := &o.HealthCheck; h.Path != "" {
			h.Interval = orDefault(h.Interval, defaultHealthInterval)
			h.Timeout = orDefault(h.Timeout, defaultHealthTimeout)
			h.HealthyThreshold = orDefault(h.HealthyThreshold, defaultHealthyThreshold)
			h.UnhealthyThreshold = orDefault(h.UnhealthyThreshold, defaultUnhealthyThreshold)
			h.ExpectStatus = orDefault(h.ExpectStatus, defaultExpectStatus)
		}
		o.Passive.MaxConnectFailures = orDefault(o.Passive.MaxConnectFailures, defaultMaxConnectFailures)
		o.Passive.EjectFor = orDefault(o.Passive.EjectFor, defaultEjectFor)
		o.MaxIdleConns = orDefault(o.MaxIdleConns, defaultMaxIdleConns)
		if _, dup := overall[o.Name]; !dup {
			overall[o.Name] = o.Timeouts.Overall
		}
	}
	for i := range out.Routes {
		r := &out.Routes[i]
		if r.Timeout == 0 && r.Origin != "" {
			r.Timeout = overall[r.Origin]
		}
		if (r.Function != "" || r.Canary != nil && r.Canary.Function != "" || r.Shadow != nil && r.Shadow.Function != "") && r.Payload == "" {
			r.Payload = defaultFunctionPayload
		}
	}
	return &out
}

// LegacyOrigin returns the name of the legacy origin: Legacy when set, else
// the origin of the catch-all route "/" (any method, no host), else the only
// origin; "" when none of these applies (Parse rejects such a config when it
// has several origins).
func (c *Config) LegacyOrigin() string {
	if c.Legacy != "" {
		return c.Legacy
	}
	for _, r := range c.Routes {
		if r.Origin != "" && route.Canonical(r.Match) == "/" {
			return r.Origin
		}
	}
	if len(c.Origins) == 1 {
		return c.Origins[0].Name
	}
	return ""
}

// StatusRange returns the inclusive range of statuses a health probe
// accepts: ExpectStatus ("200" or "200-399"), or 200-399 when it is unset.
func (h HealthCheck) StatusRange() (lo, hi int) {
	lo, hi, err := parseStatusRange(orDefault(h.ExpectStatus, defaultExpectStatus))
	if err != nil { // Parse rejects it; keep the default for hand-built values
		return 200, 399
	}
	return lo, hi
}

//go:embed default.yaml
var defaultYAML string

// Default returns the default configuration file: a gateway on :8080 that
// sends everything to a legacy service on 127.0.0.1:9000, with the other
// settings written out in comments as a reference. It parses without error.
func Default() []byte { return []byte(defaultYAML) }
