// Package cors is a route's CORS policy, as API Gateway HTTP API's
// corsConfiguration declares one, answering as the Fetch standard's CORS
// protocol reads it (https://fetch.spec.whatwg.org/#http-cors-protocol):
// whether a request is a preflight, the headers that answer it, and the
// headers that decorate an actual response. A Policy is compiled once per
// route table and is immutable; its methods are pure functions of the
// request's headers.
//
// Where API Gateway's documentation leaves a choice open, the Fetch rules
// decide (docs/cors.md):
//   - "*" in allow_headers or allow_methods answers with what the preflight
//     asked for, since a browser reads "*" literally on a request with
//     credentials, and never lets "*" cover Authorization;
//   - "*" in expose_headers answers "*" without credentials and, with them,
//     the names of the response's own headers;
//   - a preflight asking for a method or a header the policy does not allow
//     is refused (no CORS headers), as the browser would refuse its answer.
package cors

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// MaxAgeLimit is the longest max_age, in seconds (API Gateway's limit).
const MaxAgeLimit = 86400

// Config is a policy as declared: the keys of API Gateway HTTP API's
// corsConfiguration.
type Config struct {
	// AllowOrigins are the origins allowed to read answers: "*" (any, not
	// with AllowCredentials), "scheme://host[:port]", or a subdomain
	// wildcard "scheme://*.example.com[:port]".
	AllowOrigins []string
	// AllowMethods are the methods a preflight may ask for, or "*".
	// GET, HEAD and POST need no listing (the CORS-safelisted methods).
	AllowMethods []string
	// AllowHeaders are the request headers a preflight may ask for, or "*".
	AllowHeaders []string
	// ExposeHeaders are the response headers a page may read beyond the
	// CORS-safelisted ones, or "*".
	ExposeHeaders []string
	// MaxAge is how long, in seconds, a browser may keep a preflight's
	// answer; 0 sends no Access-Control-Max-Age (the browser's default,
	// 5 s in Chromium and Firefox).
	MaxAge int
	// AllowCredentials lets pages send cookies and HTTP authentication and
	// read the answers.
	AllowCredentials bool
}

// Policy is a compiled Config.
type Policy struct {
	anyOrigin bool
	origins   []string   // exact serialized origins
	wildcards []wildcard // subdomain wildcards

	anyMethod    bool
	methods      []string
	allowMethods []string // the Access-Control-Allow-Methods value

	anyHeader    bool
	headers      []string // lower case
	allowHeaders []string // the Access-Control-Allow-Headers value

	anyExpose     bool
	exposeHeaders []string // the Access-Control-Expose-Headers value

	maxAge      []string // the Access-Control-Max-Age value, nil for none
	credentials bool
}

// wildcard is a "scheme://*.domain[:port]" origin: any origin of that
// scheme and port whose host is a subdomain of domain (not domain itself).
type wildcard struct {
	prefix string // "https://"
	suffix string // ".example.com:8443"
}

func (w wildcard) match(origin string) bool {
	if len(origin) <= len(w.prefix)+len(w.suffix) || !strings.HasPrefix(origin, w.prefix) || !strings.HasSuffix(origin, w.suffix) {
		return false
	}
	// The subdomain part: DNS labels, without a port or anything else.
	sub := origin[len(w.prefix) : len(origin)-len(w.suffix)]
	return isDNSName(sub)
}

// The header names, canonical.
const (
	hOrigin           = "Origin"
	hVary             = "Vary"
	hAllowOrigin      = "Access-Control-Allow-Origin"
	hAllowCredentials = "Access-Control-Allow-Credentials"
	hAllowMethods     = "Access-Control-Allow-Methods"
	hAllowHeaders     = "Access-Control-Allow-Headers"
	hExposeHeaders    = "Access-Control-Expose-Headers"
	hMaxAge           = "Access-Control-Max-Age"
	hRequestMethod    = "Access-Control-Request-Method"
	hRequestHeaders   = "Access-Control-Request-Headers"
)

