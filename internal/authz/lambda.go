package authz

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/turnout/turnout/internal/apigw"
)

// A Lambda authorizer's defaults and limits, as API Gateway's.
const (
	// DefaultLambdaTTL is how long an answer is cached by default
	// (AuthorizerResultTtlInSeconds' default, 300).
	DefaultLambdaTTL = 300 * time.Second
	// MaxLambdaTTL is the longest cache API Gateway allows (3600 s).
	MaxLambdaTTL = time.Hour
	// DefaultLambdaTimeout is how long the function may take by default:
	// API Gateway gives an authorizer 10 s.
	DefaultLambdaTimeout = 10 * time.Second
	// MaxLambdaTimeout bounds timeout: an authorizer slower than API
	// Gateway's 30 s integration limit holds every request it guards.
	MaxLambdaTimeout = 30 * time.Second
	// LambdaCacheEntries bounds each authorizer's result cache; the least
	// recently used answer goes first.
	LambdaCacheEntries = 10000
	// maxCachedAnswer is the largest answer kept in the cache: bigger ones
	// are used once, so the cache stays within LambdaCacheEntries × 16 KiB.
	maxCachedAnswer = 16 << 10
)

// The kinds of Lambda authorizer (LambdaConfig.Type).
const (
	LambdaRequest = "request" // API Gateway's REQUEST: the request's event
	LambdaToken   = "token"   // a REST API's TOKEN: one header's value
)

// ErrLambdaUnauthorized is a TOKEN authorizer's function failing with the
// message "Unauthorized", REST API's way to answer 401.
var ErrLambdaUnauthorized = &Error{http.StatusUnauthorized, "", "the authorizer answered Unauthorized"}

// LambdaConfig is a Lambda authorizer: a function API Gateway calls with
// the request and whose answer decides (API Gateway's Authorizer of type
// REQUEST or TOKEN).
type LambdaConfig struct {
	// Function is the function's name, for messages; the LambdaInvoker
	// given to NewLambda runs it.
	Function string
	// Type is LambdaRequest or LambdaToken.
	Type string
	// PayloadFormatVersion is the REQUEST event's format, "2.0" or "1.0"
	// (AuthorizerPayloadFormatVersion); TOKEN events have one shape.
	PayloadFormatVersion string
	// SimpleResponses: the function answers {"isAuthorized", "context"}
	// instead of an IAM policy (EnableSimpleResponses; 2.0 only).
	SimpleResponses bool
	// IdentitySource names the request values the function needs
	// ("$request.header.NAME", "$request.querystring.NAME",
	// "$context.NAME"): a request without one of them is refused 401
	// without invoking, and they key the cache. A TOKEN authorizer has
	// exactly one, a header.
	IdentitySource []string
	// ResultTTL is how long an answer is cached (0: not cached; at most
	// MaxLambdaTTL).
	ResultTTL time.Duration
	// Timeout is how long an invocation may take before the request is
	// answered 500.
	Timeout time.Duration
}

