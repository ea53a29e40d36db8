package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Info is what the gateway knows about a request beyond the *http.Request.
// Zero fields are derived from the request where possible.
type Info struct {
	// Route is the route's pattern as written in canonical ServeMux form,
	// e.g. "GET /user/{id}" or "ANY /api/{proxy...}". It becomes routeKey
	// ("GET /user/{id}", "ANY /api/{proxy+}"); a route on "/" becomes
	// "$default". A host in the pattern is dropped.
	Route string
	// Resource is the path template for 1.0 resource and resourcePath,
	// e.g. "/user/{id}". "{x...}" is spelled "{x+}" as API Gateway does.
	// Default: the path of Route.
	Resource string
	// PathParams holds the wildcard values, decoded; nil when none.
	PathParams map[string]string
	// Stage is requestContext.stage. Default "$default": turnout serves
	// URLs without a stage prefix. See "Differences from AWS".
	Stage string
	// RequestID is requestContext.requestId.
	RequestID string
	// SourceIP is the client IP without port. Default: the host of
	// Request.RemoteAddr (which is wrong behind a proxy: the gateway
	// should pass the address it trusts).
	SourceIP string
	// Time is when the request started. Default: time.Now().
	Time time.Time
	// DomainName is the request host without port. Default: Request.Host.
	DomainName string
	// Path is the normalised, escaped path that matched the route
	// (URL.EscapedPath()). Default: Request.URL.EscapedPath().
	Path string
	// Authorizer is what the route's authorizer said about the caller,
	// for requestContext.authorizer; nil when the route has none.
	Authorizer *Authorizer
}

// requestTimeLayout is API Gateway's requestTime / time format.
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// Values for requestContext fields that have no meaning outside AWS.
const (
	defaultStage = "$default"
	accountID    = "anonymous"
	apiID        = "turnout"
)

// eventV1 is events.APIGatewayProxyRequest with the fields AWS sends even
// when empty: body is null, not "", and isBase64Encoded is always present.
type eventV1 struct {
	events.APIGatewayProxyRequest
	Body            *string `json:"body"`
	IsBase64Encoded bool    `json:"isBase64Encoded"`
}

// eventV2 is events.APIGatewayV2HTTPRequest without the empty
// authentication block the struct would otherwise always marshal.
type eventV2 struct {
	events.APIGatewayV2HTTPRequest
	RequestContext contextV2 `json:"requestContext"`
}

type contextV2 struct {
	events.APIGatewayV2HTTPRequestContext
	Authentication *events.APIGatewayV2HTTPRequestContextAuthentication `json:"authentication,omitempty"`
}

// common holds what both formats derive the same way.
type common struct {
	routeKey  string
	stage     string
	rawPath   string // escaped, as the client sent it (normalised)
	path      string // decoded: 2.0 requestContext.http.path only
	sourceIP  string
	domain    string
	prefix    string
	time      time.Time
	body      string
	isBase64  bool
	userAgent string
}

func derive(r *http.Request, body []byte, in *Info) common {
	c := common{routeKey: routeKey(in.Route), stage: in.Stage, rawPath: in.Path,
		sourceIP: in.SourceIP, domain: in.DomainName, time: in.Time, userAgent: r.UserAgent()}
	if c.stage == "" {
		c.stage = defaultStage
	}
	if c.rawPath == "" {
		c.rawPath = r.URL.EscapedPath()
	}
	c.path = c.rawPath
	if strings.IndexByte(c.rawPath, '%') >= 0 {
		if p, err := url.PathUnescape(c.rawPath); err == nil {
			c.path = p
		} else {
			c.path = r.URL.Path
		}
	}
	if c.sourceIP == "" {
		c.sourceIP = r.RemoteAddr
		if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			c.sourceIP = h
		}
	}
	if c.domain == "" {
		c.domain = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			c.domain = h
		}
	}
	c.prefix = c.domain
	if i := strings.IndexByte(c.domain, '.'); i > 0 && net.ParseIP(c.domain) == nil {
		c.prefix = c.domain[:i]
	}
	if c.time.IsZero() {
		c.time = time.Now()
	}
	c.time = c.time.UTC()
	c.body, c.isBase64 = encodeBody(r.Header.Get("Content-Type"), body)
	return c
}

// EventV1 returns the JSON of the payload format 1.0 event
// (events.APIGatewayProxyRequest) for r, whose body has been read into body.
func EventV1(r *http.Request, body []byte, in Info) ([]byte, error) {
	ev := buildV1(r, body, in)
	return appendEventV1(make([]byte, 0, sizeV1(ev)), ev)
}

