package awsimport

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrTerraform is returned for a Terraform file: reading HCL and its
// module graph is out of scope (issue 18).
var ErrTerraform = errors.New("Terraform is out of scope for turnout import: export the distribution with `aws cloudfront get-distribution-config --id ID` (or `terraform show -json` is not read either) and import that JSON")

// Formats of a CloudFront source.
const (
	FormatAuto           = "auto"
	FormatDistribution   = "distribution-config" // the API's JSON: get-distribution-config, create-distribution input
	FormatCloudFormation = "cloudformation"      // a template's AWS::CloudFront::Distribution
)

// Options says how to read a source file.
type Options struct {
	// Format is FormatAuto (the default), FormatDistribution or
	// FormatCloudFormation.
	Format string
	// Resource picks the distribution by logical id in a template that
	// has several.
	Resource string
	Values   Values
}

// Managed origin request policies that forward the viewer's Host header
// (CloudFront Developer Guide, "Use managed origin request policies").
var forwardsHost = map[string]string{
	"216adef6-5c7f-47e4-b989-5492eafa07d3": "AllViewer",
	"33f36d7e-f396-46d9-90e0-52428a34d9dc": "AllViewerAndCloudFrontHeaders-2022-06",
}

// Managed policies that forward every viewer header but Host.
var forwardsAllButHost = map[string]string{
	"b689b0a8-53d0-40ab-baf2-68738e2966ac": "AllViewerExceptHostHeader",
}

// isTerraform reports whether file is Terraform by its name or content.
func isTerraform(file string, data []byte) bool {
	if strings.HasSuffix(file, ".tf") || strings.HasSuffix(file, ".tf.json") || strings.HasSuffix(file, ".tfvars") {
		return true
	}
	head := data[:min(len(data), 4096)]
	return strings.Contains(string(head), `resource "aws_cloudfront_distribution"`)
}

// ReadCloudFront reads a CloudFront distribution: the JSON of
// get-distribution-config (with or without its ETag wrapper), of
// get-distribution, a create-distribution input, a bare DistributionConfig,
// or the AWS::CloudFront::Distribution resource of a CloudFormation or SAM
// template in JSON or YAML. Errors are about the file as a whole; what the
// file says is in the Setup's findings.
func ReadCloudFront(file string, data []byte, opt Options) (*Setup, error) {
	if isTerraform(file, data) {
		return nil, fmt.Errorf("%s: %w", file, ErrTerraform)
	}
	d, err := parseDoc(file, data, opt.Values)
	if err != nil {
		return nil, err
	}
	top := d.top()
	s := &Setup{File: file}
	if !top.isMap() {
		return nil, fmt.Errorf("%s: not a CloudFront distribution: the document is not a JSON object or YAML mapping", file)
	}
	var dc val
	format := opt.Format
	if format == "" {
		format = FormatAuto
	}
	switch {
	case format != FormatAuto && format != FormatDistribution && format != FormatCloudFormation:
		return nil, fmt.Errorf("--format %q: use auto, %s or %s", format, FormatDistribution, FormatCloudFormation)
	case !top.isMap():
		return nil, fmt.Errorf("%s: not a CloudFront distribution: the document is not a JSON object or YAML mapping", file)
	case format != FormatDistribution && top.get("Resources").ok():
		if dc, err = templateDistribution(d, s, opt.Resource); err != nil {
			return nil, err
		}
	case format == FormatCloudFormation:
		return nil, fmt.Errorf("%s: no Resources: not a CloudFormation template", file)
	case top.get("DistributionConfig").ok():
		dc = top.get("DistributionConfig")
		s.Kind = "create-distribution input"
		if top.get("ETag").ok() {
			s.Kind = "get-distribution-config output"
		}
	case top.get("Distribution").get("DistributionConfig").ok():
		dc = top.get("Distribution").get("DistributionConfig")
		s.Kind = "get-distribution output"
	case top.get("DefaultCacheBehavior").ok():
		dc = top
		s.Kind = "DistributionConfig"
	default:
		return nil, fmt.Errorf("%s: not a CloudFront distribution: expected a DistributionConfig (get-distribution-config's JSON), its ETag wrapper, or a CloudFormation template with an AWS::CloudFront::Distribution", file)
	}
	if !dc.isMap() {
		return nil, fmt.Errorf("%s%s: DistributionConfig is not an object", file, dc.loc().Pointer)
	}
	if !dc.get("DefaultCacheBehavior").isMap() {
		return nil, fmt.Errorf("%s: %s: DistributionConfig has no DefaultCacheBehavior", file, dc.loc())
	}
	r := &cfReader{d: d, s: s, dc: dc}
	r.read()
	return s.finish(d, r.errs)
}

