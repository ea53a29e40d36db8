// Package config defines turnout's declarative configuration: the YAML schema,
// parsing that keeps every value's file:line:column, and validation that reports
// all errors at once so an invalid file never reaches the data plane.
package config

import (
	"github.com/turnout/turnout/internal/route"

	"fmt"
	"time"
)

// Config is one turnout configuration file.
//
// Two kinds of settings live in it. Node settings (Listen, Admin, Store, Node, Limits)
// belong to one running process and are read from the file given to
// `turnout serve -c` at start; a deployment carries them but a running node
// ignores changes to them until it restarts. Traffic settings (TrustedProxies,
// Legacy, Origins, Routes) are what a deployment changes live.
type Config struct {
	// Listen is the public listener address. Default ":8080".
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// HTTP1Server picks the server of the public plain-HTTP listener:
	// HTTP1ServerTurnout (the default: turnout's own, event loops serving
	// plain origin routes, internal/h1loop, in front of its goroutine
	// server, internal/h1, for everything else), HTTP1ServerGoroutines
	// (the goroutine server alone) or HTTP1ServerNetHTTP (Go's net/http
	// server): the ways back should the first misbehave. HTTPS, HTTP/2 included, is
	// always served by net/http. A node setting.
	HTTP1Server string `yaml:"http1_server" json:"http1_server,omitempty"`
	// Admin configures the admin API listener and its tokens.
	Admin Admin `yaml:"admin" json:"admin"`
	// InvokeAPI configures the AWS Lambda Invoke API listener for hosted
	// functions (node setting).
	InvokeAPI InvokeAPI `yaml:"invoke_api" json:"invoke_api"`
	// Store configures where deployments are kept.
	Store Store `yaml:"store" json:"store"`
	// Node names this node among a fleet's.
	Node Node `yaml:"node" json:"node,omitzero"`
	// Limits bounds what a client may send on the public listener.
	Limits Limits `yaml:"limits" json:"limits"`
	// TLS serves HTTPS with ACME or static certificates (node setting);
	// nil serves plain HTTP only.
	TLS *TLS `yaml:"tls" json:"tls,omitempty"`

	// TrustedProxies lists CIDRs (or single IPs) of proxies in front of turnout
	// whose X-Forwarded-* headers are kept and appended to. From any other peer
	// those headers are replaced.
	TrustedProxies []string `yaml:"trusted_proxies" json:"trusted_proxies,omitempty"`
	// ServedByHeader names the response header that says, on every answer,
	// where it came from: "origin:NAME" or "function:NAME"; the fallback
	// with "; fallback=REASON"; or "turnout; reason=REASON[; target=T]" for
	// an answer turnout wrote itself (429, 502, 504, 404, ...). Default
	// DefaultServedByHeader; "off" (ServedByOff) removes it. A deployment
	// changes it live on every node.
	ServedByHeader string `yaml:"served_by_header" json:"served_by_header,omitempty"`
	// Legacy names the legacy origin: where `turnout route off` sends a route
	// that has no fallback. Default: the origin of the catch-all route "/", or
	// the only origin when there is one.
	Legacy string `yaml:"legacy" json:"legacy,omitempty"`
	// Origins are the HTTP services turnout proxies to, in file order.
	Origins []Origin `yaml:"origins" json:"origins"`
	// Functions are the functions routes can target, in file order: hosted
	// by turnout (Handler) or on AWS Lambda (AWS).
	Functions []Function `yaml:"functions" json:"functions,omitempty"`
	// Routing changes how every route matches requests.
	Routing Routing `yaml:"routing" json:"routing,omitzero"`
	// Routes map request patterns to targets, in file order. Precedence does
	// not depend on order: the most specific pattern wins (net/http.ServeMux).
	Routes []Route `yaml:"routes" json:"routes"`
	// Authorizers are the named authorizers routes' auth: can name.
	Authorizers []Authorizer `yaml:"authorizers" json:"authorizers,omitempty"`
	// APIKeys are the keys routes with api_key_required accept (docs/api-keys.md).
	APIKeys []APIKey `yaml:"api_keys" json:"api_keys,omitempty"`
	// CORS is every route's CORS policy, unless a route has its own (docs/cors.md).
	CORS *CORS `yaml:"cors" json:"cors,omitempty"`

	// table is Routes compiled by Parse, reused by RouteTable.
	table *route.Table
}

