package awsimport

import (
	"fmt"
	"net/url"
	"strings"
)

// API Gateway routing, as the import reads it (docs/import.md, "API
// Gateway paths"): a request's path selects the most specific resource
// path that matches it — at the first segment where two differ, a literal
// beats {name}, which beats a greedy {name+}; {name+} takes one or more
// segments and never its parent path ("/a/{p+}" does not take "/a" or
// "/a/"). A REST API then takes the resource's own method, else its ANY
// (x-amazon-apigateway-any-method), else answers 403 ("Missing
// Authentication Token"): a method never falls through to another
// resource. An HTTP API picks, among the routes whose method (or ANY)
// matches, the most specific path, a method before ANY on the same path,
// else its $default route, else 404. HEAD is a method of its own in both.

// apiRoute is one operation (path and method) of an API.
type apiRoute struct {
	from   string
	loc    Loc
	path   string // the resource path, with its leading "/"; "" for $default
	kinds  []byte // per segment: 'l' literal, 'p' {name}, 'g' {name+}
	segs   []string
	method string // "ANY" for x-amazon-apigateway-any-method
	target string // "origin:NAME", "function:NAME", or "integration:TYPE" (not carried over)
}

// apiRouter routes as API Gateway does.
type apiRouter struct {
	http   bool // an HTTP API; a REST API otherwise
	paths  Loc  // the export's paths
	routes []apiRoute
	ms     []matcher
}

func (r *apiRouter) Route(method, path string) Decision {
	best := -1
	for i, rt := range r.routes {
		if rt.path == "" || !apiPathMatch(rt.segs, path) {
			continue
		}
		if r.http && rt.method != method && rt.method != "ANY" {
			continue
		}
		if best < 0 || r.better(i, best, method) {
			best = i
		}
	}
	if best >= 0 && !r.http {
		// REST: the resource is chosen; now its method.
		path, loc := r.routes[best].path, r.routes[best].loc
		best = -1
		for i, rt := range r.routes {
			if rt.path == path && (rt.method == method || rt.method == "ANY" && best < 0) {
				best = i
			}
		}
		if best < 0 {
			return Decision{Status: 403, By: fmt.Sprintf("resource %s lacks the method", path), Rule: -1, Loc: loc}
		}
	}
	if best < 0 {
		for i, rt := range r.routes {
			if rt.path == "" && r.http {
				best = i
			}
		}
	}
	if best < 0 {
		if r.http {
			return Decision{Status: 404, By: "no route", Rule: -1, Loc: r.paths}
		}
		return Decision{Status: 403, By: "no resource (Missing Authentication Token)", Rule: -1, Loc: r.paths}
	}
	rt := r.routes[best]
	return Decision{Target: rt.target, By: rt.from, Rule: best}
}

// better reports whether route i is more specific than route j for method.
func (r *apiRouter) better(i, j int, method string) bool {
	a, b := r.routes[i].kinds, r.routes[j].kinds
	for k := 0; k < len(a) && k < len(b); k++ {
		if a[k] != b[k] {
			return rank(a[k]) < rank(b[k])
		}
	}
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return r.routes[i].method == method && r.routes[j].method != method
}

func rank(k byte) int { return strings.IndexByte("lpg", k) }

// apiPathMatch reports whether a resource path, split in segments (none
// for "/"), takes path: a literal segment equal, {name} one non-empty
// segment, {name+} the rest when it is at least one non-empty segment.
func apiPathMatch(segs []string, path string) bool {
	rest := path[1:]
	if len(segs) == 0 {
		return rest == ""
	}
	for i, seg := range segs {
		if strings.HasSuffix(seg, "+}") && strings.HasPrefix(seg, "{") {
			return rest != "" && rest[0] != '/'
		}
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			j = len(rest)
		}
		cur := rest[:j]
		if strings.HasPrefix(seg, "{") {
			if cur == "" {
				return false
			}
		} else if cur != seg {
			return false
		}
		if i == len(segs)-1 {
			return j == len(rest)
		}
		if j == len(rest) {
			return false
		}
		rest = rest[j+1:]
	}
	return false
}

