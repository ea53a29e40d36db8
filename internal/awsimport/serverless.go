package awsimport

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ServerlessOptions says how to read a serverless.yml.
type ServerlessOptions struct {
	// Functions is FunctionsHosted (the default: go1.x functions run from
	// their handler binary) or FunctionsAWS.
	Functions string
	// API picks the events of one kind of API when the source has both:
	// "rest" (REST API) or "http" (HTTP API); they are served on different
	// hosts, so one config holds one of them.
	API string
	// BasePath is put in front of every route (a stage, like /dev).
	BasePath string
	Values   Values
}

// slsVar is one innermost ${...} of the Serverless Framework's variables.
var slsVar = regexp.MustCompile(`\$\{([^{}]*)\}`)

// ReadServerless reads a Serverless Framework service (serverless.yml):
// each function's http (REST API) and httpApi (HTTP API) events.
func ReadServerless(file string, data []byte, opt ServerlessOptions) (*Setup, error) {
	d, base, err := openFunctionSource(file, data, opt.API, &opt.Functions, opt.BasePath, "/dev", opt.Values)
	if err != nil {
		return nil, err
	}
	top := d.top()
	if !top.isMap() || !top.get("functions").isMap() {
		return nil, fmt.Errorf("%s: not a serverless.yml: no functions", file)
	}
	if p := top.get("provider").get("name").raw(); p != "" && p != "aws" {
		return nil, fmt.Errorf("%s: provider %q: only aws services are imported", file, p)
	}
	s := &Setup{File: file, Kind: "Serverless Framework service"}
	r := &slsReader{d: d, s: s, top: top, opt: opt, base: base, names: map[string]bool{"legacy": true}}
	r.read()
	return s.finish(d, r.errs)
}

type slsReader struct {
	d    *doc
	s    *Setup
	top  val
	opt  ServerlessOptions
	base string
	errs []string

	names map[string]bool
	depth int // of variables resolved within variables
}

func (r *slsReader) fail(loc Loc, format string, args ...any) {
	r.errs = append(r.errs, loc.String()+": "+fmt.Sprintf(format, args...))
}

// str resolves v's Serverless variables: ${self:a.b} from the file,
// ${sls:stage} and ${opt:stage} as the stage, ${opt:x} and ${env:X} from
// --set, each fallback (", 'dev'") a default used only with --use-defaults;
// any other source (ssm, cf, s3, file) is a placeholder named as written.
func (r *slsReader) str(v val) (string, bool) {
	if r.depth > 10 {
		return v.fill(strings.TrimPrefix(v.ptr, "/"), false) // a variable that refers to itself
	}
	r.depth++
	defer func() { r.depth-- }()
	s := v.raw()
	ok := true
	for range 10 {
		if !strings.Contains(s, "${") {
			break
		}
		s = slsVar.ReplaceAllStringFunc(s, func(m string) string {
			out, filled := r.variable(v, m[2:len(m)-1])
			ok = ok && filled
			return out
		})
		if !ok {
			break
		}
	}
	return s, ok
}

func (r *slsReader) variable(v val, expr string) (string, bool) {
	ref, fallback, hasFallback := strings.Cut(expr, ",")
	ref = strings.TrimSpace(ref)
	fallback = strings.Trim(strings.TrimSpace(fallback), `'"`)
	stage := r.top.get("provider").get("stage")
	switch {
	case ref == "opt:stage" || ref == "sls:stage" || ref == "self:provider.stage" && !stage.ok():
		if st, ok := r.d.values.Set["stage"]; ok {
			return st, true
		}
		if ref == "sls:stage" && stage.ok() {
			return r.str(stage)
		}
		if !hasFallback && ref != "opt:stage" {
			hasFallback, fallback = true, "dev" // the framework's default stage
		}
		if hasFallback {
			return r.withDefault(v, "stage", fallback)
		}
		return v.fill("stage", false)
	case strings.HasPrefix(ref, "self:"):
		x := r.top
		for _, k := range strings.Split(strings.TrimPrefix(ref, "self:"), ".") {
			x = x.get(k)
		}
		if x.ok() && x.raw() != "" {
			return r.str(x)
		}
	}
	if hasFallback {
		return r.withDefault(v, ref, fallback)
	}
	return v.fill(ref, false)
}