// responseHeaders are the CORS response headers: a backend's are dropped
// on a route with a policy, as API Gateway ignores them.
var responseHeaders = []string{hAllowOrigin, hAllowCredentials, hAllowMethods, hAllowHeaders, hExposeHeaders, hMaxAge}

var (
	valStar = []string{"*"}
	valTrue = []string{"true"}
)

// New compiles c, or says what is wrong with it.
func New(c Config) (*Policy, error) {
	p := &Policy{credentials: c.AllowCredentials}
	var errs []error
	if len(c.AllowOrigins) == 0 {
		errs = append(errs, errors.New("allow_origins is empty: list the origins allowed, like [https://app.example.com]"))
	}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		norm, wild, err := ParseOrigin(o)
		switch {
		case err != nil:
			errs = append(errs, err)
		case wild:
			i := strings.Index(norm, "*")
			p.wildcards = append(p.wildcards, wildcard{prefix: norm[:i], suffix: norm[i+1:]})
		default:
			p.origins = append(p.origins, norm)
		}
	}
	if p.anyOrigin && len(c.AllowOrigins) > 1 {
		errs = append(errs, errors.New(`allow_origins has "*" and other origins: "*" allows every origin, keep it alone or list the origins`))
	}
	if p.anyOrigin && c.AllowCredentials {
		errs = append(errs, errors.New(`allow_credentials is true with "*" in allow_origins: browsers refuse credentials with "*" (and API Gateway refuses this configuration); list the origins`))
	}
	for _, m := range c.AllowMethods {
		switch {
		case m == "*":
			p.anyMethod = true
		case !IsToken(m):
			errs = append(errs, fmt.Errorf("allow_methods: %q is not a method (a token, like PUT)", m))
		default:
			p.methods = append(p.methods, m)
		}
	}
	p.allowMethods = joined(p.methods)
	var err error
	p.anyHeader, p.headers, err = headerList("allow_headers", c.AllowHeaders)
	if err != nil {
		errs = append(errs, err)
	}
	p.allowHeaders = joined(p.headers)
	var expose []string
	p.anyExpose, expose, err = headerList("expose_headers", c.ExposeHeaders)
	if err != nil {
		errs = append(errs, err)
	}
	p.exposeHeaders = joined(expose)
	if p.anyExpose && !p.credentials {
		p.exposeHeaders = valStar
	}
	switch {
	case c.MaxAge < 0 || c.MaxAge > MaxAgeLimit:
		errs = append(errs, fmt.Errorf("max_age %d is out of range: use 0 to %d seconds", c.MaxAge, MaxAgeLimit))
	case c.MaxAge > 0:
		p.maxAge = []string{strconv.Itoa(c.MaxAge)}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// headerList compiles a list of header names, lower case, or "*".
func headerList(key string, names []string) (star bool, out []string, err error) {
	for _, h := range names {
		switch {
		case h == "*":
			star = true
		case !IsToken(h):
			return false, nil, fmt.Errorf("%s: %q is not a header name (a token, like X-Request-Id)", key, h)
		default:
			if l := strings.ToLower(h); !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return star, out, nil
}

// joined is a list header's value, nil for none.
func joined(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	return []string{strings.Join(names, ", ")}
}

// ParseOrigin checks an allowed origin, "scheme://host[:port]" or
// "scheme://*.domain[:port]" (wild), and returns it serialized as a browser
// sends it in Origin: scheme and host in lower case, without the scheme's
// default port.
func ParseOrigin(s string) (norm string, wild bool, err error) {
	bad := func(why string) (string, bool, error) {
		return "", false, fmt.Errorf("allow_origins: %q is not an origin: %s; write scheme://host[:port], like https://app.example.com, or https://*.example.com for its subdomains", s, why)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !isScheme(scheme) {
		return bad("no scheme")
	}
	scheme = strings.ToLower(scheme)
	if rest == "" {
		return bad("no host")
	}
	if strings.ContainsAny(rest, "/?#@") {
		return bad("an origin has no path, query, fragment or user")
	}
	host, port := rest, ""
	if h, p, err := net.SplitHostPort(rest); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return bad("port " + port + " is not 1-65535")
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	} else if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest // an IPv6 address without a port
	} else if strings.Contains(rest, ":") {
		return bad("malformed port")
	}
	host = strings.ToLower(host)
	switch {
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"):
		if net.ParseIP(host[1:len(host)-1]) == nil {
			return bad("not an IPv6 address")
		}
	case strings.HasPrefix(host, "*."):
		d := host[2:]
		if !isDNSName(d) || !strings.Contains(d, ".") {
			return bad("a wildcard covers the subdomains of a domain of two labels or more, like *.example.com")
		}
		wild = true
	case strings.Contains(host, "*"):
		return bad(`"*" may only be the first label, as in *.example.com`)
	case !isDNSName(host):
		return bad("the host is not a DNS name or IP address")
	}
	if port != "" && !(scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		host += ":" + port
	}
	return scheme + "://" + host, wild, nil
}

// isScheme reports an RFC 3986 scheme: a letter, then letters, digits, +, - and ..
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !('a' <= c && c <= 'z' || i > 0 && ('0' <= s[i] && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
			return false
		}
	}
	return true
}

// isDNSName reports dot-separated labels of letters, digits and '-'
// (IPv4 addresses included).
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// IsToken reports an RFC 9110 token: what a method or a header name is.
func IsToken(s string) bool { return httpguts.ValidHeaderFieldName(s) }

// IsPreflight reports a CORS preflight (Fetch, "CORS-preflight request"):
// OPTIONS with one Origin and one Access-Control-Request-Method naming a
// method. It returns the method asked for.
func IsPreflight(r *http.Request) (method string, ok bool) {
	if r.Method != http.MethodOptions {
		return "", false
	}
	m := r.Header[hRequestMethod]
	if len(m) != 1 || !IsToken(m[0]) || len(r.Header[hOrigin]) != 1 {
		return "", false
	}
	return m[0], true
}

// allowsOrigin reports whether origin (a request's Origin, as sent) may
// read answers.
func (p *Policy) allowsOrigin(origin string) bool {
	if p.anyOrigin {
		return true
	}
	if slices.Contains(p.origins, origin) {
		return true
	}
	for _, w := range p.wildcards {
		if w.match(origin) {
			return true
		}
	}
	return false
}

// VariesByOrigin reports whether the answers depend on the request's
// Origin, when they carry Vary: Origin (Fetch, "CORS protocol and HTTP
// caches"): always but for "*" without credentials.
func (p *Policy) VariesByOrigin() bool { return !p.anyOrigin || p.credentials }

// setOrigin sets Access-Control-Allow-Origin (and -Credentials) for an
// allowed origin: "*" when any origin may read without credentials, else
// the origin itself (a browser refuses "*" with credentials).
func (p *Policy) setOrigin(h http.Header, origin string) {
	if p.anyOrigin && !p.credentials {
		h[hAllowOrigin] = valStar
	} else {
		h[hAllowOrigin] = []string{origin}
	}
	if p.credentials {
		h[hAllowCredentials] = valTrue
	}
}

// Preflight answers a preflight (r, asking for method, as IsPreflight
// found) in h: the Access-Control-Allow-* headers when its origin, its
// method and every header it asks for are allowed, else none (the browser
// then fails the request) and an error saying which was not. Vary is set
// either way.
func (p *Policy) Preflight(h http.Header, r *http.Request, method string) error {
	vary := []string{hRequestMethod, hRequestHeaders}
	if p.VariesByOrigin() {
		vary = []string{hOrigin, hRequestMethod, hRequestHeaders}
	}
	addVary(h, vary...)
	origin := r.Header[hOrigin][0]
	if !p.allowsOrigin(origin) {
		return errors.New("origin " + origin + " is not allowed")
	}
	if !p.anyMethod && !slices.Contains(p.methods, method) && !safelistedMethod(method) {
		return errors.New("method " + method + " is not allowed")
	}
	asked, ok := requestHeaders(r.Header[hRequestHeaders])
	if !ok {
		return errors.New("the requested headers are not a list of header names")
	}
	if !p.anyHeader {
		for _, a := range asked {
			if !slices.Contains(p.headers, strings.ToLower(a)) {
				return errors.New("header " + a + " is not allowed")
			}
		}
	}
	p.setOrigin(h, origin)
	switch {
	case p.anyMethod:
		h[hAllowMethods] = []string{method}
	case p.allowMethods != nil:
		h[hAllowMethods] = p.allowMethods
	}
	switch {
	case p.anyHeader && len(asked) > 0:
		h[hAllowHeaders] = []string{strings.Join(asked, ", ")}
	case !p.anyHeader && p.allowHeaders != nil:
		h[hAllowHeaders] = p.allowHeaders
	}
	if p.maxAge != nil {
		h[hMaxAge] = p.maxAge
	}
	return nil
}

// safelistedMethod reports a CORS-safelisted method, which a preflight's
// answer need not list.
func safelistedMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "POST" }