// apiMatcher is an API Gateway resource path as an automaton: {name} one
// segment, {name+} one or more.
func apiMatcher(path string) (matcher, []byte) {
	var m matcher
	var kinds []byte
	if path == "/" {
		return matcher{{kind: 'l', b: '/'}}, nil
	}
	for _, seg := range strings.Split(path[1:], "/") {
		m = append(m, elem{kind: 'l', b: '/'})
		switch {
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "+}"):
			m = append(m, elem{kind: 'n'}, elem{kind: '*'})
			kinds = append(kinds, 'g')
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			m = append(m, elem{kind: 'n'}, elem{kind: 'N'})
			kinds = append(kinds, 'p')
		default:
			for i := 0; i < len(seg); i++ {
				m = append(m, elem{kind: 'l', b: seg[i]})
			}
			kinds = append(kinds, 'l')
		}
	}
	return m, kinds
}

// accepts runs the automaton over path.
func (m matcher) accepts(path string) bool {
	set := make([]bool, len(m)+1)
	m.closure(set, 0)
	for i := 0; i < len(path); i++ {
		set = m.step(set, path[i])
	}
	return set[len(m)]
}

var apiMethods = map[string]string{
	"get": "GET", "put": "PUT", "post": "POST", "delete": "DELETE", "options": "OPTIONS",
	"head": "HEAD", "patch": "PATCH", "x-amazon-apigateway-any-method": "ANY",
}

// APIOptions says how to read an API Gateway export.
type APIOptions struct {
	// BasePath is put in front of every route: API Gateway serves a REST
	// API under its stage ("/prod") on its execute-api host, and under
	// a custom domain's base path mapping elsewhere. Default: none.
	BasePath string
	Values   Values
}

// ReadAPIGateway reads an API Gateway export: OpenAPI 3 or Swagger 2,
// JSON or YAML, of a REST or an HTTP API.
func ReadAPIGateway(file string, data []byte, opt APIOptions) (*Setup, error) {
	if isTerraform(file, data) {
		return nil, fmt.Errorf("%s: %w", file, ErrTerraform)
	}
	d, err := parseDoc(file, data, opt.Values)
	if err != nil {
		return nil, err
	}
	top := d.top()
	s := &Setup{File: file}
	switch {
	case !top.isMap():
		return nil, fmt.Errorf("%s: not an API Gateway export: the document is not a JSON object or YAML mapping", file)
	case strings.HasPrefix(top.get("openapi").raw(), "3."):
		s.Kind = "OpenAPI " + top.get("openapi").raw()
	case top.get("swagger").raw() == "2.0":
		s.Kind = "Swagger 2.0"
	default:
		return nil, fmt.Errorf("%s: not an API Gateway export: no \"openapi: 3.x\" or \"swagger: \\\"2.0\\\"\" at the top (aws apigateway get-export, aws apigatewayv2 export-api)", file)
	}
	base, err := basePath(opt.BasePath, "/prod")
	if err != nil {
		return nil, err
	}
	r := &apiReader{d: d, s: s, top: top, base: base, origins: map[string]string{}, functions: map[string]string{}}
	r.read()
	return s.finish(d, r.errs)
}

type apiReader struct {
	d    *doc
	s    *Setup
	top  val
	base string
	http bool
	errs []string

	origins   map[string]string // origin URL → name
	functions map[string]string // ARN → name
	names     map[string]bool
	// local, when set, names the function of a template the integration
	// invokes (a SAM definition's ${Fn.Arn}), so it is not looked up by ARN.
	local func(in val) (string, bool)
	// prefix is put before the "paths[...]" of each route's source name.
	prefix string
}

