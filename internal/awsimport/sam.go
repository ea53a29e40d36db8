package awsimport

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SAM function targets.
const (
	// FunctionsHosted runs functions whose runtime turnout can host (go1.x,
	// provided, provided.al2, provided.al2023) from `sam build`'s output;
	// others are invoked on AWS.
	FunctionsHosted = "hosted"
	// FunctionsAWS invokes every function on AWS Lambda.
	FunctionsAWS = "aws"
)

// hostable are the runtimes whose built artefact is an executable speaking
// the Lambda Runtime API: .aws-sam/build/NAME/bootstrap.
var hostable = []string{"go1.x", "provided", "provided.al2", "provided.al2023"}

// SAMOptions says how to read a SAM template.
type SAMOptions struct {
	// Functions is FunctionsHosted (the default) or FunctionsAWS.
	Functions string
	// API picks the events of one kind of API when the source has both:
	// "rest" (REST API) or "http" (HTTP API); they are served on different
	// hosts, so one config holds one of them.
	API string
	// BasePath is put in front of every route (a stage, like /prod).
	BasePath string
	Values   Values
	// ReadFile reads a definition the template names by a relative path
	// (DefinitionUri, or an AWS::Include's Location); nil reads none.
	ReadFile func(name string) ([]byte, error)
}

// openFunctionSource is what reading a SAM template or a serverless.yml
// starts with: Terraform refused, the function options checked (functions
// defaulted), the base path resolved (defaultBase without one), the
// document parsed.
func openFunctionSource(file string, data []byte, api string, functions *string, base, defaultBase string, values Values) (*doc, string, error) {
	if isTerraform(file, data) {
		return nil, "", fmt.Errorf("%s: %w", file, ErrTerraform)
	}
	if err := checkFunctionOptions(api, functions); err != nil {
		return nil, "", err
	}
	base, err := basePath(base, defaultBase)
	if err != nil {
		return nil, "", err
	}
	d, err := parseDoc(file, data, values)
	if err != nil {
		return nil, "", err
	}
	return d, base, nil
}

// ReadSAM reads the HTTP events of a SAM template's functions
// (AWS::Serverless::Function with Api and HttpApi events, Globals) into
// routes to functions, hosted by turnout or on AWS.
func ReadSAM(file string, data []byte, opt SAMOptions) (*Setup, error) {
	d, base, err := openFunctionSource(file, data, opt.API, &opt.Functions, opt.BasePath, "/prod", opt.Values)
	if err != nil {
		return nil, err
	}
	top := d.top()
	if !top.isMap() || !top.get("Resources").isMap() {
		return nil, fmt.Errorf("%s: not a SAM template: no Resources", file)
	}
	d.params = map[string]*yaml.Node{}
	for _, name := range top.get("Parameters").keys() {
		d.params[name] = top.get("Parameters").get(name).get("Default").n
	}
	s := &Setup{File: file, Kind: "SAM template"}
	r := &samReader{d: d, s: s, top: top, opt: opt, base: base, names: map[string]bool{"legacy": true}, apis: map[string]string{}}
	r.read()
	return s.finish(d, r.errs)
}

type samReader struct {
	d    *doc
	s    *Setup
	top  val
	opt  SAMOptions
	base string
	errs []string

	names map[string]bool
	apis  map[string]string // logical id → "rest" or "http"
	fns   map[string]string // function logical id → turnout name, once declared
}

func (r *samReader) fail(loc Loc, format string, args ...any) {
	r.errs = append(r.errs, loc.String()+": "+fmt.Sprintf(format, args...))
}