// templateDistribution finds the distribution resource of a template and
// records the template's parameters.
func templateDistribution(d *doc, s *Setup, want string) (val, error) {
	top := d.top()
	d.params = map[string]*yaml.Node{}
	for _, name := range top.get("Parameters").keys() {
		d.params[name] = top.get("Parameters").get(name).get("Default").n
	}
	res := top.get("Resources")
	var found []string
	for _, name := range res.keys() {
		if res.get(name).get("Type").raw() == "AWS::CloudFront::Distribution" {
			found = append(found, name)
		}
	}
	switch {
	case want != "" && !slices.Contains(found, want):
		return val{}, fmt.Errorf("%s: no AWS::CloudFront::Distribution named %q (found: %s)", d.file, want, listOr(found, "none"))
	case want != "":
	case len(found) == 0:
		return val{}, fmt.Errorf("%s: the template has no AWS::CloudFront::Distribution resource", d.file)
	case len(found) > 1:
		return val{}, fmt.Errorf("%s: the template has %d distributions (%s): pick one with --resource NAME", d.file, len(found), strings.Join(found, ", "))
	default:
		want = found[0]
	}
	s.Kind = "CloudFormation resource " + want
	return res.get(want).get("Properties").get("DistributionConfig"), nil
}

func listOr(xs []string, none string) string {
	if len(xs) == 0 {
		return none
	}
	return strings.Join(xs, ", ")
}

type cfReader struct {
	d  *doc
	s  *Setup
	dc val

	// errs are problems CloudFront itself would refuse the file for.
	errs []string

	origins map[string]*cfOrigin // by Id
	order   []string             // Ids in source order
	groups  map[string]cfGroup
}

type cfOrigin struct {
	id    string
	v     val
	index int
	url   string
	s3    bool
	dial  int
	read  int
	// names by host header mode ("origin", "client"), as they are used.
	names map[string]string
	modes []string
	used  bool
}

type cfGroup struct {
	members  []string
	statuses []int
	loc      Loc
}

// fail records a problem that makes the file unusable.
func (r *cfReader) fail(loc Loc, format string, args ...any) {
	r.errs = append(r.errs, loc.String()+": "+fmt.Sprintf(format, args...))
}

func (r *cfReader) read() {
	r.distribution()
	r.readOrigins()
	if len(r.order) == 0 {
		r.fail(r.dc.get("Origins").loc(), "the distribution has no Origins")
	}
	r.readGroups()
	var bs []behaviour
	items := r.dc.get("CacheBehaviors").items()
	for i, b := range items {
		pp, _ := b.get("PathPattern").str()
		from := fmt.Sprintf("CacheBehaviors[%d] PathPattern %q", i, pp)
		bs = append(bs, r.behaviour(b, pp, from))
	}
	bs = append(bs, r.behaviour(r.dc.get("DefaultCacheBehavior"), "*", "DefaultCacheBehavior"))
	r.s.Legacy = r.s.Routes[len(r.s.Routes)-1].Origin
	r.s.Source = &cfRouter{bs: bs}
	for _, b := range bs {
		r.s.srcMatchers = append(r.s.srcMatchers, globMatcher(b.glob))
	}
	r.emitOrigins()
}