func (r *apiReader) fail(loc Loc, format string, args ...any) {
	r.errs = append(r.errs, loc.String()+": "+fmt.Sprintf(format, args...))
}

func (r *apiReader) read() {
	top, s := r.top, r.s
	r.names = map[string]bool{}
	r.http = top.get("x-amazon-apigateway-importexport-version").ok()
	for _, p := range top.get("paths").keys() {
		for _, m := range top.get("paths").get(p).keys() {
			if top.get("paths").get(p).get(m).get("x-amazon-apigateway-integration").get("payloadFormatVersion").ok() {
				r.http = true
			}
		}
	}
	if r.http {
		s.Kind += " export of an HTTP API"
	} else {
		s.Kind += " export of a REST API"
	}
	r.api()
	paths := top.get("paths")
	router := &apiRouter{http: r.http, paths: paths.loc(), routes: r.paths()}
	s.useRouter(router)
	for i, rt := range router.routes {
		// The catch-all's origin: $default, or ANY /{proxy+}.
		if s.Routes[i].Origin != "" && rt.method == "ANY" && (rt.path == "" || len(rt.kinds) == 1 && rt.kinds[0] == 'g') {
			s.Legacy = s.Routes[i].Origin
		}
	}
	if len(s.Origins) == 0 {
		s.Legacy = "legacy"
		// turnout needs a legacy origin; the export has none to offer.
		v := val{d: r.d, n: r.d.root}
		u, ok := v.fill("legacy", false)
		if ok {
			if pu, err := url.Parse(u); err != nil || pu.Host == "" || pu.Scheme != "http" && pu.Scheme != "https" {
				r.fail(v.loc(), "--set legacy=%q: want the URL of the legacy service, like http://10.0.0.5:8080", u)
			}
		}
		s.Origins = append(s.Origins, Origin{Name: "legacy", URL: u, HostHeader: "client", From: "--set legacy (the export has no HTTP integration; turnout needs a legacy origin)", Loc: v.loc()})
	}
}

// paths reads every operation of the definition's paths into a route.
func (r *apiReader) paths() []apiRoute {
	paths := r.top.get("paths")
	if len(paths.keys()) == 0 {
		r.fail(paths.loc(), "the API definition has no paths")
	}
	var routes []apiRoute
	for _, p := range paths.keys() {
		item := paths.get(p)
		if p != "/$default" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, " ?#*%\\\"") || strings.Contains(p, "//") || hasDotSegment(p) || !validResourcePath(p)) {
			r.fail(item.loc(), "path %q is not an API Gateway resource path", p)
			continue
		}
		for _, k := range item.keys() {
			method, ok := apiMethods[strings.ToLower(k)]
			if !ok {
				continue
			}
			routes = append(routes, r.operation(p, method, item.get(k)))
		}
	}
	return routes
}