// RouteTable returns the route table Parse compiled for c.Routes (pattern i
// is route i), or nil for a Config that did not come from Parse.
func (c *Config) RouteTable() *route.Table { return c.table }

// Pos is a position in a config file.
type Pos struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (p Pos) String() string {
	if p.File == "" {
		return fmt.Sprintf("%d:%d", p.Line, p.Column)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Admin configures the admin listener.
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:8081". It is never the
	// public listener.
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// Tokens grant roles to bearer tokens. With none configured, turnout
	// generates an admin token on first start (see docs/configuration.md).
	Tokens []Token `yaml:"tokens" json:"tokens,omitempty"`
	// MaxBodyBytes limits admin request bodies. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	// TLS serves the admin API over HTTPS. Required when Listen is not a
	// loopback address, unless InsecureNoTLS says why not.
	TLS *AdminTLS `yaml:"tls" json:"tls,omitempty"`
	// InsecureNoTLS allows a non-loopback Listen without TLS (behind a
	// TLS-terminating proxy or on a private network); every start logs a
	// warning that tokens cross the network in clear.
	InsecureNoTLS bool `yaml:"insecure_no_tls" json:"insecure_no_tls,omitempty"`
	// Hosts are extra host names the admin listener answers to (the
	// dashboard behind a name). IP addresses and localhost always work;
	// any other Host header is refused, against DNS rebinding.
	Hosts []string `yaml:"hosts" json:"hosts,omitempty"`
}

// Token is one admin credential. Exactly one of SHA256 or Env is set; the
// plain token is never written in the config or the store.
type Token struct {
	Name string `yaml:"name" json:"name"`
	// Role is viewer, deployer or admin.
	Role string `yaml:"role" json:"role"`
	// SHA256 is the hex SHA-256 of the token (`printf %s TOKEN | sha256sum`).
	SHA256 string `yaml:"sha256" json:"sha256,omitempty"`
	// Env names an environment variable holding the plain token, read at start.
	Env string `yaml:"env" json:"env,omitempty"`
	Pos Pos    `yaml:"-" json:"-"`
}

// InvokeAPI configures the Lambda Invoke API listener.
type InvokeAPI struct {
	// Listen is its address. Default "127.0.0.1:9001"; "off" disables it.
	// It has no authentication: keep it on loopback.
	Listen string `yaml:"listen" json:"listen,omitempty"`
}

// Limits bounds client input on the public listener. Zero values take the
// documented defaults; they are never Go's unlimited zero values.
type Limits struct {
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout,omitempty"` // default 10s
	IdleTimeout       Duration `yaml:"idle_timeout" json:"idle_timeout,omitempty"`               // default 120s
	MaxHeaderBytes    int      `yaml:"max_header_bytes" json:"max_header_bytes,omitempty"`       // default 64 KiB
	MaxBodyBytes      int64    `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`           // buffered paths; default 10 MiB
	DrainTimeout      Duration `yaml:"drain_timeout" json:"drain_timeout,omitempty"`             // default 30s
	// BodyTimeout is the longest a request body may stall between two
	// reads; past it the client gets 408 and the connection is closed.
	// Default 30s.
	BodyTimeout Duration `yaml:"body_timeout" json:"body_timeout,omitempty"`
	// MaxConnections caps concurrent connections per public listener
	// (HTTP and HTTPS each). At the cap, a new client takes the place of
	// the keep-alive connection idle the longest; connections in a request
	// are never closed for it, and when none is idle new clients wait in
	// the kernel's accept queue. Default 10,000.
	MaxConnections int `yaml:"max_connections" json:"max_connections,omitempty"`
	// MaxConcurrentStreams caps concurrent HTTP/2 streams per connection.
	// Default 250.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams" json:"max_concurrent_streams,omitempty"`
}

// Origin is a legacy (or any plain HTTP) service.
type Origin struct {
	// Name is the key under `origins:`.
	Name string `yaml:"name" json:"name"`
	// URLs are the instances, used round-robin. Scheme http or https, no
	// query or fragment; a path prefix is prepended to forwarded paths.
	URLs []string `yaml:"urls" json:"urls"`
	// HostHeader is "client" (default: forward the client's Host) or "origin"
	// (send the instance URL's host).
	HostHeader string         `yaml:"host_header" json:"host_header,omitempty"`
	Timeouts   OriginTimeouts `yaml:"timeouts" json:"timeouts"`
	// HealthCheck, when Path is set, probes every instance actively.
	HealthCheck HealthCheck `yaml:"health_check" json:"health_check"`
	// Passive ejects an instance after consecutive connect failures.
	Passive Passive `yaml:"passive" json:"passive"`
	// MaxIdleConns is the keep-alive pool size per instance. Default 256.
	MaxIdleConns int `yaml:"max_idle_conns" json:"max_idle_conns,omitempty"`

	Pos     Pos   `yaml:"-" json:"-"`
	URLsPos []Pos `yaml:"-" json:"-"`
}

// OriginTimeouts bound each phase of an origin exchange.
type OriginTimeouts struct {
	Dial           Duration `yaml:"dial" json:"dial,omitempty"`                       // default 2s
	ResponseHeader Duration `yaml:"response_header" json:"response_header,omitempty"` // default 30s
	Overall        Duration `yaml:"overall" json:"overall,omitempty"`                 // default 60s; 504 past it
}

// HealthCheck probes instances with GET Path.
type HealthCheck struct {
	Path               string   `yaml:"path" json:"path,omitempty"`
	Interval           Duration `yaml:"interval" json:"interval,omitempty"`                       // default 5s
	Timeout            Duration `yaml:"timeout" json:"timeout,omitempty"`                         // default 1s
	HealthyThreshold   int      `yaml:"healthy_threshold" json:"healthy_threshold,omitempty"`     // default 2
	UnhealthyThreshold int      `yaml:"unhealthy_threshold" json:"unhealthy_threshold,omitempty"` // default 3
	// ExpectStatus is the accepted status range "200-399" (default).
	ExpectStatus string `yaml:"expect_status" json:"expect_status,omitempty"`
}

// Passive configures passive ejection.
type Passive struct {
	// MaxConnectFailures consecutive failures eject the instance. Default 3; -1 disables.
	MaxConnectFailures int `yaml:"max_connect_failures" json:"max_connect_failures,omitempty"`
	// EjectFor is how long an ejected instance is skipped. Default 10s.
	EjectFor Duration `yaml:"eject_for" json:"eject_for,omitempty"`
}

// Routing changes how every route matches requests (a traffic setting).
type Routing struct {
	// CaseInsensitive matches the literal path segments of every route
	// ignoring letter case: "GET /admin" also takes "/ADMIN" and "/Admin".
	// Turn it on in front of an origin that matches paths case-insensitively
	// (IIS, ASP.NET): otherwise "/ADMIN" misses the "/admin" route, reaches
	// the catch-all legacy origin, and the origin serves it as "/admin",
	// past whatever the route guards. The forwarded path and path parameters
	// keep the client's spelling; methods stay case-sensitive and hosts are
	// always matched ignoring case. Two routes that differ only by case are
	// then refused. Default false: case-sensitive, as API Gateway and
	// net/http.ServeMux match.
	CaseInsensitive bool `yaml:"case_insensitive" json:"case_insensitive,omitempty"`
}

// RouteOptions returns how c's route table matches.
func (c *Config) RouteOptions() route.Options {
	return route.Options{CaseInsensitive: c.Routing.CaseInsensitive}
}

// Route sends requests matching a pattern to a target.
type Route struct {
	// Match is a net/http.ServeMux pattern: "[METHOD ][HOST]/path/{name}/{rest...}".
	// API Gateway's "{proxy+}" is accepted as "{proxy...}".
	Match string `yaml:"match" json:"match"`
	// Origin names the origin serving the route. Exactly one of Origin or
	// Function is set.
	Origin string `yaml:"origin" json:"origin,omitempty"`
	// Function names a function from `functions:`.
	Function string `yaml:"function" json:"function,omitempty"`
	// Payload is the API Gateway proxy event format sent to the function:
	// "1.0" (REST API) or "2.0" (HTTP API, the default).
	Payload string `yaml:"payload" json:"payload,omitempty"`
	// Fallback names the origin that serves the route when it is switched off
	// (and, later, when its primary fails).
	Fallback string `yaml:"fallback" json:"fallback,omitempty"`
	// FallbackOn lists primary response statuses that also send the request
	// to the fallback (e.g. [502, 503, 504]); failures to answer at all
	// always do.
	FallbackOn []int `yaml:"fallback_on_status" json:"fallback_on_status,omitempty"`
	// FallbackReserve is the share of the route's timeout kept for the
	// fallback: the primary must answer within timeout − reserve. Default
	// a quarter of the timeout.
	FallbackReserve Duration `yaml:"fallback_reserve" json:"fallback_reserve,omitempty"`
	// NoBreaker turns off the route's circuit breaker: every request then
	// tries the primary first. It is the YAML key circuit_breaker negated
	// (circuit_breaker: false sets it), so it carries no yaml name: a
	// circuit_breaker tag would read the key the wrong way round. Parse sets
	// it (see decode.go), and the zero value keeps the breaker on.
	NoBreaker bool `yaml:"-" json:"no_breaker,omitempty"`
	// RateLimit bounds the requests per second the primary receives.
	RateLimit *RateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	// AutoRollback switches the route off (to its fallback) with a recorded
	// deployment when its primary breaches the limits over a whole window.
	AutoRollback *AutoRollback `yaml:"auto_rollback" json:"auto_rollback,omitempty"`
	// Canary sends a weighted, sticky share of the route's requests to a
	// second target; nil sends them all to the route's own.
	Canary *Canary `yaml:"canary" json:"canary,omitempty"`
	// Rollout moves the route to its canary step by step (docs/rollouts.md);
	// nil leaves the canary's weight to the config.
	Rollout *Rollout `yaml:"rollout" json:"rollout,omitempty"`
	// Shadow mirrors a share of the route's requests to another target
	// and compares the answers (docs/shadow.md); nil mirrors nothing.
	Shadow *Shadow `yaml:"shadow" json:"shadow,omitempty"`
	// Auth names the authorizer the route's requests must pass, and the
	// scopes of which a token must hold one (docs/authorizers.md).
	Auth *RouteAuth `yaml:"auth" json:"auth,omitempty"`
	// APIKeyRequired refuses requests without one of api_keys in x-api-key (docs/api-keys.md).
	APIKeyRequired bool `yaml:"api_key_required" json:"api_key_required,omitempty"`
	// CORS replaces the top-level cors: for this route; Off takes it off (docs/cors.md).
	CORS *CORS `yaml:"cors" json:"cors,omitempty"`
	// FallbackUnsafe lets non-idempotent requests (POST, PATCH) be replayed
	// on the fallback. Off by default: such a request is sent once.
	FallbackUnsafe bool `yaml:"fallback_unsafe" json:"fallback_unsafe,omitempty"`
	// Off sends the route to its fallback (or the legacy origin) instead of
	// its target. `turnout route off|on` sets and clears it.
	Off bool `yaml:"off" json:"off,omitempty"`
	// Timeout bounds the whole request on this route; default the origin's overall timeout.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`

	Pos      Pos `yaml:"-" json:"-"`
	MatchPos Pos `yaml:"-" json:"-"`
}

// RateLimit is a route's token bucket in front of its primary.
type RateLimit struct {
	RPS   float64 `yaml:"rps" json:"rps"`
	Burst int     `yaml:"burst" json:"burst,omitempty"` // default: RPS rounded up
	// Over is what happens past the limit: "spillover" (to the fallback,
	// the default when the route has one) or "reject" (429 + Retry-After).
	Over string `yaml:"over" json:"over,omitempty"`
}

// AutoRollback is a route's automatic rollback rule. At least one of
// MaxErrorRate and MaxP99 is set.
type AutoRollback struct {
	// MaxErrorRate is the highest tolerated share of failed primary
	// attempts, 0–1 (0.01 = 1 %).
	MaxErrorRate float64 `yaml:"max_error_rate" json:"max_error_rate,omitempty"`
	// MaxP99 is the highest tolerated 99th-percentile primary latency.
	MaxP99 Duration `yaml:"max_p99" json:"max_p99,omitempty"`
	// Window is how long the breach must last. Default 60s.
	Window Duration `yaml:"window" json:"window,omitempty"`
	// MinRequests in the window before a judgement. Default 20.
	MinRequests int `yaml:"min_requests" json:"min_requests,omitempty"`
}

// Function is a function a route can target. Exactly one of Handler (hosted
// by turnout) or AWS is set.
type Function struct {
	// Name is the key under `functions:`.
	Name string `yaml:"name" json:"name"`
	// Handler is the executable speaking the Lambda Runtime API: a binary
	// built with aws-lambda-go, or a custom runtime's bootstrap. Relative
	// paths are relative to the working directory of `turnout serve`.
	Handler string            `yaml:"handler" json:"handler,omitempty"`
	Args    []string          `yaml:"args" json:"args,omitempty"`
	Env     map[string]string `yaml:"env" json:"env,omitempty"`
	// Timeout bounds one invocation. Default 29s, like API Gateway.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// MemoryMB is reported to the runtime (AWS_LAMBDA_FUNCTION_MEMORY_SIZE). Default 128.
	MemoryMB int `yaml:"memory_mb" json:"memory_mb,omitempty"`
	// Concurrency is the most invocations at once (one per instance).
	// Default DefaultConcurrency(): 4 per CPU of the machine that serves
	// the function, and at least 10.
	Concurrency int `yaml:"concurrency" json:"concurrency,omitempty"`
	// MinInstances are kept warm. Default 0.
	MinInstances int `yaml:"min_instances" json:"min_instances,omitempty"`
	// IdleTimeout stops an instance unused this long (above MinInstances). Default 5m.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout,omitempty"`
	// InitTimeout bounds a cold start until the runtime asks for work. Default 10s.
	InitTimeout Duration `yaml:"init_timeout" json:"init_timeout,omitempty"`
	// QueueSize is how many invocations may wait, first come first
	// served, for a free instance at the concurrency limit; past it they
	// are throttled (429). Default: as many as Concurrency, so a burst of
	// twice the limit is absorbed. 0 turns the queue off (throttle at
	// once, as AWS Lambda does); nil means the default.
	QueueSize *int `yaml:"queue_size" json:"queue_size,omitempty"`
	// QueueTimeout is how long a queued invocation may wait before it is
	// throttled. Default 1s: a few handler durations of a typical API,
	// and short enough that a route's fallback can still answer in time.
	// A waiter whose client goes away leaves the queue at once.
	QueueTimeout Duration `yaml:"queue_timeout" json:"queue_timeout,omitempty"`
	// MaxRequestBytes and MaxResponseBytes bound payloads. Default 6 MB each.
	MaxRequestBytes  int64 `yaml:"max_request_bytes" json:"max_request_bytes,omitempty"`
	MaxResponseBytes int64 `yaml:"max_response_bytes" json:"max_response_bytes,omitempty"`
	// AWS invokes the function on AWS Lambda instead.
	AWS *AWSFunction `yaml:"aws" json:"aws,omitempty"`

	Pos Pos `yaml:"-" json:"-"`
}

// AWSFunction is a function on AWS Lambda, invoked with the default
// credential chain.
type AWSFunction struct {
	// Function is a name or ARN, optionally with ":qualifier".
	Function string `yaml:"function" json:"function"`
	Region   string `yaml:"region" json:"region,omitempty"`
	// Endpoint overrides the Lambda endpoint (e.g. another turnout's Invoke API).
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("1.5s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