// distribution reads the settings of the distribution as a whole.
func (r *cfReader) distribution() {
	dc, s := r.dc, r.s
	if v := dc.get("WebACLId"); v.present() {
		s.add(MustWarn, v.loc(), "a WAF web ACL protects this distribution; turnout has no WAF: put one in front of turnout or accept that its rules no longer apply")
	}
	if g := dc.get("Restrictions").get("GeoRestriction"); g.ok() {
		if t := g.get("RestrictionType").raw(); t != "" && t != "none" {
			s.add(MustWarn, g.loc(), "geographic restriction (%s) is not carried over: every country can reach the API through turnout", t)
		}
	}
	if v := dc.get("DefaultRootObject"); v.present() {
		o := v.text()
		s.add(Warn, v.loc(), "DefaultRootObject %q: CloudFront serves \"/\" as \"/%s\"; turnout forwards \"/\" as it is", o, o)
	}
	if v := dc.get("CustomErrorResponses"); v.present() {
		s.add(Warn, v.loc(), "custom error responses are not carried over: the origin's own error answers reach clients")
	}
	if v := dc.get("Enabled"); v.ok() && !v.boolean() && v.raw() != "" {
		s.add(Warn, v.loc(), "the distribution is disabled (Enabled: false); the imported routes are live once applied")
	}
	if v := dc.get("Aliases"); v.present() {
		var names []string
		for _, a := range v.items() {
			names = append(names, a.text())
		}
		s.add(Info, v.loc(), "aliases %s: turnout routes every host the same way (as CloudFront does for its aliases); list them in tls.domains for ACME certificates", strings.Join(names, ", "))
	}
	known := map[string]bool{"OriginGroups": true, "Origins": true, "DefaultCacheBehavior": true, "CacheBehaviors": true, "WebACLId": true, "Restrictions": true, "DefaultRootObject": true, "CustomErrorResponses": true, "Enabled": true, "Aliases": true, "CallerReference": true, "Comment": true}
	var ignored []string
	for _, k := range dc.keys() {
		if !known[k] {
			ignored = append(ignored, k)
		}
	}
	if len(ignored) > 0 {
		s.add(Info, dc.loc(), "ignored, no effect on routing: %s", strings.Join(ignored, ", "))
	}
}

func (r *cfReader) readOrigins() {
	r.origins = map[string]*cfOrigin{}
	for i, o := range r.dc.get("Origins").items() {
		id, _ := o.get("Id").str()
		if id == "" {
			r.s.add(MustWarn, o.loc(), "origin without an Id: no behaviour can use it")
			continue
		}
		if _, dup := r.origins[id]; dup {
			r.fail(o.get("Id").loc(), "two origins have the Id %q", id)
			continue
		}
		co := &cfOrigin{id: id, v: o, index: i, names: map[string]string{}}
		domain, _ := o.get("DomainName").str()
		path, _ := o.get("OriginPath").str()
		custom := o.get("CustomOriginConfig")
		co.s3 = o.get("S3OriginConfig").ok() || !custom.ok() && strings.Contains(domain, ".s3.")
		scheme, port := "https", ""
		if custom.ok() {
			pol := custom.get("OriginProtocolPolicy").raw()
			switch pol {
			case "http-only":
				scheme = "http"
				if p, ok := custom.get("HTTPPort").integer(); ok && (p < 1 || p > 65535) {
					r.fail(custom.get("HTTPPort").loc(), "origin %q: HTTPPort %d is not a port", id, p)
				} else if ok && p != 80 {
					port = ":" + strconv.Itoa(p)
				}
			case "match-viewer":
				r.s.add(Warn, custom.get("OriginProtocolPolicy").loc(), "origin %q: match-viewer sends HTTP to the origin for HTTP viewers; turnout uses one scheme per origin: https", id)
				fallthrough
			default:
				if p, ok := custom.get("HTTPSPort").integer(); ok && (p < 1 || p > 65535) {
					r.fail(custom.get("HTTPSPort").loc(), "origin %q: HTTPSPort %d is not a port", id, p)
				} else if ok && p != 443 {
					port = ":" + strconv.Itoa(p)
				}
			}
			if t, ok := custom.get("OriginReadTimeout").integer(); ok {
				co.read = t
			}
			if v := custom.get("OriginKeepaliveTimeout"); v.ok() {
				r.s.add(Info, v.loc(), "origin %q: OriginKeepaliveTimeout ignored: turnout keeps idle connections 90 s and honours the origin's Keep-Alive timeout", id)
			}
		}
		if t, ok := o.get("ConnectionTimeout").integer(); ok {
			co.dial = t
		}
		if v := o.get("ConnectionAttempts"); v.ok() {
			r.s.add(Info, v.loc(), "origin %q: ConnectionAttempts ignored: turnout dials once per request and ejects an instance after repeated connect failures", id)
		}
		if filled(domain) && !isHostName(domain) {
			r.fail(o.get("DomainName").loc(), "origin %q: DomainName %q is not a host name", id, domain)
		}
		if filled(path) && path != "" && (!strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.ContainsAny(path, "?#%\\ \t") || strings.Contains(path, "//")) {
			r.fail(o.get("OriginPath").loc(), "origin %q: OriginPath %q must start with / and not end with one (like /prod)", id, path)
		}
		co.url = scheme + "://" + domain + port + path
		for _, key := range []string{"OriginCustomHeaders", "CustomHeaders"} {
			if h := o.get(key); h.present() {
				var names []string
				for _, it := range h.items() {
					names = append(names, it.get("HeaderName").text())
				}
				r.s.add(MustWarn, h.loc(), "origin %q: CloudFront adds header(s) %s to every request to it (often a shared secret the origin checks); turnout cannot add request headers, so the origin may refuse every request", id, strings.Join(names, ", "))
			}
		}
		if v := o.get("S3OriginConfig").get("OriginAccessIdentity"); v.present() {
			r.s.add(MustWarn, v.loc(), "origin %q: an origin access identity signs CloudFront's requests to the bucket; turnout does not sign them, so a private bucket refuses every request", id)
		}
		if v := o.get("OriginAccessControlId"); v.present() {
			r.s.add(MustWarn, v.loc(), "origin %q: origin access control signs CloudFront's requests to the bucket; turnout does not sign them, so a private bucket refuses every request", id)
		}
		if v := o.get("OriginShield"); v.present() {
			r.s.add(Info, v.loc(), "origin %q: Origin Shield is a CloudFront cache layer; ignored", id)
		}
		r.origins[id] = co
		r.order = append(r.order, id)
	}
}