// api reports what the API as a whole does that is not carried over.
func (r *apiReader) api() {
	top, s := r.top, r.s
	if bp := top.get("basePath"); bp.ok() && bp.raw() != "/" {
		s.add(Info, bp.loc(), "basePath %q (the stage on the execute-api host) is not put in front of the routes: they are the custom domain's paths; --base-path %s keeps it", bp.raw(), bp.raw())
	}
	for _, srv := range top.get("servers").items() {
		if v := srv.get("variables").get("basePath").get("default"); v.ok() && strings.Trim(v.raw(), "/") != "" {
			s.add(Info, v.loc(), "server basePath %q (the stage) is not put in front of the routes; --base-path keeps it", v.raw())
		}
	}
	for _, k := range []string{"x-amazon-apigateway-policy"} {
		if v := top.get(k); v.present() {
			s.add(MustWarn, v.loc(), "a resource policy restricts who may call the API; turnout does not apply it")
		}
	}
	if v := top.get("x-amazon-apigateway-api-key-source"); v.present() {
		s.add(MustWarn, v.loc(), "API keys (source %s) and their usage plans are not carried over: requests without a key are served", v.raw())
	}
	for _, k := range []string{"x-amazon-apigateway-request-validators", "x-amazon-apigateway-request-validator"} {
		if v := top.get(k); v.present() {
			s.add(Warn, v.loc(), "request validators are not carried over: the function or origin receives requests API Gateway would have refused with 400")
		}
	}
	if v := top.get("x-amazon-apigateway-cors"); v.present() {
		s.add(Warn, v.loc(), "CORS configuration is not carried over: turnout answers no preflight itself and adds no CORS headers")
	}
	if v := top.get("x-amazon-apigateway-gateway-responses"); v.present() {
		s.add(Warn, v.loc(), "gateway responses (API Gateway's own error answers) are not carried over")
	}
	if v := top.get("x-amazon-apigateway-binary-media-types"); v.present() {
		s.add(Info, v.loc(), "binary media types: turnout base64-encodes every body that is not text in the event, as API Gateway does for listed types")
	}
	for _, k := range []string{"securityDefinitions", "components"} {
		sd := top.get(k)
		if k == "components" {
			sd = sd.get("securitySchemes")
		}
		for _, name := range sd.keys() {
			sc := sd.get(name)
			if sc.get("x-amazon-apigateway-authorizer").ok() || sc.get("x-amazon-apigateway-authtype").ok() || sc.get("type").raw() == "apiKey" || sc.get("type").raw() == "oauth2" || sc.get("type").raw() == "openIdConnect" {
				s.add(Info, sc.loc(), "security scheme %q is declared; each operation using it is a MUST-WARN", name)
			}
		}
	}
}

// operation reads one method of one path into a Route.
func (r *apiReader) operation(path, method string, op val) apiRoute {
	s := r.s
	from := fmt.Sprintf("%spaths[%q].%s", r.prefix, path, strings.ToLower(method))
	if method == "ANY" {
		from = fmt.Sprintf("%spaths[%q].x-amazon-apigateway-any-method", r.prefix, path)
	}
	rt := apiRoute{from: from, method: method, loc: op.loc()}
	route := Route{From: from, Loc: op.loc()}
	if path == "/$default" {
		route.Patterns = []string{"/"}
		if r.base != "" {
			route.Patterns = []string{r.base + "/"}
		}
	} else {
		rt.setPath(&route, r.base+path, method)
	}
	r.security(op, from)
	in := op.get("x-amazon-apigateway-integration")
	typ := strings.ToLower(in.get("type").raw())
	rt.target = "integration:" + typ
	if ms, ok := in.get("timeoutInMillis").integer(); ok && ms > 0 {
		route.TimeoutMS = ms
	}
	switch {
	case !in.ok():
		s.add(MustWarn, op.loc(), "%s has no x-amazon-apigateway-integration: not carried over", from)
	case typ == "aws_proxy":
		route.Function, route.Payload = r.function(in, from)
		if route.Function != "" {
			rt.target = "function:" + route.Function
		}
	case typ == "http_proxy":
		route.Origin = r.httpOrigin(in, rt.path, from)
		if route.Origin != "" {
			rt.target = "origin:" + route.Origin
		}
	case typ == "mock":
		s.add(MustWarn, in.loc(), "%s: a mock integration answers from API Gateway itself; turnout has no such route: not carried over", from)
	default:
		s.add(MustWarn, in.loc(), "%s: a %s integration (mapping templates between the request and the backend) is not carried over", from, in.get("type").raw())
	}
	for _, k := range []string{"requestTemplates", "responses"} {
		if v := in.get(k); v.present() && (typ == "http_proxy" || typ == "aws_proxy") && k == "requestTemplates" {
			s.add(Warn, v.loc(), "%s: request mapping templates are not carried over", from)
		}
	}
	if v := op.get("x-amazon-apigateway-request-validator"); v.present() {
		s.add(Warn, v.loc(), "%s: request validator %q is not carried over", from, v.raw())
	}
	if v := in.get("connectionType"); strings.EqualFold(v.raw(), "VPC_LINK") {
		s.add(Warn, v.loc(), "%s: the integration goes through a VPC link; turnout must reach the URL directly", from)
	}
	s.Routes = append(s.Routes, route)
	return rt
}