func (r *samReader) read() {
	res, s := r.top.get("Resources"), r.s
	glob := r.top.get("Globals")
	for _, k := range []string{"Api", "HttpApi"} {
		if a := glob.get(k).get("Auth"); a.present() {
			s.add(MustWarn, a.loc(), "Globals.%s.Auth (authorizers, API keys, resource policies) is not carried over: every route is open to anyone", k)
		}
		if c := glob.get(k).get("Cors"); c.present() {
			s.add(Warn, c.loc(), "Globals.%s.Cors is not carried over: turnout answers no preflight itself and adds no CORS headers", k)
		}
	}
	for _, id := range res.keys() {
		v := res.get(id)
		switch v.get("Type").raw() {
		case "AWS::Serverless::Api":
			r.api(id, v, "rest")
		case "AWS::Serverless::HttpApi":
			r.api(id, v, "http")
		}
	}
	kinds := map[string]bool{}
	for id, kind := range r.apis {
		if p := res.get(id).get("Properties"); p.get("DefinitionBody").ok() || p.get("DefinitionUri").ok() {
			kinds[kind] = true
		}
	}
	for _, id := range res.keys() {
		for _, ev := range res.get(id).get("Properties").get("Events").keys() {
			if e := res.get(id).get("Properties").get("Events").get(ev); res.get(id).get("Type").raw() == "AWS::Serverless::Function" {
				if k := r.eventKind(e); k != "" {
					kinds[k] = true
				}
			}
		}
	}
	api := r.opt.API
	switch {
	case api != "":
	case kinds["rest"] && kinds["http"]:
		r.fail(res.loc(), "the template has events of a REST API (Api) and of an HTTP API (HttpApi), served on different hosts: import one with --api rest or --api http")
		return
	case kinds["http"]:
		api = "http"
	default:
		api = "rest"
	}
	router := &apiRouter{http: api == "http", paths: res.loc()}
	for _, id := range res.keys() {
		if kind, ok := r.apis[id]; ok {
			router.routes = append(router.routes, r.definition(id, kind, api)...)
		}
	}
	for _, id := range res.keys() {
		v := res.get(id)
		if v.get("Type").raw() != "AWS::Serverless::Function" {
			continue
		}
		fn := ""
		for _, ev := range v.get("Properties").get("Events").keys() {
			e := v.get("Properties").get("Events").get(ev)
			typ := e.get("Type").raw()
			if typ != "Api" && typ != "HttpApi" {
				s.add(Info, e.loc(), "%s event %s (%s) is not an HTTP event: ignored", id, ev, typ)
				continue
			}
			if k := r.eventKind(e); k != api {
				s.add(Info, e.loc(), "%s event %s belongs to the other API (--api %s): not imported", id, ev, k)
				continue
			}
			if fn == "" {
				fn = r.function(id, v)
			}
			rt, _ := r.event(id, ev, e, typ, fn)
			router.routes = append(router.routes, rt)
		}
	}
	if len(router.routes) == 0 {
		r.fail(res.loc(), "no route: no inline API definition, and no AWS::Serverless::Function has an event of the %s API", api)
		return
	}
	s.useRouter(router)
	if loc, msg := s.legacyFromSet(r.d, "a SAM template"); msg != "" {
		r.fail(loc, "%s", msg)
	}
}

// api reads an AWS::Serverless::Api or HttpApi resource.
func (r *samReader) api(id string, v val, kind string) {
	r.apis[id] = kind
	p, s := v.get("Properties"), r.s
	if a := p.get("Auth"); a.present() {
		s.add(MustWarn, a.loc(), "%s.Auth (authorizers, API keys, usage plans, resource policies) is not carried over: its routes are open to anyone", id)
	}

	for _, k := range []string{"Cors", "CorsConfiguration"} {
		if c := p.get(k); c.present() {
			s.add(Warn, c.loc(), "%s.%s is not carried over: turnout answers no preflight itself and adds no CORS headers", id, k)
		}
	}
	if st := p.get("StageName"); st.present() {
		name := st.text()
		s.add(Info, st.loc(), "%s stage %s is not put in front of the routes (they are the custom domain's paths); --base-path /%s keeps it", id, name, name)
	}
}