// requestHeaders splits Access-Control-Request-Headers: comma-separated
// tokens, whitespace around them allowed, possibly on several lines.
func requestHeaders(vs []string) ([]string, bool) {
	var out []string
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if !IsToken(f) {
				return nil, false
			}
			out = append(out, f)
		}
	}
	return out, true
}

// Decorate sets the CORS headers of an actual response, whose headers h
// are final, to a request whose Origin header was origin ("" for none):
// any CORS header the backend set is dropped (as API Gateway ignores
// them), then, for an allowed origin, Access-Control-Allow-Origin,
// -Allow-Credentials and -Expose-Headers are set; Vary gets Origin when
// the answer depends on it, on every response, so a shared cache keeps
// answers to different origins apart.
func (p *Policy) Decorate(h http.Header, origin string) {
	for _, k := range responseHeaders {
		delete(h, k)
	}
	if p.VariesByOrigin() {
		addVary(h, hOrigin)
	}
	if origin == "" || !p.allowsOrigin(origin) {
		return
	}
	p.setOrigin(h, origin)
	switch {
	case p.anyExpose && p.credentials:
		// "*" is literal with credentials: name the response's headers.
		names := make([]string, 0, len(h))
		for k := range h {
			if k != hVary && !strings.HasPrefix(k, "Access-Control-") {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		if exp := p.exposeHeaders; exp != nil {
			names = append(names, exp[0])
		}
		if len(names) > 0 {
			h[hExposeHeaders] = []string{strings.Join(names, ", ")}
		}
	case p.exposeHeaders != nil:
		h[hExposeHeaders] = p.exposeHeaders
	}
}

// addVary adds names to h's Vary, unless it is "*" or lists them already;
// it never writes into the slice h holds (a backend's, maybe shared).
func addVary(h http.Header, names ...string) {
	old := h[hVary]
	var add []string
	for _, n := range names {
		if !varyHas(old, n) {
			add = append(add, n)
		}
	}
	if len(add) == 0 {
		return
	}
	v := strings.Join(add, ", ")
	if len(old) == 0 {
		h[hVary] = []string{v}
		return
	}
	h[hVary] = append(old[:len(old):len(old)], v)
}

// varyHas reports whether the Vary values vs name n or "*".
func varyHas(vs []string, n string) bool {
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, n) {
				return true
			}
		}
	}
	return false
}

// Origin returns r's Origin header when it has exactly one, else "".
func Origin(r *http.Request) string {
	if v := r.Header[hOrigin]; len(v) == 1 {
		return v[0]
	}
	return ""
}