// withDefault fills name from --set, or its default with --use-defaults.
func (r *slsReader) withDefault(v val, name, def string) (string, bool) {
	if s, ok := r.d.values.Set[name]; ok {
		return s, true
	}
	p := Placeholder{Name: name, Loc: v.loc(), Default: def, HasDefault: true}
	if r.d.values.UseDefaults {
		if _, seen := r.d.defaults[name]; !seen {
			r.d.defaults[name] = p
		}
		return def, true
	}
	if _, seen := r.d.missing[name]; !seen {
		r.d.missing[name] = p
	}
	return "${" + name + "}", false
}

func (r *slsReader) read() {
	s, top := r.s, r.top
	fns := top.get("functions")
	kinds := map[string]bool{}
	for _, name := range fns.keys() {
		for _, ev := range fns.get(name).get("events").items() {
			kinds["rest"] = kinds["rest"] || ev.get("http").ok()
			kinds["http"] = kinds["http"] || ev.get("httpApi").ok()
		}
	}
	api := r.opt.API
	switch {
	case api != "":
	case kinds["rest"] && kinds["http"]:
		r.fail(fns.loc(), "the service has http events (a REST API) and httpApi events (an HTTP API), served on different hosts: import one with --api rest or --api http")
		return
	case kinds["http"]:
		api = "http"
	default:
		api = "rest"
	}
	prov := top.get("provider")
	for _, k := range []string{"apiKeys", "usagePlan"} {
		if v := prov.get("apiGateway").get(k); v.present() && api == "rest" {
			s.add(MustWarn, v.loc(), "provider.apiGateway.%s: API keys and usage plans are not carried over: requests without a key are served", k)
		}
	}
	if v := prov.get("apiGateway").get("resourcePolicy"); v.present() && api == "rest" {
		s.add(MustWarn, v.loc(), "provider.apiGateway.resourcePolicy restricts who may call the API; turnout does not apply it")
	}
	if v := prov.get("httpApi").get("authorizers"); v.present() && api == "http" {
		s.add(Info, v.loc(), "provider.httpApi.authorizers are declared; each event using one is a MUST-WARN")
	}
	if v := prov.get("httpApi").get("cors"); v.present() && api == "http" {
		s.add(Warn, v.loc(), "provider.httpApi.cors is not carried over: turnout answers no preflight itself and adds no CORS headers")
	}
	if v := prov.get("stage"); v.ok() && api == "rest" {
		s.add(Info, v.loc(), "the stage (%s) is not put in front of the routes (they are the custom domain's paths); --base-path /STAGE keeps it", v.raw())
	}
	router := &apiRouter{http: api == "http", paths: fns.loc()}
	for _, name := range fns.keys() {
		f := fns.get(name)
		fn := ""
		for i, ev := range f.get("events").items() {
			kind := ""
			e := ev.get("http")
			if e.ok() {
				kind = "rest"
			} else if e = ev.get("httpApi"); e.ok() {
				kind = "http"
			} else {
				s.add(Info, ev.loc(), "functions.%s.events[%d] (%s) is not an HTTP event: ignored", name, i, strings.Join(ev.keys(), ", "))
				continue
			}
			if kind != api {
				s.add(Info, ev.loc(), "functions.%s.events[%d] belongs to the other API (--api %s): not imported", name, i, kind)
				continue
			}
			if fn == "" {
				fn = r.function(name, f)
			}
			router.routes = append(router.routes, r.event(name, i, e, kind, fn))
		}
	}
	if len(router.routes) == 0 {
		r.fail(fns.loc(), "no function has an %s event", map[string]string{"rest": "http", "http": "httpApi"}[api])
		return
	}
	s.useRouter(router)
	if loc, msg := s.legacyFromSet(r.d, "a serverless.yml"); msg != "" {
		r.fail(loc, "%s", msg)
	}
}