// function declares function id and returns its turnout name.
func (r *samReader) function(id string, v val) string {
	if n, ok := r.fns[id]; ok {
		return n
	}
	if r.fns == nil {
		r.fns = map[string]string{}
	}
	defer func() { r.fns[id] = r.s.Functions[len(r.s.Functions)-1].Name }()
	p := v.get("Properties")
	g := r.top.get("Globals").get("Function")
	prop := func(k string) val {
		if x := p.get(k); x.ok() {
			return x
		}
		return g.get(k)
	}
	name := originName(id)
	for i := 2; r.names[name]; i++ {
		name = fmt.Sprintf("%s-%d", originName(id), i)
	}
	r.names[name] = true
	f := Function{Name: name, From: fmt.Sprintf("Resources.%s (AWS::Serverless::Function)", id), Loc: v.loc()}
	runtime := prop("Runtime").raw()
	image := prop("PackageType").raw() == "Image"
	if r.opt.Functions == FunctionsHosted && !image && slices.Contains(hostable, runtime) {
		f.Handler = ".aws-sam/build/" + id + "/bootstrap"
		if t, ok := prop("Timeout").integer(); ok {
			f.Timeout = t
		}
		if m, ok := prop("MemorySize").integer(); ok {
			f.MemoryMB = m
		}
		vars := g.get("Environment").get("Variables")
		f.Env = map[string]string{}
		for _, src := range []val{vars, p.get("Environment").get("Variables")} {
			for _, k := range src.keys() {
				if !isEnvVar(k) {
					r.fail(src.get(k).loc(), "%s: %q is not an environment variable name", id, k)
					continue
				}
				f.Env[k], _ = src.get(k).str()
			}
		}
		r.s.Functions = append(r.s.Functions, f)
		r.s.add(Info, v.loc(), "%s (%s) is hosted by turnout from `sam build`'s %s; --functions aws invokes it on AWS instead", id, runtime, f.Handler)
		return name
	}
	if r.opt.Functions == FunctionsHosted {
		what := "runtime " + runtime
		if image {
			what = "a container image"
		}
		r.s.add(Info, v.loc(), "%s (%s) cannot be hosted by turnout: invoked on AWS Lambda", id, what)
	}
	fv := p.get("FunctionName")
	if fv.ok() {
		f.ARN, _ = fv.str()
	} else {
		f.ARN, _ = v.fill(id+".Arn", true)
	}
	f.Region, _ = v.fill("AWS::Region", true)
	if strings.HasPrefix(f.ARN, "arn:") {
		if parts := strings.Split(f.ARN, ":"); len(parts) > 3 {
			f.Region = parts[3]
		}
	}
	r.s.Functions = append(r.s.Functions, f)
	return name
}