// contextVars are the $context variables an identity source may name:
// those that say something about the caller or the request, read from
// the request and what the gateway knows of it. $context.requestId and
// the like would make every request a cache miss.
var contextVars = map[string]func(r *http.Request, in *apigw.Info) string{
	"httpMethod":         func(r *http.Request, _ *apigw.Info) string { return r.Method },
	"path":               func(r *http.Request, in *apigw.Info) string { return orDefault(in.Path, r.URL.EscapedPath()) },
	"domainName":         func(r *http.Request, in *apigw.Info) string { return orDefault(in.DomainName, r.Host) },
	"stage":              func(_ *http.Request, in *apigw.Info) string { return orDefault(in.Stage, "$default") },
	"identity.sourceIp":  func(_ *http.Request, in *apigw.Info) string { return in.SourceIP },
	"identity.userAgent": func(r *http.Request, _ *apigw.Info) string { return r.UserAgent() },
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lambdaSource is one identity source: a header, a query parameter or a
// $context variable.
type lambdaSource struct {
	header string // canonical header name, or
	query  string // query parameter name, or
	ctx    func(r *http.Request, in *apigw.Info) string
}

func (s lambdaSource) value(r *http.Request, in *apigw.Info) string {
	switch {
	case s.header != "":
		return strings.Join(r.Header.Values(s.header), ",")
	case s.query != "":
		return strings.Join(r.URL.Query()[s.query], ",")
	}
	return s.ctx(r, in)
}

func parseLambdaSource(s string) (lambdaSource, error) {
	if name, ok := strings.CutPrefix(s, "$request.header."); ok && validName(name) {
		return lambdaSource{header: http.CanonicalHeaderKey(name)}, nil
	}
	if name, ok := strings.CutPrefix(s, "$request.querystring."); ok && validName(name) {
		return lambdaSource{query: name}, nil
	}
	if name, ok := strings.CutPrefix(s, "$context."); ok {
		if f := contextVars[name]; f != nil {
			return lambdaSource{ctx: f}, nil
		}
		return lambdaSource{}, fmt.Errorf("identity_source %q: turnout reads $context.httpMethod, path, domainName, stage, identity.sourceIp and identity.userAgent", s)
	}
	if strings.HasPrefix(s, "$stageVariables.") {
		return lambdaSource{}, fmt.Errorf("identity_source %q: turnout has no stages and so no stage variables; use a header or a query parameter", s)
	}
	return lambdaSource{}, fmt.Errorf("identity_source %q: want $request.header.NAME, $request.querystring.NAME or $context.NAME", s)
}

// Validate checks cfg as NewLambda does, without starting anything.
func (cfg LambdaConfig) Validate() error {
	if cfg.Function == "" {
		return errors.New("function: name the function that decides")
	}
	switch cfg.Type {
	case LambdaRequest:
		if cfg.PayloadFormatVersion != "2.0" && cfg.PayloadFormatVersion != "1.0" {
			return fmt.Errorf(`payload_format_version must be "2.0" or "1.0", got %q`, cfg.PayloadFormatVersion)
		}
		if cfg.SimpleResponses && cfg.PayloadFormatVersion != "2.0" {
			return errors.New(`simple_responses needs payload_format_version "2.0": a 1.0 authorizer answers with an IAM policy`)
		}
	case LambdaToken:
		if cfg.PayloadFormatVersion != "" {
			return errors.New("payload_format_version applies to request authorizers: a token authorizer's event has one shape")
		}
		if cfg.SimpleResponses {
			return errors.New("simple_responses applies to request authorizers with payload 2.0: a token authorizer answers with an IAM policy")
		}
		if len(cfg.IdentitySource) != 1 || !strings.HasPrefix(cfg.IdentitySource[0], "$request.header.") {
			return errors.New("identity_source: a token authorizer reads exactly one header, like [$request.header.Authorization]")
		}
	default:
		return fmt.Errorf("type must be request or token, got %q", cfg.Type)
	}
	for _, s := range cfg.IdentitySource {
		if _, err := parseLambdaSource(s); err != nil {
			return err
		}
	}
	if cfg.ResultTTL < 0 || cfg.ResultTTL > MaxLambdaTTL {
		return fmt.Errorf("result_ttl must be from 0s (no cache) to %s, got %s", MaxLambdaTTL, cfg.ResultTTL)
	}
	if cfg.ResultTTL > 0 && len(cfg.IdentitySource) == 0 {
		return errors.New("identity_source: a cached authorizer needs at least one, its answers are cached by their values; name one, or set result_ttl: 0s")
	}
	if cfg.Timeout <= 0 || cfg.Timeout > MaxLambdaTimeout {
		return fmt.Errorf("timeout must be more than 0 and at most %s, got %s", MaxLambdaTimeout, cfg.Timeout)
	}
	return nil
}

// LambdaInvoker runs the authorizer's function once with event and returns
// its answer. failed says the function failed (it returned an error,
// crashed or ran past its own timeout: Lambda's FunctionError), answer
// then being Lambda's error document ({"errorMessage", "errorType"}); err
// is an invocation that did not complete. requestID names the invocation
// in the function's logs.
type LambdaInvoker func(ctx context.Context, requestID string, event []byte) (answer []byte, failed bool, err error)

// Lambda is a Lambda authorizer. Check is safe for concurrent use.
type Lambda struct {
	cfg     LambdaConfig
	sources []lambdaSource
	invoke  LambdaInvoker

	base   context.Context // the life of shared invocations; Close ends it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cache   *simplelru.LRU[[sha256.Size]byte, cached] // nil when ResultTTL is 0
	flights map[[sha256.Size]byte]*flight
	closed  bool // no flight starts once set
	now     func() time.Time
	lastErr error // the last invocation's failure, nil after a success (status only)
}

// cached is an answer kept for the identity sources' values.
type cached struct {
	ans     *lambdaAnswer
	expires time.Time
}

// flight is an invocation requests with the same identity share.
type flight struct {
	done chan struct{}
	ans  *lambdaAnswer
	took time.Duration
	err  error
}

// NewLambda checks cfg and returns its authorizer, which runs the function
// through invoke.
func NewLambda(cfg LambdaConfig, invoke LambdaInvoker) (*Lambda, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Lambda{cfg: cfg, invoke: invoke, now: time.Now}
	l.cfg.IdentitySource = append([]string(nil), cfg.IdentitySource...)
	for _, s := range cfg.IdentitySource {
		src, _ := parseLambdaSource(s) // checked by Validate
		l.sources = append(l.sources, src)
	}
	l.base, l.cancel = context.WithCancel(context.Background())
	if cfg.ResultTTL > 0 {
		l.cache, _ = simplelru.NewLRU[[sha256.Size]byte, cached](LambdaCacheEntries, nil)
		l.flights = map[[sha256.Size]byte]*flight{}
	}
	return l, nil
}

// Close ends the invocations under way, which then fail, and waits for
// them. A request checked after Close is answered ErrAuthorizerFailed.
func (l *Lambda) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

var _ Checker = (*Lambda)(nil)

// Check runs the function for r, or takes its cached answer for r's
// identity sources: nil when it allows r; ErrNoToken when an identity
// source is missing or empty (the function is not invoked);
// ErrDenied when it says no; ErrAuthorizerFailed when it failed, timed
// out or answered something that is not an answer; ErrLambdaUnauthorized
// when a TOKEN function failed with "Unauthorized". in is what the gateway
// knows of r (route, request id, path parameters); nil derives it all
// from r.
func (l *Lambda) Check(ctx context.Context, r *http.Request, in *apigw.Info) (Result, error) {
	if in == nil {
		in = &apigw.Info{}
	}
	values := make([]string, len(l.sources))
	for i, s := range l.sources {
		if values[i] = s.value(r, in); values[i] == "" {
			return Result{}, ErrNoToken
		}
	}
	arn := apigw.MethodARN(r, *in)
	if l.cache == nil {
		event, err := l.event(r, in, values)
		if err != nil {
			return Result{}, err
		}
		ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		defer cancel()
		ans, took, err := l.run(ctx, in.RequestID, event)
		if err != nil {
			return Result{}, err
		}
		return ans.decide(arn, took, false)
	}

	key := cacheKey(values)
	l.mu.Lock()
	if e, ok := l.cache.Get(key); ok {
		if l.now().Before(e.expires) {
			l.mu.Unlock()
			return e.ans.decide(arn, 0, true)
		}
		l.cache.Remove(key)
	}
	f := l.flights[key]
	if f == nil {
		if l.closed {
			l.mu.Unlock()
			return Result{}, fmt.Errorf("%w: authorizer for function %s is closed", ErrAuthorizerFailed, l.cfg.Function)
		}
		event, err := l.event(r, in, values)
		if err != nil {
			l.mu.Unlock()
			return Result{}, err
		}
		f = &flight{done: make(chan struct{})}
		l.flights[key] = f
		l.wg.Add(1)
		// The invocation is shared, so it outlives the request that
		// started it: a client that hangs up does not fail the others.
		go l.fly(key, f, in.RequestID, event)
	}
	l.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%w: gave up waiting for function %s: %w", ErrAuthorizerFailed, l.cfg.Function, ctx.Err())
	}
	if f.err != nil {
		return Result{}, f.err
	}
	return f.ans.decide(arn, f.took, false)
}

