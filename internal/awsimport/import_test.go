package awsimport

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var templateValues = Values{Set: map[string]string{
	"LegacyHost":                "lb.example.com",
	"Api":                       "a1b2c3d4e5",
	"AWS::Region":               "eu-west-1",
	"Assets.RegionalDomainName": "shop-assets.s3.eu-west-1.amazonaws.com",
}, UseDefaults: true}

var samValues = Values{Set: map[string]string{
	"legacy": "http://10.0.0.5:8080", "AWS::Region": "eu-west-1",
	"ListOrders.Arn": "arn:aws:lambda:eu-west-1:123456789012:function:list-orders",
	"GetOrder.Arn":   "arn:aws:lambda:eu-west-1:123456789012:function:get-order",
}, UseDefaults: true}

// readTestdata reads a file a template in testdata names.
func readTestdata(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }

var slsValues = Values{Set: map[string]string{"legacy": "http://10.0.0.5:8080", "env:AWS_REGION": "eu-west-1"}, UseDefaults: true}

// goldenCases are the hand-written samples in testdata (following AWS's
// documented schemas) and how each is imported.
var goldenCases = []struct {
	name, file string
	opt        Options
	api        *APIOptions // an API Gateway export, read with these options
	sam        *SAMOptions // a SAM template, read with these options
	sls        *ServerlessOptions
}{
	{"distribution-config", "distribution-config.json", Options{}, nil, nil, nil},
	{"glob-semantics", "glob-semantics.json", Options{Format: FormatDistribution}, nil, nil, nil},
	{"risky", "risky.json", Options{}, nil, nil, nil},
	{"template-yaml", "template.yaml", Options{Values: templateValues}, nil, nil, nil},
	{"template-yaml-placeholders", "template.yaml", Options{}, nil, nil, nil},
	{"template-json", "template.json", Options{Format: FormatCloudFormation, Values: Values{UseDefaults: true}}, nil, nil, nil},
	{"template-json-set", "template.json", Options{Values: Values{Set: map[string]string{"OriginDomain": "shop.internal"}}}, nil, nil, nil},
	{"openapi3-http", "openapi3-http.json", Options{}, &APIOptions{}, nil, nil},
	{"openapi3-http-base-path", "openapi3-http.json", Options{}, &APIOptions{BasePath: "/v1"}, nil, nil},
	{"swagger2-rest", "swagger2-rest.yaml", Options{}, &APIOptions{Values: Values{Set: map[string]string{"stageVariables.legacyHost": "lb.example.com"}}}, nil, nil},
	{"swagger2-rest-placeholders", "swagger2-rest.yaml", Options{}, &APIOptions{}, nil, nil},
	{"openapi3-rest", "openapi3-rest.yaml", Options{}, &APIOptions{Values: Values{Set: map[string]string{"legacy": "http://10.0.0.5:8080", "stageVariables.alias": "live"}}}, nil, nil},
	{"sam-hosted", "sam-template.yaml", Options{}, nil, &SAMOptions{Values: samValues}, nil},
	{"sam-aws", "sam-template.yaml", Options{}, nil, &SAMOptions{Functions: FunctionsAWS, Values: samValues}, nil},
	{"sam-placeholders", "sam-template.yaml", Options{}, nil, &SAMOptions{}, nil},
	{"sam-definition", "sam-definition.yaml", Options{}, nil, &SAMOptions{Values: samValues}, nil},
	{"sam-include", "sam-include.yaml", Options{}, nil, &SAMOptions{Values: samValues, API: "http", ReadFile: readTestdata}, nil},
	{"serverless-http", "serverless.yml", Options{}, nil, nil, &ServerlessOptions{API: "http", Values: slsValues}},
	{"serverless-rest", "serverless.yml", Options{}, nil, nil, &ServerlessOptions{API: "rest", Functions: FunctionsAWS, Values: slsValues}},
	{"serverless-placeholders", "serverless.yml", Options{}, nil, nil, &ServerlessOptions{API: "http"}},
}

