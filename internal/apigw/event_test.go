package apigw

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

var update = flag.Bool("update", false, "rewrite testdata/events/*.v1.json and *.v2.json from the current output")

// fixedTime is the time of AWS's documented 2.0 example event.
var fixedTime = time.UnixMilli(1587481701067)

// requestCase describes one request in testdata/events/NAME.req.json.
type requestCase struct {
	Method     string      `json:"method"`
	Target     string      `json:"target"`
	Host       string      `json:"host"`
	Proto      string      `json:"proto"`
	Headers    [][2]string `json:"headers"` // in order; repeats allowed
	Body       string      `json:"body"`
	BodyBase64 string      `json:"bodyBase64"`
	Info       struct {
		Route      string            `json:"route"`
		Resource   string            `json:"resource"`
		PathParams map[string]string `json:"pathParams"`
		Stage      string            `json:"stage"`
		RequestID  string            `json:"requestId"`
		SourceIP   string            `json:"sourceIp"`
	} `json:"info"`
}

func (c *requestCase) build(t testing.TB) (*http.Request, []byte, Info) {
	body := []byte(c.Body)
	if c.BodyBase64 != "" {
		var err error
		if body, err = base64.StdEncoding.DecodeString(c.BodyBase64); err != nil {
			t.Fatal(err)
		}
	}
	r := httptest.NewRequest(c.Method, c.Target, nil)
	r.Host = c.Host
	r.RemoteAddr = "203.0.113.7:51234"
	if c.Proto == "HTTP/2.0" {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	}
	for _, h := range c.Headers {
		r.Header.Add(h[0], h[1])
	}
	in := Info{
		Route:      c.Info.Route,
		Resource:   c.Info.Resource,
		PathParams: c.Info.PathParams,
		Stage:      c.Info.Stage,
		RequestID:  c.Info.RequestID,
		SourceIP:   c.Info.SourceIP,
		Time:       fixedTime,
		Path:       r.URL.EscapedPath(),
	}
	return r, body, in
}