// fly runs the shared invocation f and caches its answer.
func (l *Lambda) fly(key [sha256.Size]byte, f *flight, requestID string, event []byte) {
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(l.base, l.cfg.Timeout)
	f.ans, f.took, f.err = l.run(ctx, requestID, event)
	cancel()
	l.mu.Lock()
	delete(l.flights, key)
	if f.err == nil && f.ans.size <= maxCachedAnswer {
		l.cache.Add(key, cached{ans: f.ans, expires: l.now().Add(l.cfg.ResultTTL)})
	}
	l.mu.Unlock()
	close(f.done)
}

// cacheKey hashes the identity sources' values, each length-prefixed so
// that ["a,b"] and ["a", "b"] differ: the cache keeps no token.
func cacheKey(values []string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, v := range values {
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		h.Write(n[:])
		h.Write([]byte(v))
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// event builds the function's event for r.
func (l *Lambda) event(r *http.Request, in *apigw.Info, values []string) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case l.cfg.Type == LambdaToken:
		b, err = apigw.TokenEvent(r, *in, values[0])
	case l.cfg.PayloadFormatVersion == "1.0":
		b, err = apigw.AuthorizerEventV1(r, *in, values)
	default:
		b, err = apigw.AuthorizerEventV2(r, *in, values)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: cannot build the event for function %s: %w", ErrAuthorizerFailed, l.cfg.Function, err)
	}
	return b, nil
}