// importCase imports a golden case's file.
func importCase(t testing.TB, file string, opt Options, api *APIOptions, sam *SAMOptions, sls *ServerlessOptions) *Result {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var res *Result
	switch {
	case sls != nil:
		res, err = ImportServerless(filepath.Base(file), data, *sls)
	case sam != nil:
		res, err = ImportSAM(filepath.Base(file), data, *sam)
	case api != nil:
		res, err = ImportAPIGateway(filepath.Base(file), data, *api)
	default:
		res, err = ImportCloudFront(filepath.Base(file), data, opt)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// report is what a golden file holds: findings, placeholders, the config.
func report(res *Result) []byte {
	var b bytes.Buffer
	b.WriteString("== findings\n")
	for _, f := range res.Setup.Findings {
		fmt.Fprintln(&b, f)
	}
	b.WriteString("== placeholders\n")
	for _, p := range res.Setup.Placeholders {
		fmt.Fprintf(&b, "%s: %s (default %q: %v)\n", p.Loc, p.Name, p.Default, p.HasDefault)
	}
	b.WriteString("== config\n")
	b.Write(res.Config)
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			res := importCase(t, filepath.Join("testdata", tc.file), tc.opt, tc.api, tc.sam, tc.sls)
			got := report(res)
			golden := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test -run TestGolden -update, then review the diff):\n%s", golden, got)
			}
			if res.Config != nil {
				if _, err := config.Parse(tc.file, res.Config); err != nil {
					t.Errorf("the imported config does not validate: %v", err)
				}
			}
		})
	}
}