// security reports the authorizers and API keys an operation requires.
func (r *apiReader) security(op val, from string) {
	sec := op.get("security")
	if !sec.ok() {
		sec = r.top.get("security")
	}
	var names []string
	for _, req := range sec.items() {
		names = append(names, req.keys()...)
	}
	if len(names) == 0 {
		return
	}
	var kinds []string
	for _, n := range names {
		kinds = append(kinds, n+" ("+r.schemeKind(n)+")")
	}
	r.s.add(MustWarn, sec.loc(), "%s requires %s; turnout does not check it, so the route is open to anyone", from, strings.Join(kinds, ", "))
}

func (r *apiReader) schemeKind(name string) string {
	sc := r.top.get("securityDefinitions").get(name)
	if !sc.ok() {
		sc = r.top.get("components").get("securitySchemes").get(name)
	}
	if a := sc.get("x-amazon-apigateway-authorizer"); a.ok() {
		if t := a.get("type").raw(); t != "" {
			return strings.ToLower(t) + " authorizer"
		}
		return "authorizer"
	}
	if t := sc.get("x-amazon-apigateway-authtype").raw(); t != "" {
		return t
	}
	if sc.get("type").raw() == "apiKey" {
		return "API key"
	}
	if t := sc.get("type").raw(); t != "" {
		return t
	}
	return "an authorizer"
}

// function reads an aws_proxy integration's Lambda function.
func (r *apiReader) function(in val, from string) (name, payload string) {
	payload = "1.0"
	if r.http {
		payload = "2.0"
	}
	if v := in.get("payloadFormatVersion"); v.ok() {
		payload = v.raw()
		if payload != "1.0" && payload != "2.0" {
			r.fail(v.loc(), "%s: payloadFormatVersion %q: API Gateway has 1.0 and 2.0", from, payload)
		}
	}
	if r.local != nil {
		if n, ok := r.local(in.get("uri")); ok {
			return n, payload
		}
	}
	uri, ok := in.get("uri").str()
	if !ok {
		return "", ""
	}
	arn := uri
	if i := strings.Index(uri, ":lambda:path/2015-03-31/functions/"); i >= 0 {
		arn = strings.TrimSuffix(uri[i+len(":lambda:path/2015-03-31/functions/"):], "/invocations")
	}
	parts := strings.Split(arn, ":")
	if len(parts) < 7 || len(parts) > 8 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" || !awsWord(parts[3]) || !awsWord(parts[4]) || !awsWord(parts[6]) || len(parts) == 8 && !awsWord(parts[7]) {
		r.fail(in.get("uri").loc(), "%s: integration uri %q names no Lambda function ARN", from, uri)
		return "", ""
	}
	if n, ok := r.functions[arn]; ok {
		return n, payload
	}
	n := r.unique(originName(strings.Join(parts[6:], "-")))
	r.functions[arn] = n
	r.s.Functions = append(r.s.Functions, Function{Name: n, ARN: arn, Region: parts[3], From: from + " integration uri", Loc: in.get("uri").loc()})
	return n, payload
}