func isEnvVar(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// samArn finds the function of the template an integration uri names:
// !GetAtt Fn.Arn, or a !Sub whose text holds functions/${Fn.Arn}/invocations.
var samArn = regexp.MustCompile(`functions/\$\{([A-Za-z0-9]+)\.Arn\}/invocations`)

// definition reads the inline DefinitionBody (OpenAPI or Swagger) of API
// id, whose integrations may invoke the template's functions by ${Fn.Arn}.
func (r *samReader) definition(id, kind, api string) []apiRoute {
	props := r.top.get("Resources").get(id).get("Properties")
	body, d := props.get("DefinitionBody"), r.d
	if kind != api {
		if body.ok() || props.get("DefinitionUri").ok() {
			r.s.add(Info, props.loc(), "%s's definition belongs to the other API (--api %s): not imported", id, kind)
		}
		return nil
	}
	if _, _, transform := body.intrinsic(); transform || !body.isMap() {
		var at val
		if fn, arg, ok := body.intrinsic(); ok && fn == "Fn::Transform" && arg.get("Name").raw() == "AWS::Include" {
			at = arg.get("Parameters").get("Location")
		} else if u := props.get("DefinitionUri"); u.ok() {
			at = u
		} else {
			return nil
		}
		name := at.raw()
		if name == "" || strings.Contains(name, "://") || filepath.IsAbs(name) || r.opt.ReadFile == nil {
			r.s.add(MustWarn, at.loc(), "%s's definition is not in a file beside the template (%s): its routes are not imported; import it with turnout import apigateway", id, at.text())
			return nil
		}
		data, err := r.opt.ReadFile(name)
		if err != nil {
			r.fail(at.loc(), "%s's definition: %v", id, err)
			return nil
		}
		if d, err = parseDoc(name, data, r.d.values); err != nil {
			r.fail(at.loc(), "%s's definition: %v", id, err)
			return nil
		}
		d.params = r.d.params
		body = d.top()
		defer func() {
			// Its placeholders are the template's.
			for k, p := range d.missing {
				r.d.missing[k] = p
			}
			for k, p := range d.defaults {
				r.d.defaults[k] = p
			}
		}()
	}
	res := r.top.get("Resources")
	ar := &apiReader{d: d, s: r.s, top: body, base: r.base, http: kind == "http",
		origins: map[string]string{}, functions: map[string]string{}, names: r.names,
		prefix: "Resources." + id + ".DefinitionBody."}
	ar.local = func(uri val) (string, bool) {
		fn, arg, ok := uri.intrinsic()
		if !ok {
			return "", false
		}
		target := ""
		switch fn {
		case "Fn::GetAtt":
			name := arg.raw()
			if it := arg.items(); len(it) == 2 {
				name = it[0].raw() + "." + it[1].raw()
			}
			target, _ = strings.CutSuffix(name, ".Arn")
		case "Fn::Sub":
			text := arg.raw()
			if it := arg.items(); len(it) == 2 {
				text = it[0].raw()
			}
			if m := samArn.FindStringSubmatch(text); m != nil {
				target = m[1]
			}
		}
		if v := res.get(target); target != "" && v.get("Type").raw() == "AWS::Serverless::Function" {
			return r.function(target, v), true
		}
		return "", false
	}
	ar.api()
	routes := ar.paths()
	r.errs = append(r.errs, ar.errs...)
	return routes
}

// eventKind is the kind of API an event belongs to: "rest" for Api,
// "http" for HttpApi (or the kind of the API its RestApiId/ApiId names),
// "" for other events.
func (r *samReader) eventKind(e val) string {
	kind := map[string]string{"Api": "rest", "HttpApi": "http"}[e.get("Type").raw()]
	if kind == "" {
		return ""
	}
	p := e.get("Properties")
	for _, k := range []string{"RestApiId", "ApiId"} {
		if ref := p.get(k); ref.ok() {
			if fn, arg, ok := ref.intrinsic(); ok && fn == "Ref" {
				if k2, ok := r.apis[arg.raw()]; ok {
					kind = k2
				}
			}
		}
	}
	return kind
}

// event reads one Api or HttpApi event of function id into a route.
func (r *samReader) event(id, ev string, e val, typ, fn string) (apiRoute, string) {
	s, p := r.s, e.get("Properties")
	from := fmt.Sprintf("Resources.%s.Events.%s", id, ev)
	kind := r.eventKind(e)
	if a := p.get("Auth"); a.present() {
		if az := a.get("Authorizer").raw(); az != "NONE" || a.get("ApiKeyRequired").boolean() {
			s.add(MustWarn, a.loc(), "%s: the event's Auth is not carried over: the route is open to anyone", from)
		}
	}
	for _, k := range []string{"RequestParameters", "RequestModel"} {
		if v := p.get(k); v.present() {
			s.add(Warn, v.loc(), "%s: %s (request validation) is not carried over", from, k)
		}
	}
	route := Route{From: from, Loc: e.loc(), Function: fn, Payload: "1.0"}
	if kind == "http" {
		route.Payload = "2.0"
		if v := p.get("PayloadFormatVersion"); v.ok() {
			route.Payload = v.raw()
			if route.Payload != "1.0" && route.Payload != "2.0" {
				r.fail(v.loc(), "%s: PayloadFormatVersion %q: API Gateway has 1.0 and 2.0", from, route.Payload)
			}
		}
	}
	if t, ok := p.get("TimeoutInMillis").integer(); ok && t > 0 {
		route.TimeoutMS = t
	}
	rt := apiRoute{from: from, loc: e.loc(), target: "function:" + fn}
	path, _ := p.get("Path").str()
	method := strings.ToUpper(p.get("Method").raw())
	if method == "" || method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
		method = "ANY"
	}
	rt.method = method
	trimmed := path
	if trimmed != "/" {
		trimmed = strings.TrimSuffix(trimmed, "/")
	}
	switch {
	case kind == "http" && path == "" && !p.get("Method").ok():
		route.Patterns = []string{r.base + "/"} // the HTTP API's $default
	case !strings.HasPrefix(path, "/") || strings.Contains(path, "//") || hasDotSegment(path) || strings.ContainsAny(path, " ?#*%\\\"") || !validResourcePath(trimmed):
		if filled(path) {
			r.fail(p.get("Path").loc(), "%s: Path %q is not an API Gateway path", from, path)
		}
	case !slices.Contains(append(slices.Clone(cfMethods), "ANY"), method):
		r.fail(p.get("Method").loc(), "%s: Method %q", from, method)
	default:
		rt.setPath(&route, r.base+path, method)
	}
	s.Routes = append(s.Routes, route)
	return rt, kind
}