func (r *cfReader) readGroups() {
	r.groups = map[string]cfGroup{}
	for _, g := range r.dc.get("OriginGroups").items() {
		id, _ := g.get("Id").str()
		grp := cfGroup{loc: g.loc()}
		for _, m := range g.get("Members").items() {
			oid, _ := m.get("OriginId").str()
			grp.members = append(grp.members, oid)
		}
		for _, c := range g.get("FailoverCriteria").get("StatusCodes").items() {
			if n, ok := c.integer(); ok {
				grp.statuses = append(grp.statuses, n)
			}
		}
		r.groups[id] = grp
	}
}

// hostMode says whether behaviour b sends the viewer's Host to its origin
// ("client") or the origin's domain ("origin", CloudFront's default).
func (r *cfReader) hostMode(b val, from string) string {
	for _, h := range b.get("ForwardedValues").get("Headers").items() {
		if n := h.raw(); n == "*" || strings.EqualFold(n, "Host") {
			return "client"
		}
	}
	if p := b.get("OriginRequestPolicyId"); p.present() {
		id, _ := p.str()
		if _, ok := forwardsHost[id]; ok {
			return "client"
		}
		if _, ok := forwardsAllButHost[id]; !ok {
			r.s.add(Warn, p.loc(), "%s: origin request policy %s is not a managed one turnout knows: the Host header is assumed not forwarded (host_header: origin); check the policy", from, id)
		}
	}
	return "origin"
}