// buildV1 builds the payload format 1.0 event for r.
func buildV1(r *http.Request, body []byte, in Info) *eventV1 {
	c := derive(r, body, &in)
	ev := eventV1{IsBase64Encoded: c.isBase64}
	if len(body) > 0 {
		ev.Body = &c.body
	}
	e := &ev.APIGatewayProxyRequest
	e.Resource = resource(in.Resource, in.Route)
	// The path as the client spelled it, as REST APIs, Function URLs and
	// ALBs deliver it: decoded, "%2B" and "+" or "%3F" and "?" could no
	// longer be told apart.
	e.Path = c.rawPath
	e.HTTPMethod = r.Method
	e.Headers = make(map[string]string, len(r.Header)+1)
	e.MultiValueHeaders = make(map[string][]string, len(r.Header)+1)
	for name, vs := range r.Header {
		if len(vs) == 0 {
			continue
		}
		e.Headers[name] = vs[len(vs)-1]
		e.MultiValueHeaders[name] = slices.Clone(vs)
	}
	if _, ok := r.Header["Host"]; !ok && r.Host != "" {
		e.Headers["Host"] = r.Host
		e.MultiValueHeaders["Host"] = []string{r.Host}
	}
	splitQuery(r.URL.RawQuery, func(k, v string) {
		if e.QueryStringParameters == nil {
			e.QueryStringParameters = map[string]string{}
			e.MultiValueQueryStringParameters = map[string][]string{}
		}
		e.QueryStringParameters[k] = v
		e.MultiValueQueryStringParameters[k] = append(e.MultiValueQueryStringParameters[k], v)
	})
	if len(in.PathParams) > 0 {
		e.PathParameters = in.PathParams
	}
	rc := &e.RequestContext
	rc.AccountID = accountID
	rc.ResourceID = c.routeKey
	rc.Stage = c.stage
	rc.DomainName = c.domain
	rc.DomainPrefix = c.prefix
	rc.RequestID = in.RequestID
	rc.ExtendedRequestID = in.RequestID
	rc.Protocol = r.Proto
	rc.Identity.SourceIP = c.sourceIP
	rc.Identity.UserAgent = c.userAgent
	rc.ResourcePath = e.Resource
	rc.Path = c.rawPath
	if c.stage != defaultStage {
		rc.Path = "/" + c.stage + c.rawPath
	}
	rc.HTTPMethod = r.Method
	rc.RequestTime = c.time.Format(requestTimeLayout)
	rc.RequestTimeEpoch = c.time.UnixMilli()
	rc.APIID = apiID
	rc.Authorizer = in.Authorizer.v1()
	return &ev
}

// EventV2 returns the JSON of the payload format 2.0 event
// (events.APIGatewayV2HTTPRequest) for r, whose body has been read into body.
func EventV2(r *http.Request, body []byte, in Info) ([]byte, error) {
	ev := buildV2(r, body, in)
	return appendEventV2(make([]byte, 0, sizeV2(ev)), ev)
}

