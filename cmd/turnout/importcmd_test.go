package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/awsimport"
	"github.com/turnout/turnout/internal/config"
)

const importTestdata = "../../internal/awsimport/testdata/"

func runImport(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"import"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestImportRefusesMustWarn(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "turnout.yaml")
	_, stderr, code := runImport(t, "cloudfront", importTestdata+"risky.json", "-o", out)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"risky.json:6 (/DistributionConfig/WebACLId): MUST-WARN",
		"risky.json:28 (/DistributionConfig/CacheBehaviors/Items/1/LambdaFunctionAssociations/Items/0): MUST-WARN",
		"risky.json:12 (/DistributionConfig/Origins/Items/0/CustomHeaders): MUST-WARN",
		"MUST-WARN finding(s) above would open or break access; nothing written",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a config was written despite MUST-WARN findings: %v", err)
	}
	_, stderr, code = runImport(t, "cloudfront", importTestdata+"risky.json", "-o", out, "--accept-risk")
	if code != 0 {
		t.Fatalf("--accept-risk: exit %d; stderr:\n%s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^# MUST-WARN \S*risky.json:6 \(/DistributionConfig/WebACLId\): a WAF`).Match(data) {
		t.Errorf("the config does not list the accepted MUST-WARNs:\n%s", data)
	}
	stdout, stderr, code := func() (string, string, int) {
		var o, e bytes.Buffer
		c := run([]string{"validate", out}, &o, &e)
		return o.String(), e.String(), c
	}()
	if code != 0 {
		t.Fatalf("turnout validate on the import: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestImportPlaceholdersAndErrors(t *testing.T) {
	stdout, stderr, code := runImport(t, "cloudfront", importTestdata+"template.yaml")
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing written", code, stdout)
	}
	for _, want := range []string{
		"template.yaml:26 (/Resources/Edge/Properties/DistributionConfig/Origins/0/DomainName): placeholder LegacyHost has no value",
		`placeholder Stage has no value (template default "prod": --use-defaults)`,
		"5 placeholder(s) without a value: give each with --set NAME=VALUE",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	stdout, stderr, code = runImport(t, "cloudfront", importTestdata+"template.yaml", "--use-defaults", "--accept-risk",
		"--set", "LegacyHost=lb.example.com", "--set", "Api=a1b2", "--set", "AWS::Region=eu-west-1", "--set", "Assets.RegionalDomainName=b.s3.amazonaws.com")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, `Stage = "prod"`) || !strings.Contains(stdout, `url: "https://a1b2.execute-api.eu-west-1.amazonaws.com/prod"`) {
		t.Errorf("config on stdout lacks the default used or the filled URL:\n%s", stdout)
	}
	if _, err := config.Parse("stdout", []byte(stdout)); err != nil {
		t.Errorf("config on stdout does not validate: %v", err)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cloudfront", importTestdata + "edge.tf"}, 1, "Terraform is out of scope"},
		{[]string{"serverless", importTestdata + "serverless.yml"}, 1, "import one with --api rest or --api http"},
		{[]string{"serverless", importTestdata + "serverless.yml", "--api", "soap"}, 1, `--api "soap": use rest or http`},
		{[]string{"nginx", "x"}, 2, `unknown source "nginx": use cloudfront, apigateway, sam or serverless`},
		{[]string{"sam", importTestdata + "sam-template.yaml", "--functions", "lambda"}, 1, `--functions "lambda": use hosted or aws`},
		{[]string{"cloudfront"}, 2, "usage: turnout import"},
		{[]string{"cloudfront", importTestdata + "template.json", "--set", "novalue"}, 2, "want NAME=VALUE"},
		{[]string{"cloudfront", importTestdata + "missing.json"}, 1, "no such file"},
		{[]string{"cloudfront", importTestdata + "template.json", "--check", "get /x"}, 1, "write it in capitals"},
	} {
		_, stderr, code := runImport(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("import %v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestImportSAM(t *testing.T) {
	stdout, stderr, code := runImport(t, "sam", importTestdata+"sam-template.yaml", "--accept-risk", "--use-defaults",
		"--set", "legacy=http://127.0.0.1:9000", "--set", "AWS::Region=eu-west-1")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{`handler: ".aws-sam/build/ListOrders/bootstrap"`, `aws: {function: "orders-reports", region: "eu-west-1"}`, `- match: "GET /orders/{id}"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := config.Parse("stdout", []byte(stdout)); err != nil {
		t.Errorf("config does not validate: %v", err)
	}
	if !strings.Contains(stderr, "sam-template.yaml:66 (/Resources/Reports/Properties/Events/Any/Properties/Auth): MUST-WARN") {
		t.Errorf("stderr lacks the event's Auth MUST-WARN:\n%s", stderr)
	}
	// A definition included from a file beside the template is read from
	// there, wherever turnout runs.
	stdout, stderr, code = runImport(t, "sam", importTestdata+"sam-include.yaml", "--api", "http", "--set", "legacy=http://127.0.0.1:9000")
	if code != 0 || !strings.Contains(stdout, `# from Resources.Api.DefinitionBody.paths["/search"].get`) {
		t.Errorf("sam-include.yaml: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestImportServerless(t *testing.T) {
	stdout, stderr, code := runImport(t, "serverless", importTestdata+"serverless.yml", "--api", "http", "--use-defaults",
		"--set", "legacy=http://127.0.0.1:9000", "--set", "env:AWS_REGION=eu-west-1", "--check", "GET /items/7", "--check", "DELETE /anything", "-o", "-")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{`handler: "bin/get"`, `aws: {function: "catalogue-dev-list", region: "eu-west-1"}`,
		"GET     /items/7   function:get (functions.get.events[0].httpApi)", `stage = "dev"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestImportCheck(t *testing.T) {
	reqs := filepath.Join(t.TempDir(), "requests.txt")
	if err := os.WriteFile(reqs, []byte("# method and path\nGET /live/a\n/docs/\nPOST /live/a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runImport(t, "cloudfront", importTestdata+"glob-semantics.json", "--accept-risk",
		"--check", "https://shop.example.com/thumbnails?size=2", "--check", "PUT /api/x", "--requests", reqs)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (requests routed differently); stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	want := []string{
		`METHOD  PATH         SOURCE`,
		`GET     /thumbnails  origin:images (CacheBehaviors[5] PathPattern "/thumb*")`,
		`PUT     /api/x       origin:api (CacheBehaviors[1] PathPattern "api/*")`,
		`GET     /live/a      origin:live (CacheBehaviors[3] PathPattern "live/*")`,
		`GET     /docs/       origin:live (CacheBehaviors[7] PathPattern "docs/")`,
		`POST    /live/a      403 (CacheBehaviors[3] PathPattern "live/*" allows GET, HEAD)`,
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", stdout)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to start %q", i, lines[i], w)
		}
	}
	for i, differs := range []bool{false, true, false, false, false, true} {
		if strings.HasSuffix(strings.TrimSpace(lines[i]), "DIFFERS") != differs {
			t.Errorf("line %d: %q, DIFFERS %v expected", i, lines[i], differs)
		}
	}
	if !strings.Contains(stderr, "2 of 5 request(s) routed differently") {
		t.Errorf("stderr lacks the summary:\n%s", stderr)
	}
	if strings.Contains(stdout, "origins:") {
		t.Error("with --check and no -o the config is not printed")
	}
}

// TestImportRoundTripServe: import a distribution whose origins are real
// servers, validate, serve it, and send every request of the --check
// table through the running gateway: each lands where the table says
// turnout sends it, and where the shapes list no difference, where
// CloudFront sends it.
func TestImportRoundTripServe(t *testing.T) {
	names := []string{"legacy", "api", "assets"}
	ports := map[string]string{}
	bodies := map[string]string{}
	for _, n := range names {
		s := namedOrigin(t, n)
		u, _ := url.Parse(s.URL)
		ports[n] = u.Port()
		bodies[s.URL] = n
	}
	origin := func(n string) string {
		return fmt.Sprintf(`{"Id": %q, "DomainName": "127.0.0.1", "CustomOriginConfig": {"HTTPPort": %s, "OriginProtocolPolicy": "http-only"}}`, n, ports[n])
	}
	all := `{"Quantity": 7, "Items": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]}`
	get := `{"Quantity": 2, "Items": ["GET", "HEAD"]}`
	orp := `"OriginRequestPolicyId": "216adef6-5c7f-47e4-b989-5492eafa07d3"`
	dist := fmt.Sprintf(`{"ETag": "E1", "DistributionConfig": {
  "CallerReference": "round-trip", "Enabled": true,
  "Origins": {"Quantity": 3, "Items": [%s, %s, %s]},
  "CacheBehaviors": {"Quantity": 4, "Items": [
    {"PathPattern": "api/*", "TargetOriginId": "api", "ViewerProtocolPolicy": "allow-all", "AllowedMethods": %s, %s},
    {"PathPattern": "static/*", "TargetOriginId": "assets", "ViewerProtocolPolicy": "allow-all", "AllowedMethods": %s, %s},
    {"PathPattern": "reports/*.csv", "TargetOriginId": "assets", "ViewerProtocolPolicy": "allow-all", "AllowedMethods": %s, %s},
    {"PathPattern": "health", "TargetOriginId": "api", "ViewerProtocolPolicy": "allow-all", "AllowedMethods": %s, %s}]},
  "DefaultCacheBehavior": {"TargetOriginId": "legacy", "ViewerProtocolPolicy": "allow-all", "AllowedMethods": %s, %s}}}`,
		origin("legacy"), origin("api"), origin("assets"), all, orp, get, orp, get, orp, all, orp, all, orp)
	dir := t.TempDir()
	src := filepath.Join(dir, "distribution.json")
	if err := os.WriteFile(src, []byte(dist), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := awsimport.ImportCloudFront(src, []byte(dist), awsimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/", "/api", "/api/", "/api/orders/7", "/static/app.js", "/static", "/reports/", "/reports/q1.csv",
		"/reports/q1.pdf", "/health", "/health/x", "/healthz", "/Static/app.js", "/x/reports/a.csv"}
	serveAndCompare(t, dir, []string{"cloudfront", src, "--accept-risk"}, res, paths, bodies)
}

// TestImportRoundTripServeAPIGateway is the round trip for an HTTP API
// export whose HTTP integrations are real servers.
func TestImportRoundTripServeAPIGateway(t *testing.T) {
	legacy, items := namedOrigin(t, "monolith"), namedOrigin(t, "items")
	export := fmt.Sprintf(`{"openapi": "3.0.1", "info": {"title": "rt"}, "x-amazon-apigateway-importexport-version": "1.0", "paths": {
  "/legacy/{proxy+}": {"x-amazon-apigateway-any-method": {"x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "ANY", "uri": "%[1]s/legacy/{proxy}", "payloadFormatVersion": "1.0"}}},
  "/items": {"get": {"x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "GET", "uri": "%[2]s/items", "payloadFormatVersion": "1.0"}}},
  "/items/{id}": {"get": {"x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "GET", "uri": "%[2]s/items/{id}", "payloadFormatVersion": "1.0"}}},
  "/$default": {"x-amazon-apigateway-any-method": {"x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "ANY", "uri": "%[1]s", "payloadFormatVersion": "1.0"}}}}}`,
		legacy.URL, items.URL)
	dir := t.TempDir()
	src := filepath.Join(dir, "export.json")
	if err := os.WriteFile(src, []byte(export), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := awsimport.ImportAPIGateway(src, []byte(export), awsimport.APIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/", "/items", "/items/", "/items/7", "/items/7/x", "/legacy", "/legacy/", "/legacy/a/b", "/other"}
	serveAndCompare(t, dir, []string{"apigateway", src, "--accept-risk"}, res, paths, map[string]string{legacy.URL: "monolith", items.URL: "items"})
}

// serveAndCompare imports with args into dir, validates and serves the
// config, and sends each path (with five methods) and each example of the
// shapes routed differently through the gateway: each lands where the
// --check table (res) says turnout sends it, and each difference from the
// source is one the shapes list.
func serveAndCompare(t *testing.T, dir string, args []string, res *awsimport.Result, paths []string, bodies map[string]string) {
	t.Helper()
	answers := map[string]string{} // origin name → what its server answers
	for _, o := range res.Parsed.Origins {
		answers[o.Name] = bodies[o.URLs[0]]
	}
	imported := filepath.Join(dir, "imported.yaml")
	if _, stderr, code := runImport(t, append(args, "-o", imported)...); code != 0 {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	body, err := os.ReadFile(imported)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := writeNodeConfig(t, dir, "off", string(body))
	var vout, verr bytes.Buffer
	if code := run([]string{"validate", cfgPath}, &vout, &verr); code != 0 {
		t.Fatalf("validate: %s%s", vout.String(), verr.String())
	}
	var reqs []awsimport.Request
	for _, p := range paths {
		for _, m := range []string{"GET", "HEAD", "POST", "DELETE", "OPTIONS"} {
			reqs = append(reqs, awsimport.Request{Method: m, Path: p})
		}
	}
	for _, sh := range res.Shapes {
		for _, m := range sh.Methods {
			for _, p := range sh.Examples {
				reqs = append(reqs, awsimport.Request{Method: m, Path: p})
			}
		}
	}
	table := awsimport.Check(res.Setup.Source, awsimport.Turnout{C: res.Parsed}, reqs)
	n := startNode(t, cfgPath)
	for _, o := range table {
		req, err := http.NewRequest(o.Method, "http://"+n.public+o.Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := fmt.Sprint(resp.StatusCode)
		if sb := resp.Header.Get("X-Turnout-Served-By"); strings.HasPrefix(sb, "origin:") {
			got = sb
			if want := answers[strings.TrimPrefix(sb, "origin:")]; o.Method != "HEAD" && string(b) != want {
				t.Errorf("%s %s: served by %s, which is %q, but answered %q", o.Method, o.Path, sb, want, b)
			}
		}
		want := o.Turnout.Target
		if want == "" {
			want = fmt.Sprint(o.Turnout.Status)
		}
		if got != want {
			t.Errorf("%s %s: the gateway sent it to %s, the --check table says %s", o.Method, o.Path, got, o.Turnout)
		}
		if o.Differs() && !shapeCovers(res.Shapes, o) {
			t.Errorf("%s %s: source → %s, turnout → %s, a difference the shapes do not list", o.Method, o.Path, o.Source, o.Turnout)
		}
	}
}

// shapeCovers reports whether a listed shape has o's method and both
// decisions.
func shapeCovers(shapes []awsimport.Shape, o awsimport.Outcome) bool {
	for _, sh := range shapes {
		if sh.Source.Rule == o.Source.Rule && sh.Source.Status == o.Source.Status && sh.Turnout.Target == o.Turnout.Target && sh.Turnout.Status == o.Turnout.Status {
			for _, m := range sh.Methods {
				if m == o.Method {
					return true
				}
			}
		}
	}
	return false
}

// TestImportDocExample runs docs/import.md's --check example (on
// glob-semantics.json, which dist.json stands for) and compares the table
// it prints with the one the page shows.
func TestImportDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/import.md")
	if err != nil {
		t.Fatal(err)
	}
	const prompt = "$ turnout import cloudfront dist.json "
	i := bytes.Index(doc, []byte(prompt))
	if i < 0 {
		t.Fatal("docs/import.md has no --check example")
	}
	block := string(doc[i:])
	block = block[:strings.Index(block, "```")]
	lines := strings.Split(strings.TrimSpace(block), "\n")
	cmdline := strings.TrimPrefix(lines[0], prompt)
	var args []string
	for _, f := range regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(cmdline, -1) {
		args = append(args, strings.Trim(f, `"`))
	}
	stdout, stderr, code := runImport(t, append([]string{"cloudfront", importTestdata + "glob-semantics.json"}, args...)...)
	want := strings.Join(lines[1:len(lines)-1], "\n") + "\n"
	if stdout != want {
		t.Errorf("docs/import.md shows\n%s\nturnout prints\n%s", want, stdout)
	}
	if last := lines[len(lines)-1]; code != 1 || !strings.Contains(stderr, last) {
		t.Errorf("exit %d, stderr %q; the page shows %q", code, stderr, last)
	}
}