// behaviour reads one cache behaviour into a Route and the router's view.
func (r *cfReader) behaviour(b val, pattern, from string) behaviour {
	s := r.s
	glob := globPath(pattern)
	for i := 0; i < len(pattern) && filled(pattern); i++ {
		if !validGlobByte(pattern[i]) {
			r.fail(b.get("PathPattern").loc(), "%s: %q is not a CloudFront path pattern: byte %q is not one of A-Z a-z 0-9 _ - . * $ / ~ \" ' @ : + & ?", from, pattern, pattern[i])
			break
		}
	}
	if pattern == "" {
		r.fail(b.loc(), "%s: no PathPattern", from)
	}
	methods := []string{"GET", "HEAD"}
	if am := b.get("AllowedMethods"); am.ok() {
		methods = nil
		for _, m := range am.items() {
			methods = append(methods, strings.ToUpper(m.raw()))
		}
	}
	mode := r.hostMode(b, from)
	tid, _ := b.get("TargetOriginId").str()
	rt := Route{From: from, Loc: b.loc()}
	if g, ok := r.groups[tid]; ok {
		if len(g.members) > 0 {
			rt.Origin = r.use(g.members[0], mode, b, from)
		}
		if len(g.members) > 1 {
			rt.Fallback = r.use(g.members[1], mode, b, from)
			rt.FallbackOn = g.statuses
			s.add(Warn, g.loc, "%s: origin group %q → fallback %s on connect failures, timeouts and statuses %v, replayed for idempotent requests (CloudFront fails over GET, HEAD and OPTIONS only)", from, tid, rt.Fallback, g.statuses)
		}
	} else {
		rt.Origin = r.use(tid, mode, b, from)
	}
	r.features(b, from)
	t := translate(glob)
	rt.Note = t.note
	for _, p := range t.paths {
		rt.Patterns = append(rt.Patterns, methodPatterns(methods, p)...)
	}
	s.Routes = append(s.Routes, rt)
	target := ""
	if rt.Origin != "" {
		target = "origin:" + rt.Origin
	}
	return behaviour{from: from, glob: glob, target: target, methods: methods}
}

// methodPatterns writes path for a CloudFront method list: no method when
// all seven are allowed, else one pattern per method (GET takes HEAD).
func methodPatterns(methods []string, path string) []string {
	if len(methods) >= len(cfMethods) && !slices.ContainsFunc(cfMethods, func(m string) bool { return !slices.Contains(methods, m) }) {
		return []string{path}
	}
	var out []string
	for _, m := range cfMethods {
		if m != "HEAD" && slices.Contains(methods, m) {
			out = append(out, m+" "+path)
		}
	}
	return out
}

// use returns the turnout name of origin id as behaviour b uses it.
func (r *cfReader) use(id, mode string, b val, from string) string {
	o := r.origins[id]
	if o == nil {
		r.s.add(MustWarn, b.get("TargetOriginId").loc(), "%s: TargetOriginId %q names no origin or origin group", from, id)
		return ""
	}
	o.used = true
	if n, ok := o.names[mode]; ok {
		return n
	}
	n := originName(id)
	if len(o.names) > 0 {
		n += "-host-" + mode
		r.s.add(Info, b.loc(), "%s: sends the %s Host header to origin %q, which another behaviour uses the other way: declared twice (%s)", from, mode, id, n)
	}
	o.names[mode] = n
	o.modes = append(o.modes, mode)
	return n
}