// buildV2 builds the payload format 2.0 event for r.
func buildV2(r *http.Request, body []byte, in Info) *eventV2 {
	c := derive(r, body, &in)
	var ev eventV2
	e := &ev.APIGatewayV2HTTPRequest
	e.Version = "2.0"
	e.RouteKey = c.routeKey
	e.RawPath = c.rawPath
	e.RawQueryString = r.URL.RawQuery
	e.Headers = make(map[string]string, len(r.Header)+1)
	for name, vs := range r.Header {
		if len(vs) == 0 {
			continue
		}
		if name == "Cookie" {
			for _, v := range vs {
				e.Cookies = splitCookies(e.Cookies, v)
			}
			continue
		}
		e.Headers[strings.ToLower(name)] = strings.Join(vs, ",")
	}
	if _, ok := e.Headers["host"]; !ok && r.Host != "" {
		e.Headers["host"] = r.Host
	}
	// Repeated keys are collected and joined once: concatenating as they
	// come would be quadratic in the number of repeats.
	var repeated map[string][]string
	splitQuery(r.URL.RawQuery, func(k, v string) {
		if e.QueryStringParameters == nil {
			e.QueryStringParameters = map[string]string{}
		}
		old, ok := e.QueryStringParameters[k]
		if !ok {
			e.QueryStringParameters[k] = v
			return
		}
		if repeated == nil {
			repeated = map[string][]string{}
		}
		if repeated[k] == nil {
			repeated[k] = []string{old}
		}
		repeated[k] = append(repeated[k], v)
	})
	for k, vs := range repeated {
		e.QueryStringParameters[k] = strings.Join(vs, ",")
	}
	if len(in.PathParams) > 0 {
		e.PathParameters = in.PathParams
	}
	e.Body = c.body
	e.IsBase64Encoded = c.isBase64
	rc := &ev.RequestContext
	rc.RouteKey = c.routeKey
	rc.AccountID = accountID
	rc.Stage = c.stage
	rc.RequestID = in.RequestID
	rc.APIID = apiID
	rc.DomainName = c.domain
	rc.DomainPrefix = c.prefix
	rc.Time = c.time.Format(requestTimeLayout)
	rc.TimeEpoch = c.time.UnixMilli()
	rc.HTTP = events.APIGatewayV2HTTPRequestContextHTTPDescription{
		Method: r.Method,
		// Decoded, as both AWS services that send 2.0 events (HTTP APIs
		// and Function URLs) deliver it; rawPath keeps the escapes.
		Path:      c.path,
		Protocol:  r.Proto,
		SourceIP:  c.sourceIP,
		UserAgent: c.userAgent,
	}
	rc.Authorizer = in.Authorizer.v2()
	return &ev
}

// marshal encodes v without HTML escaping, so "<", ">" and "&" in bodies
// and queries reach the function as the client sent them.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// routeKey spells a canonical ServeMux pattern as API Gateway's routeKey:
// "GET /user/{id}", "ANY /api/{proxy+}", or "$default" for a route on "/"
// (which matches every path) or an empty pattern.
func routeKey(pattern string) string {
	method, path := splitPattern(pattern)
	if path == "/" || path == "" {
		return "$default"
	}
	if method == "" {
		method = "ANY"
	}
	return method + " " + awsTemplate(path)
}

// resource is the 1.0 resource: explicit, or the path of the route.
func resource(res, pattern string) string {
	if res == "" {
		_, res = splitPattern(pattern)
	}
	return awsTemplate(res)
}

// splitPattern splits "METHOD host/path" into the method and the path.
func splitPattern(p string) (method, path string) {
	p = strings.TrimSpace(p)
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		method, p = p[:i], strings.TrimLeft(p[i+1:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:] // drop the host
	}
	return method, p
}

// awsTemplate spells ServeMux wildcards as API Gateway does: "{x...}" is
// "{x+}" and a trailing "{$}" (exact match) is dropped.
func awsTemplate(path string) string {
	path = strings.TrimSuffix(path, "{$}")
	if strings.Contains(path, "...}") {
		path = strings.ReplaceAll(path, "...}", "+}")
	}
	return path
}

// splitCookies appends the cookies of one Cookie header value.
func splitCookies(dst []string, v string) []string {
	for v != "" {
		var c string
		c, v, _ = strings.Cut(v, ";")
		if c = strings.TrimSpace(c); c != "" {
			dst = append(dst, c)
		}
	}
	return dst
}

// splitQuery calls fn for each key and value of a raw query in order. Only
// "&" separates pairs: ";" is data (url.ParseQuery would reject it, API
// Gateway splits on it). Empty pairs are skipped; a pair without "=" has the
// value "". Keys and values are decoded as HTML forms are ("+" is a space);
// malformed escapes are kept as written rather than failing the request.
func splitQuery(raw string, fn func(k, v string)) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		fn(unescapeForm(k), unescapeForm(v))
	}
}

// unescapeForm decodes "+" and valid %XX escapes and keeps anything else.
func unescapeForm(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// encodeBody returns the body as the event carries it: text when the
// content type is textual and the bytes are UTF-8, else base64.
func encodeBody(contentType string, body []byte) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	if textual(contentType) && utf8.Valid(body) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

// textual reports whether a Content-Type names text. No type at all counts
// as text, so a form post from a careless client is still readable.
func textual(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(ct, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	typ, sub, _ := strings.Cut(mt, "/")
	switch {
	case typ == "text":
		return true
	case typ != "application":
		return false
	}
	switch sub {
	case "json", "xml", "x-www-form-urlencoded", "javascript":
		return true
	}
	return strings.HasSuffix(sub, "+json") || strings.HasSuffix(sub, "+xml")
}