// run invokes the function and reads its answer, noting a failure for
// Status.
func (l *Lambda) run(ctx context.Context, requestID string, event []byte) (*lambdaAnswer, time.Duration, error) {
	ans, took, err := l.runOnce(ctx, requestID, event)
	failure := err
	if errors.Is(err, ErrLambdaUnauthorized) {
		failure = nil // the function's own answer, not a failure
	}
	l.mu.Lock()
	l.lastErr = failure
	l.mu.Unlock()
	return ans, took, err
}

// Status reports the authorizer's function, its cached answers and its
// last failure.
func (l *Lambda) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{Kind: "lambda", Function: l.cfg.Function}
	if l.cache != nil {
		st.Cached = l.cache.Len()
	}
	if l.lastErr != nil {
		st.LastError = l.lastErr.Error()
	}
	return st
}

func (l *Lambda) runOnce(ctx context.Context, requestID string, event []byte) (*lambdaAnswer, time.Duration, error) {
	t0 := time.Now()
	payload, failed, err := l.invoke(ctx, requestID, event)
	took := time.Since(t0)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, took, fmt.Errorf("%w: function %s did not answer within %s", ErrAuthorizerFailed, l.cfg.Function, l.cfg.Timeout)
	case err != nil:
		return nil, took, fmt.Errorf("%w: function %s: %w", ErrAuthorizerFailed, l.cfg.Function, err)
	case failed:
		if l.cfg.Type == LambdaToken && errorMessage(payload) == "Unauthorized" {
			return nil, took, ErrLambdaUnauthorized
		}
		return nil, took, fmt.Errorf("%w: function %s failed: %s", ErrAuthorizerFailed, l.cfg.Function, clip(payload, 512))
	}
	ans, err := parseLambdaAnswer(payload, l.cfg.SimpleResponses, l.cfg.Type == LambdaToken || l.cfg.PayloadFormatVersion == "1.0")
	if err != nil {
		return nil, took, fmt.Errorf("%w: function %s answered %v: %s", ErrAuthorizerFailed, l.cfg.Function, err, clip(payload, 512))
	}
	return ans, took, nil
}

func clip(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + fmt.Sprintf("…(%d bytes)", len(b))
}