// function declares function name and returns its turnout name.
func (r *slsReader) function(name string, f val) string {
	prov := r.top.get("provider")
	tn := originName(name)
	for i := 2; r.names[tn]; i++ {
		tn = fmt.Sprintf("%s-%d", originName(name), i)
	}
	r.names[tn] = true
	fn := Function{Name: tn, From: "functions." + name, Loc: f.loc()}
	runtime := f.get("runtime").raw()
	if runtime == "" {
		runtime = prov.get("runtime").raw()
	}
	if r.opt.Functions == FunctionsHosted && runtime == "go1.x" {
		fn.Handler, _ = r.str(f.get("handler"))
		if fn.Handler == "" || strings.HasPrefix(fn.Handler, "${") {
			r.fail(f.loc(), "functions.%s: no handler binary", name)
		}
		if t, ok := f.get("timeout").integer(); ok {
			fn.Timeout = t
		}
		if m, ok := f.get("memorySize").integer(); ok {
			fn.MemoryMB = m
		}
		fn.Env = map[string]string{}
		for _, src := range []val{prov.get("environment"), f.get("environment")} {
			for _, k := range src.keys() {
				if !isEnvVar(k) {
					r.fail(src.get(k).loc(), "functions.%s: %q is not an environment variable name", name, k)
					continue
				}
				fn.Env[k], _ = r.str(src.get(k))
			}
		}
		r.s.Functions = append(r.s.Functions, fn)
		r.s.add(Info, f.loc(), "functions.%s (go1.x) is hosted by turnout from its handler binary %s; --functions aws invokes it on AWS instead", name, fn.Handler)
		return tn
	}
	if r.opt.Functions == FunctionsHosted {
		r.s.add(Info, f.loc(), "functions.%s (runtime %s) cannot be hosted by turnout: invoked on AWS Lambda", name, runtime)
	}
	if n := f.get("name"); n.ok() {
		fn.ARN, _ = r.str(n)
	} else {
		// The framework names a function SERVICE-STAGE-NAME.
		svc, _ := r.str(r.top.get("service"))
		stage, _ := r.variable(f, "sls:stage")
		fn.ARN = svc + "-" + stage + "-" + name
	}
	if reg := prov.get("region"); reg.ok() {
		fn.Region, _ = r.str(reg)
	} else {
		fn.Region, _ = r.withDefault(prov, "region", "us-east-1") // the framework's default region
	}
	r.s.Functions = append(r.s.Functions, fn)
	return tn
}

// event reads one http or httpApi event into a route.
func (r *slsReader) event(name string, i int, e val, kind, fn string) apiRoute {
	s := r.s
	typ := map[string]string{"rest": "http", "http": "httpApi"}[kind]
	from := fmt.Sprintf("functions.%s.events[%d].%s", name, i, typ)
	method, path := "", ""
	if e.isMap() {
		method, _ = r.str(e.get("method"))
		path, _ = r.str(e.get("path"))
		if a := e.get("authorizer"); a.present() {
			s.add(MustWarn, a.loc(), "%s: the authorizer is not carried over: the route is open to anyone", from)
		}
		if p := e.get("private"); p.boolean() {
			s.add(MustWarn, p.loc(), "%s: private (an API key) is not carried over: the route is open to anyone", from)
		}
		if c := e.get("cors"); c.present() {
			s.add(Warn, c.loc(), "%s: cors is not carried over", from)
		}
		for _, k := range []string{"request", "integration"} {
			if v := e.get(k); v.present() && !(k == "integration" && strings.EqualFold(v.raw(), "lambda-proxy")) {
				s.add(Warn, v.loc(), "%s: %s settings (templates, validation, a non-proxy integration) are not carried over", from, k)
			}
		}
	} else {
		short, _ := r.str(e)
		if short == "*" {
			method, path = "*", "*"
		} else {
			method, path, _ = strings.Cut(strings.TrimSpace(short), " ")
			path = strings.TrimSpace(path)
		}
	}
	route := Route{From: from, Loc: e.loc(), Function: fn, Payload: "1.0"}
	if kind == "http" {
		route.Payload = "2.0"
		if v := r.top.get("provider").get("httpApi").get("payload"); v.ok() {
			route.Payload = v.raw()
			if route.Payload != "1.0" && route.Payload != "2.0" {
				r.fail(v.loc(), "provider.httpApi.payload %q: API Gateway has 1.0 and 2.0", route.Payload)
			}
		}
	}
	rt := apiRoute{from: from, loc: e.loc(), target: "function:" + fn}
	method = strings.ToUpper(method)
	if method == "*" || method == "ANY" {
		method = "ANY"
	}
	rt.method = method
	if path != "*" && path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path // http event paths may leave out the leading slash
	}
	trimmed := path
	if trimmed != "/" {
		trimmed = strings.TrimSuffix(trimmed, "/")
	}
	switch {
	case kind == "http" && path == "*":
		route.Patterns = []string{r.base + "/"} // the HTTP API's catch-all
	case !filled(path):
	case path == "" || strings.Contains(path, "//") || hasDotSegment(path) || strings.ContainsAny(path, " ?#*%\\\"") || !validResourcePath(trimmed):
		r.fail(e.loc(), "%s: path %q is not an API Gateway path", from, path)
	case !slices.Contains(append(slices.Clone(cfMethods), "ANY"), method):
		r.fail(e.loc(), "%s: method %q", from, method)
	default:
		rt.setPath(&route, r.base+trimmed, method)
	}
	s.Routes = append(s.Routes, route)
	return rt
}