// httpOrigin reads an http_proxy integration into an origin. turnout
// forwards the request's own path after the origin URL's path, so the
// integration is carried over exactly when its URL's path is some prefix
// followed by the resource path (greedy variables by the same name).
func (r *apiReader) httpOrigin(in val, path, from string) string {
	raw, ok := in.get("uri").str()
	if !ok {
		return ""
	}
	u, err := url.Parse(strings.NewReplacer("{", "%7B", "}", "%7D").Replace(raw))
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		r.fail(in.get("uri").loc(), "%s: integration uri %q is not an http(s) URL", from, raw)
		return ""
	}
	upath, _ := url.PathUnescape(u.EscapedPath())
	want := strings.ReplaceAll(path, "+}", "}")
	prefix, exact := "", false
	switch {
	case path == "":
		prefix, exact = strings.TrimSuffix(upath, "/"), true // $default: the whole path goes on
	case strings.HasSuffix(upath, want):
		prefix, exact = strings.TrimSuffix(upath, want), true
	}
	if !exact {
		r.s.add(MustWarn, in.get("uri").loc(), "%s: API Gateway sends these requests to %s; turnout forwards the request's own path, so %s%s%s would be asked instead (turnout rewrites no paths)", from, raw, u.Scheme+"://"+u.Host, upath, path)
		prefix = ""
	}
	if strings.Contains(prefix, "{") {
		r.s.add(MustWarn, in.get("uri").loc(), "%s: the integration URL's path %q has variables turnout cannot fill", from, upath)
		prefix = ""
	}
	if u.RawQuery != "" {
		r.s.add(Warn, in.get("uri").loc(), "%s: the integration URL's query %q is not added by turnout", from, u.RawQuery)
	}
	origin := u.Scheme + "://" + u.Host + prefix
	if n, ok := r.origins[origin]; ok {
		return n
	}
	n := r.unique(originName(strings.Split(u.Hostname(), ".")[0]))
	r.origins[origin] = n
	r.s.Origins = append(r.s.Origins, Origin{Name: n, URL: origin, HostHeader: "origin", From: from + " integration uri", Loc: in.get("uri").loc()})
	return n
}

// unique makes n unique among the origin and function names so far.
func (r *apiReader) unique(n string) string {
	base := n
	for i := 2; r.names[n] || n == "legacy"; i++ {
		n = fmt.Sprintf("%s-%d", base, i)
	}
	r.names[n] = true
	return n
}

// awsWord reports whether s can be a part of a Lambda ARN: a region, an
// account, a function name or a qualifier.
func awsWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '$') {
			return false
		}
	}
	return s != ""
}

// validResourcePath reports whether each segment of p is a literal or a
// whole {name} or {name+}, and a greedy one comes last.
func validResourcePath(p string) bool {
	if p == "/" {
		return true
	}
	segs := strings.Split(p[1:], "/")
	names := map[string]bool{}
	for i, seg := range segs {
		if seg == "" {
			return false
		}
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		name, greedy := strings.CutSuffix(strings.TrimSuffix(strings.TrimPrefix(seg, "{"), "}"), "+")
		if !strings.HasPrefix(seg, "{") || !strings.HasSuffix(seg, "}") || !awsWord(name) || strings.ContainsAny(name, "$-") || '0' <= name[0] && name[0] <= '9' || names[name] || greedy && i != len(segs)-1 {
			return false
		}
		names[name] = true
	}
	return true
}

// setPath gives rt the resource path p (the base included; a trailing
// slash dropped) with its segments and kinds, and route the turnout
// pattern for it and method ("ANY": every method), with a note on greedy
// variables, whose semantics differ.
func (rt *apiRoute) setPath(route *Route, p, method string) {
	rt.path = p
	if rt.path != "/" {
		rt.path = strings.TrimSuffix(rt.path, "/")
		rt.segs = strings.Split(rt.path[1:], "/")
	}
	_, rt.kinds = apiMatcher(rt.path)
	pat := plusToDots(rt.path)
	if method != "ANY" {
		pat = method + " " + pat
	}
	route.Patterns = []string{pat}
	if strings.Contains(rt.path, "+}") {
		route.Note = "turnout's {name...} also takes the parent path with a trailing slash, which API Gateway's {name+} never does"
	}
}

// plusToDots writes API Gateway's greedy {name+} as ServeMux's {name...}.
func plusToDots(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}") {
			segs[i] = s[:len(s)-2] + "...}"
		}
	}
	return strings.Join(segs, "/")
}