func loadCases(t testing.TB) map[string]*requestCase {
	files, err := filepath.Glob("testdata/events/*.req.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	cases := map[string]*requestCase{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := new(requestCase)
		if err := json.Unmarshal(b, c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cases[strings.TrimSuffix(f, ".req.json")] = c
	}
	return cases
}

// TestEventGolden compares each case's events with the expected JSON,
// structurally: key order and spacing do not matter, values and types do.
func TestEventGolden(t *testing.T) {
	for base, c := range loadCases(t) {
		t.Run(filepath.Base(base), func(t *testing.T) {
			for _, f := range []struct {
				ext   string
				event func(*http.Request, []byte, Info) ([]byte, error)
			}{{".v1.json", EventV1}, {".v2.json", EventV2}} {
				r, body, in := c.build(t)
				got, err := f.event(r, body, in)
				if err != nil {
					t.Fatal(err)
				}
				if *update {
					var v any
					json.Unmarshal(got, &v)
					pretty, _ := json.MarshalIndent(v, "", "  ")
					if err := os.WriteFile(base+f.ext, append(pretty, '\n'), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(base + f.ext)
				if err != nil {
					t.Fatal(err)
				}
				var g, w map[string]any
				if err := json.Unmarshal(got, &g); err != nil {
					t.Fatalf("%s: output is not JSON: %v", f.ext, err)
				}
				if err := json.Unmarshal(want, &w); err != nil {
					t.Fatalf("%s: %v", f.ext, err)
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s differs\n got: %s\nwant: %s", f.ext, got, want)
				}
				// The event must also decode into aws-lambda-go's types.
				if f.ext == ".v1.json" {
					var e events.APIGatewayProxyRequest
					if err := json.Unmarshal(got, &e); err != nil {
						t.Error(err)
					}
				} else {
					var e events.APIGatewayV2HTTPRequest
					if err := json.Unmarshal(got, &e); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
}

// TestEventKeepsWhatAWSLoses states the headline promises directly, so a
// careless -update cannot erase them.
func TestEventKeepsWhatAWSLoses(t *testing.T) {
	r := httptest.NewRequest("GET", "/items?id=1&id=2&idList=1;2;3&q=a+b%20c&bad=%zz&flag", nil)
	r.Header.Add("Cookie", "a=1; b=2")
	r.Header.Add("Cookie", "c=3")
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two")
	in := Info{Route: "GET /items", Time: fixedTime}

	v1, b := decodeV1(t, r, in)
	wantMulti := map[string][]string{
		"id": {"1", "2"}, "idList": {"1;2;3"}, "q": {"a b c"}, "bad": {"%zz"}, "flag": {""},
	}
	if !reflect.DeepEqual(v1.MultiValueQueryStringParameters, wantMulti) {
		t.Errorf("multiValueQueryStringParameters = %v, want %v", v1.MultiValueQueryStringParameters, wantMulti)
	}
	if v1.QueryStringParameters["id"] != "2" {
		t.Errorf("queryStringParameters.id = %q, want last value 2", v1.QueryStringParameters["id"])
	}
	if got := v1.MultiValueHeaders["X-Multi"]; !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Errorf("multiValueHeaders[X-Multi] = %v", got)
	}
	if !strings.Contains(string(b), `"body":null`) {
		t.Errorf("1.0 empty body must be null: %s", b)
	}

	v2, b := decodeV2(t, r, in)
	if v2.RawQueryString != r.URL.RawQuery {
		t.Errorf("rawQueryString = %q, want %q", v2.RawQueryString, r.URL.RawQuery)
	}
	if v2.QueryStringParameters["id"] != "1,2" || v2.QueryStringParameters["idList"] != "1;2;3" {
		t.Errorf("queryStringParameters = %v", v2.QueryStringParameters)
	}
	if !reflect.DeepEqual(v2.Cookies, []string{"a=1", "b=2", "c=3"}) {
		t.Errorf("cookies = %q", v2.Cookies)
	}
	if _, ok := v2.Headers["cookie"]; ok {
		t.Error("2.0 headers must not repeat the cookies")
	}
	if v2.Headers["x-multi"] != "one,two" {
		t.Errorf("headers[x-multi] = %q", v2.Headers["x-multi"])
	}
}

func TestRouteKey(t *testing.T) {
	for _, tc := range []struct{ route, key, resource string }{
		{"GET /user/{id}", "GET /user/{id}", "/user/{id}"},
		{"ANY /api/{proxy...}", "ANY /api/{proxy+}", "/api/{proxy+}"},
		{"/api/{proxy...}", "ANY /api/{proxy+}", "/api/{proxy+}"},
		{"GET api.example.com/x/{rest...}", "GET /x/{rest+}", "/x/{rest+}"},
		{"GET /exact/{$}", "GET /exact/", "/exact/"},
		{"/", "$default", "/"},
		{"GET /", "$default", "/"},
		{"api.example.com/", "$default", "/"},
		{"", "$default", ""},
	} {
		if got := routeKey(tc.route); got != tc.key {
			t.Errorf("routeKey(%q) = %q, want %q", tc.route, got, tc.key)
		}
		if got := resource("", tc.route); got != tc.resource {
			t.Errorf("resource(%q) = %q, want %q", tc.route, got, tc.resource)
		}
	}
}

func TestTextual(t *testing.T) {
	for ct, want := range map[string]bool{
		"": true, "text/plain": true, "text/html; charset=utf-8": true,
		"application/json": true, "Application/JSON": true, "application/vnd.api+json": true,
		"application/xml": true, "application/atom+xml": true,
		"application/x-www-form-urlencoded": true, "application/javascript": true,
		"image/png": false, "application/octet-stream": false, "multipart/form-data; boundary=x": false,
		"application/pdf": false,
	} {
		if got := textual(ct); got != want {
			t.Errorf("textual(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestManyRepeatedKeys guards against quadratic joins: a 1 MB query of one
// repeated key must build quickly.
func TestManyRepeatedKeys(t *testing.T) {
	q := strings.Repeat("a=1&", 250000)
	r := httptest.NewRequest("GET", "/x?"+q, nil)
	// Joining repeated values must be linear: a quadratic join of 250k
	// values allocates tens of gigabytes. Bytes allocated, unlike time, do
	// not depend on how busy the machine is.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b, err := EventV2(r, nil, Info{Route: "GET /x", Time: fixedTime})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
		t.Errorf("EventV2 allocated %d MiB for 250k repeats of one key", alloc>>20)
	}
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if got := len(e.QueryStringParameters["a"]); got != 250000*2-1 {
		t.Errorf("joined value has %d bytes", got)
	}
}

// TestEventPathKeepsEncoding states what each format carries for a path with
// escapes, so a careless -update cannot change it. 1.0 path and
// requestContext.path are the path as the client spelled it, as REST APIs,
// Function URLs and ALBs deliver it (a decoded path cannot be told apart from
// one with a literal "%", "+" or space, and would be re-split at a decoded
// "?"); 2.0 rawPath is as sent and requestContext.http.path decoded, as a
// Function URL delivers them (an HTTP API decodes both); path parameters are
// decoded in both formats.
func TestEventPathKeepsEncoding(t *testing.T) {
	const sent = "/v1/user/J%C3%BCrgen%20a+b%2B100%25"
	const decoded = "/v1/user/Jürgen a+b+100%"
	r := httptest.NewRequest("GET", sent+"?q=1", nil)
	in := Info{Route: "GET /v1/user/{name}", PathParams: map[string]string{"name": "Jürgen a+b+100%"},
		Time: fixedTime, Path: sent}

	for _, stage := range []string{"", "prod"} {
		in.Stage = stage
		v1, _ := decodeV1(t, r, in)
		wantCtx := sent
		if stage != "" {
			wantCtx = "/prod" + sent
		}
		if v1.Path != sent || v1.RequestContext.Path != wantCtx {
			t.Errorf("stage %q: 1.0 path %q, requestContext.path %q; want %q and %q", stage, v1.Path, v1.RequestContext.Path, sent, wantCtx)
		}
		if got := v1.PathParameters["name"]; got != "Jürgen a+b+100%" {
			t.Errorf("1.0 pathParameters.name = %q, want it decoded", got)
		}
	}

	in.Stage = ""
	v2, _ := decodeV2(t, r, in)
	if v2.RawPath != sent || v2.RequestContext.HTTP.Path != decoded {
		t.Errorf("2.0 rawPath %q, requestContext.http.path %q; want %q and %q", v2.RawPath, v2.RequestContext.HTTP.Path, sent, decoded)
	}
	if got := v2.PathParameters["name"]; got != "Jürgen a+b+100%" {
		t.Errorf("2.0 pathParameters.name = %q, want it decoded", got)
	}
}

// decodeV1 builds r's 1.0 event and decodes it; b is its JSON.
func decodeV1(t *testing.T, r *http.Request, in Info) (events.APIGatewayProxyRequest, []byte) {
	t.Helper()
	return decode[events.APIGatewayProxyRequest](t, EventV1, r, nil, in)
}

// decodeV2 builds r's 2.0 event and decodes it; b is its JSON.
func decodeV2(t *testing.T, r *http.Request, in Info) (events.APIGatewayV2HTTPRequest, []byte) {
	t.Helper()
	return decode[events.APIGatewayV2HTTPRequest](t, EventV2, r, nil, in)
}

// decode builds the event of r with body by build (EventV1 or EventV2)
// and decodes it into an E; b is its JSON.
func decode[E any](t *testing.T, build func(*http.Request, []byte, Info) ([]byte, error), r *http.Request, body []byte, in Info) (e E, b []byte) {
	t.Helper()
	b, err := build(r, body, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return e, b
}