// features reports what a behaviour does that turnout does not carry over.
func (r *cfReader) features(b val, from string) {
	s := r.s
	for _, key := range []string{"LambdaFunctionAssociations", "FunctionAssociations"} {
		for _, a := range b.get(key).items() {
			ev := a.get("EventType").raw()
			kind := "Lambda@Edge function"
			if key == "FunctionAssociations" {
				kind = "CloudFront Function"
			}
			if strings.HasSuffix(ev, "-request") {
				s.add(MustWarn, a.loc(), "%s: a %s runs on %s (it may authorise, rewrite or answer requests); turnout does not run it", from, kind, ev)
			} else {
				s.add(Warn, a.loc(), "%s: a %s runs on %s (headers it adds or changes are lost); turnout does not run it", from, kind, ev)
			}
		}
	}
	for _, key := range []string{"TrustedSigners", "TrustedKeyGroups"} {
		if v := b.get(key); v.present() {
			s.add(MustWarn, v.loc(), "%s: %s require signed URLs or cookies; turnout does not check signatures, so the content is open to anyone", from, key)
		}
	}
	if v := b.get("FieldLevelEncryptionId"); v.present() {
		s.add(MustWarn, v.loc(), "%s: field-level encryption is not carried over: the origin receives the fields in clear", from)
	}
	if v := b.get("ResponseHeadersPolicyId"); v.present() {
		s.add(Warn, v.loc(), "%s: response headers policy (CORS, security headers) is not carried over", from)
	}
	caching := []string{}
	for _, k := range []string{"CachePolicyId", "MinTTL", "DefaultTTL", "MaxTTL", "ForwardedValues"} {
		if b.get(k).ok() {
			caching = append(caching, k)
		}
	}
	if len(caching) > 0 {
		s.add(Warn, b.loc(), "%s: caching (%s) is not carried over: turnout does not cache, every request reaches the origin", from, strings.Join(caching, ", "))
	}
	if fv := b.get("ForwardedValues"); fv.ok() {
		var stripped []string
		if q := fv.get("QueryString"); q.ok() && !q.boolean() {
			stripped = append(stripped, "query strings")
		}
		if c := fv.get("Cookies").get("Forward").raw(); c != "" && c != "all" {
			stripped = append(stripped, "cookies ("+c+")")
		}
		hs := fv.get("Headers").items()
		if len(hs) != 1 || hs[0].raw() != "*" {
			stripped = append(stripped, "headers not listed")
		}
		if len(stripped) > 0 {
			s.add(Warn, fv.loc(), "%s: CloudFront strips %s from requests to the origin; turnout forwards them", from, strings.Join(stripped, ", "))
		}
	} else if p := b.get("OriginRequestPolicyId"); p.present() {
		id, _ := p.str()
		if forwardsHost[id] == "" && forwardsAllButHost[id] == "" {
			s.add(Warn, p.loc(), "%s: origin request policy %s decides which query strings, headers and cookies reach the origin; turnout forwards them all", from, id)
		}
	} else {
		s.add(Warn, b.loc(), "%s: without an origin request policy CloudFront sends the origin only what the cache key holds; turnout forwards every query string, header and cookie", from)
	}
	if v := b.get("RealtimeLogConfigArn"); v.present() {
		s.add(Info, v.loc(), "%s: real-time logs ignored (turnout's access log and metrics cover each request)", from)
	}
	if v := b.get("ViewerProtocolPolicy"); v.ok() && v.raw() != "allow-all" {
		s.add(Info, v.loc(), "%s: ViewerProtocolPolicy %s: turnout's tls.redirect_http (on by default with tls) redirects every HTTP request to HTTPS", from, v.raw())
	}
}

// emitOrigins writes the origins in source order, each once per Host
// header mode its behaviours use.
func (r *cfReader) emitOrigins() {
	taken := map[string]bool{}
	for _, id := range r.order {
		o := r.origins[id]
		modes := o.modes
		if len(modes) == 0 {
			modes = []string{"origin"}
			o.names["origin"] = originName(id)
			r.s.add(Info, o.v.loc(), "origin %q is used by no behaviour; declared anyway", id)
		}
		for _, m := range modes {
			name := o.names[m]
			if taken[name] {
				r.s.add(MustWarn, o.v.loc(), "origin %q: its turnout name %q is taken by another origin", id, name)
				continue
			}
			taken[name] = true
			r.s.Origins = append(r.s.Origins, Origin{
				Name: name, URL: o.url, HostHeader: m, Dial: o.dial, ResponseHeader: o.read,
				From: fmt.Sprintf("Origins[%d] Id %q", o.index, id), Loc: o.v.loc(),
			})
		}
	}
}

// filled reports whether s holds no unfilled placeholder (those are
// listed, and nothing is written, until they have values).
func filled(s string) bool { return !strings.Contains(s, "${") }

// isHostName reports whether s is a DNS name or an IP address an origin URL
// can hold.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	if ip := net.ParseIP(s); ip != nil {
		return true
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// originName makes a CloudFront origin Id a turnout origin name: letters,
// digits, '-', '_' and '.', starting with a letter or digit.
func originName(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || b.Len() > 0 && (c == '-' || c == '_' || c == '.')
		switch {
		case ok:
			b.WriteByte(c)
		case b.Len() > 0:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "origin"
	}
	return b.String()
}