// TestMustWarn: every feature that would open or break access is a
// MUST-WARN at its own location.
func TestMustWarn(t *testing.T) {
	res := importFile(t, "testdata/risky.json", Options{})
	want := map[string]string{
		"/DistributionConfig/WebACLId":                                                  "WAF",
		"/DistributionConfig/Restrictions/GeoRestriction":                               "geographic restriction",
		"/DistributionConfig/Origins/Items/0/CustomHeaders":                             "X-Origin-Secret",
		"/DistributionConfig/Origins/Items/1/OriginAccessControlId":                     "origin access control",
		"/DistributionConfig/CacheBehaviors/Items/0/TrustedKeyGroups":                   "signed URLs",
		"/DistributionConfig/CacheBehaviors/Items/1/FieldLevelEncryptionId":             "field-level encryption",
		"/DistributionConfig/CacheBehaviors/Items/1/LambdaFunctionAssociations/Items/0": "Lambda@Edge function runs on viewer-request",
		"/DistributionConfig/DefaultCacheBehavior/FunctionAssociations/Items/0":         "CloudFront Function runs on viewer-request",
		"/DistributionConfig/CacheBehaviors/Items/0":                                    "403",
	}
	got := map[string]string{}
	for _, f := range res.Setup.MustWarns() {
		got[f.Loc.Pointer] += f.Msg
		if f.Loc.Line == 0 || f.Loc.File != "testdata/risky.json" {
			t.Errorf("%v: no file:line", f)
		}
		if strings.Contains(f.Msg, "do-not-print-me") {
			t.Errorf("a header value reached a finding: %v", f)
		}
	}
	for ptr, sub := range want {
		if !strings.Contains(got[ptr], sub) {
			t.Errorf("no MUST-WARN at %s saying %q; MUST-WARNs: %v", ptr, sub, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d MUST-WARN locations, want %d: %v", len(got), len(want), got)
	}
}

func TestPlaceholders(t *testing.T) {
	data, err := os.ReadFile("testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := ImportCloudFront("template.yaml", data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range res.Setup.Placeholders {
		names = append(names, p.Name+"@"+p.Loc.String())
	}
	want := []string{
		"AWS::Region@template.yaml:31 (/Resources/Edge/Properties/DistributionConfig/Origins/1/DomainName)",
		"Api@template.yaml:31 (/Resources/Edge/Properties/DistributionConfig/Origins/1/DomainName)",
		"Assets.RegionalDomainName@template.yaml:36 (/Resources/Edge/Properties/DistributionConfig/Origins/2/DomainName)",
		"LegacyHost@template.yaml:26 (/Resources/Edge/Properties/DistributionConfig/Origins/0/DomainName)",
		"Stage@template.yaml:32 (/Resources/Edge/Properties/DistributionConfig/Origins/1/OriginPath)",
	}
	if !slices.Equal(names, want) {
		t.Errorf("placeholders\n%s\nwant\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	if res.Config != nil {
		t.Error("a config was written while placeholders lack values")
	}
	// A default is used only when asked, and said.
	vs := templateValues
	vs.UseDefaults = false
	res, err = ImportCloudFront("template.yaml", data, Options{Values: vs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Setup.Placeholders) != 1 || res.Setup.Placeholders[0].Name != "Stage" || res.Setup.Placeholders[0].Default != "prod" {
		t.Errorf("without --use-defaults: placeholders %v, want Stage (default prod)", res.Setup.Placeholders)
	}
	vs.Set["Stage"] = "live"
	res, err = ImportCloudFront("template.yaml", data, Options{Values: vs})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(res.Config, []byte(`"https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/live"`)) {
		t.Errorf("--set Stage=live not in the config:\n%s", res.Config)
	}
	if bytes.Contains(res.Config, []byte("defaults used")) {
		t.Errorf("the config claims defaults were used:\n%s", res.Config)
	}
	delete(vs.Set, "Stage")
}

func TestNotCloudFront(t *testing.T) {
	for _, tc := range []struct {
		file, data, want string
		opt              Options
	}{
		{"edge.tf", "", "Terraform is out of scope", Options{}},
		{"main.json", `resource "aws_cloudfront_distribution" "x" {}`, "Terraform is out of scope", Options{}},
		{"a.json", `[1, 2]`, "not a JSON object", Options{}},
		{"a.json", `{"Foo": 1}`, "not a CloudFront distribution", Options{}},
		{"a.json", `{"DistributionConfig": {"Origins": []}}`, "no DefaultCacheBehavior", Options{}},
		{"a.json", `{"DistributionConfig": `, "a.json:", Options{}},
		{"a.yaml", "Resources: {}\n", "no AWS::CloudFront::Distribution", Options{}},
		{"a.yaml", "Resources: {A: {Type: AWS::CloudFront::Distribution}, B: {Type: AWS::CloudFront::Distribution}}\n", "--resource", Options{}},
		{"a.yaml", "Resources: {A: {Type: AWS::CloudFront::Distribution}}\n", `no AWS::CloudFront::Distribution named "C"`, Options{Resource: "C"}},
		{"a.json", `{"DefaultCacheBehavior": {}}`, "not a CloudFormation template", Options{Format: FormatCloudFormation}},
		{"a.json", `{"DefaultCacheBehavior": {}}`, `--format "x"`, Options{Format: "x"}},
	} {
		data := []byte(tc.data)
		if tc.file == "edge.tf" {
			data, _ = os.ReadFile("testdata/edge.tf")
		}
		_, err := ImportCloudFront(tc.file, data, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want one saying %q", tc.file, tc.data, err, tc.want)
		}
		if tc.want == "Terraform is out of scope" && !errors.Is(err, ErrTerraform) {
			t.Errorf("%s: %v is not ErrTerraform", tc.file, err)
		}
	}
}

// TestShapesComplete is the round trip: for random requests over the
// patterns' bytes, the source and the imported config's real route table
// agree exactly where Shapes lists no difference, and each difference is
// one Shapes lists.
func TestShapesComplete(t *testing.T) {
	for _, tc := range goldenCases {
		if strings.HasSuffix(tc.name, "-placeholders") {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			res := importCase(t, filepath.Join("testdata", tc.file), tc.opt, tc.api, tc.sam, tc.sls)
			if !res.Complete {
				t.Fatal("the shape search stopped at its bounds on a small sample")
			}
			listed := map[string]bool{}
			for _, sh := range res.Shapes {
				for _, m := range sh.Methods {
					listed[shapeKey(m, sh.Source, sh.Turnout)] = true
				}
			}
			alpha := alphabet(append(slices.Clone(res.Setup.srcMatchers), globMatcher("/xyz.A")))
			rng := rand.New(rand.NewPCG(1, 2))
			tr := Turnout{C: res.Parsed}
			for range 20000 {
				n := 1 + rng.IntN(24)
				b := []byte{'/'}
				for range n {
					b = append(b, alpha[rng.IntN(len(alpha))])
				}
				m := cfMethods[rng.IntN(len(cfMethods))]
				out := Check(res.Setup.Source, tr, []Request{{m, string(b)}})[0]
				if out.Turnout.Status == 400 {
					continue // a path turnout refuses (dot segments): outside the shapes
				}
				if out.Differs() && !listed[shapeKey(m, out.Source, out.Turnout)] {
					t.Fatalf("%s %s: source → %s, turnout → %s: a difference Shapes does not list", m, b, out.Source, out.Turnout)
				}
			}
		})
	}
}

func shapeKey(method string, src, dst Decision) string {
	return fmt.Sprintf("%s|%d|%d|%d|%s", method, src.Rule, src.Status, dst.Status, dst.Target)
}

func FuzzReadCloudFront(f *testing.F) {
	for _, tc := range goldenCases {
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(`{"DistributionConfig": {"DefaultCacheBehavior": {"TargetOriginId": "a"}, "CacheBehaviors": [{"PathPattern": "*?*", "TargetOriginId": "a"}], "Origins": [{"Id": "a", "DomainName": "a"}]}}`)
	f.Fuzz(func(t *testing.T, src string) {
		res, err := ImportCloudFront("fuzz.yaml", []byte(src), Options{Values: Values{UseDefaults: true}})
		checkFuzzed(t, src, res, err)
	})
}

func FuzzReadSAM(f *testing.F) {
	for _, tc := range goldenCases {
		if tc.sam == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, src string) {
		res, err := ImportSAM("fuzz.yaml", []byte(src), SAMOptions{Values: samValues})
		checkFuzzed(t, src, res, err)
	})
}

func FuzzReadServerless(f *testing.F) {
	for _, tc := range goldenCases {
		if tc.sls == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add("service: a\nprovider: {stage: ${self:provider.stage}}\nfunctions: {f: {handler: h, events: [{httpApi: '*'}]}}\n")
	f.Fuzz(func(t *testing.T, src string) {
		res, err := ImportServerless("fuzz.yml", []byte(src), ServerlessOptions{API: "http", Values: slsValues})
		checkFuzzed(t, src, res, err)
	})
}

func FuzzReadAPIGateway(f *testing.F) {
	for _, tc := range goldenCases {
		if tc.api == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(`{"openapi": "3.0.1", "paths": {"/a/{b+}": {"get": {"x-amazon-apigateway-integration": {"type": "http_proxy", "uri": "http://h/a/{b}"}}}}}`)
	f.Fuzz(func(t *testing.T, src string) {
		res, err := ImportAPIGateway("fuzz.yaml", []byte(src), APIOptions{Values: Values{UseDefaults: true, Set: map[string]string{"legacy": "http://10.0.0.5"}}})
		checkFuzzed(t, src, res, err)
	})
}

// checkFuzzed: an import either fails with a message about the source, or
// lists placeholders, or writes a config that validates.
func checkFuzzed(t *testing.T, src string, res *Result, err error) {
	{
		if err != nil {
			if strings.Contains(err.Error(), "does not validate") || strings.Contains(err.Error(), "internal error") {
				t.Fatalf("an imported config did not validate: %v\n%s", err, src)
			}
			return
		}
		if res.Config == nil {
			if len(res.Setup.Placeholders) == 0 {
				t.Fatal("no config and no placeholders")
			}
			return
		}
		if _, err := config.Parse("out.yaml", res.Config); err != nil {
			t.Fatalf("imported config does not validate: %v", err)
		}
	}
}

// miniDistribution is a distribution over origins a and b with the given
// cache behaviours (JSON objects) and a default behaviour on a allowing
// every method.
func miniDistribution(behaviours ...string) []byte {
	return []byte(fmt.Sprintf(`{"DistributionConfig": {
  "Origins": [{"Id": "a", "DomainName": "a.example.com"}, {"Id": "b", "DomainName": "b.example.com"}],
  "CacheBehaviors": [%s],
  "DefaultCacheBehavior": {"TargetOriginId": "a", "AllowedMethods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]}}}`,
		strings.Join(behaviours, ", ")))
}

func TestResolveConflicts(t *testing.T) {
	// "/api/admin/" (every method) and "GET /api/" conflict in ServeMux:
	// the first is written once per method.
	res, err := ImportCloudFront("mini.json", miniDistribution(
		`{"PathPattern": "api/admin/*", "TargetOriginId": "b", "AllowedMethods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]}`,
		`{"PathPattern": "api/*", "TargetOriginId": "a"}`,
	), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Parsed.Routes {
		got = append(got, r.Match+"→"+r.Origin)
	}
	want := []string{"GET /api/admin/→b", "OPTIONS /api/admin/→b", "PUT /api/admin/→b", "PATCH /api/admin/→b", "POST /api/admin/→b", "DELETE /api/admin/→b", "GET /api/→a", "/→a"}
	if !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	// Two patterns with one translation: the first in CloudFront's order
	// keeps it, and the second's requests are listed where they differ.
	res, err = ImportCloudFront("mini.json", miniDistribution(
		`{"PathPattern": "img/*.png", "TargetOriginId": "b"}`,
		`{"PathPattern": "img/*.gif", "TargetOriginId": "a"}`,
	), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var warned, listed bool
	for _, f := range res.Setup.Findings {
		warned = warned || f.Level == Warn && strings.Contains(f.Msg, `pattern "GET /img/" is already the route of CacheBehaviors[0]`)
		listed = listed || strings.Contains(f.Msg, `/img/.gif: CloudFront → origin:a (CacheBehaviors[1] PathPattern "img/*.gif"); turnout → origin:b`)
	}
	if !warned || !listed {
		t.Errorf("warned %v, listed %v; findings:\n%v", warned, listed, res.Setup.Findings)
	}
}
