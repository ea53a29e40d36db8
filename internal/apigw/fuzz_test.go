package apigw

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/turnout/turnout/internal/route"
)

// Seeds live in testdata/fuzz/Fuzz*/; these add the documented examples.
var responseSeeds = []string{
	`{"statusCode":200,"headers":{"Content-Type":"text/plain"},"body":"Hello World"}`,
	`{"statusCode":200,"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"isBase64Encoded":true,"body":"aGk="}`,
	`{"statusCode":302,"cookies":["a=1"],"headers":{"Location":"/"}}`,
	`"bare"`, `42`, `{"message":"no status"}`, `null`,
}

func fuzzParse(f *testing.F, parse func([]byte) (*Response, error)) {
	for _, s := range responseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		resp, err := parse(payload)
		if err != nil {
			if resp != nil {
				t.Fatal("error with a response")
			}
			return
		}
		if resp.Status < 200 || resp.Status > 599 {
			t.Fatalf("status %d accepted", resp.Status)
		}
		checkWrite(t, resp)
	})
}

func FuzzParseV1(f *testing.F) { fuzzParse(f, ParseV1) }
func FuzzParseV2(f *testing.F) { fuzzParse(f, ParseV2) }

// FuzzEventV2 builds events from arbitrary query strings, headers and
// bodies: both formats must marshal, decode into aws-lambda-go's types,
// and carry the query exactly.
func FuzzEventV2(f *testing.F) {
	f.Add("id=1&id=2", "X-Test", "a", []byte(""))
	f.Add("idList=1;2;3&q=a+b%20c&bad=%zz&flag&&=", "Cookie", "a=1; b=2", []byte("{}"))
	f.Add("%ff%fe=%00", "Content-Type", "image/png", []byte{0x89, 'P', 'N', 'G'})
	f.Fuzz(func(t *testing.T, query, name, value string, body []byte) {
		r := &http.Request{
			Method: "POST", Proto: "HTTP/1.1", Host: "api.example.com",
			URL:        &url.URL{Path: "/x", RawQuery: query},
			Header:     http.Header{},
			RemoteAddr: "192.0.2.1:1",
		}
		r.Header.Add(name, value)
		r.Header.Add(name, value)
		in := Info{Route: "POST /x", Time: fixedTime}

		e, _ := decode[events.APIGatewayV2HTTPRequest](t, EventV2, r, body, in)
		if utf8.ValidString(query) && e.RawQueryString != query {
			t.Fatalf("rawQueryString %q, want %q", e.RawQueryString, query)
		}
		if len(body) > 0 && !e.IsBase64Encoded && e.Body != string(body) {
			t.Fatalf("text body changed: %q -> %q", body, e.Body)
		}

		e1, _ := decode[events.APIGatewayProxyRequest](t, EventV1, r, body, in)
		pairs := 0
		for p := range strings.SplitSeq(query, "&") {
			if p != "" {
				pairs++
			}
		}
		n := 0
		for _, vs := range e1.MultiValueQueryStringParameters {
			n += len(vs)
		}
		if n != pairs {
			t.Fatalf("%d query values for %d pairs in %q", n, pairs, query)
		}
	})
}

// FuzzEventPath builds events for arbitrary request paths, normalised as the
// gateway does before it matches a route: the 1.0 path, requestContext.path
// and the 2.0 rawPath must be exactly the path that matched, escapes kept.
func FuzzEventPath(f *testing.F) {
	f.Add("/v1/user/J%C3%BCrgen%20a+b%2B100%25")
	f.Add("/files/a%3Fb%23c")
	f.Fuzz(func(t *testing.T, raw string) {
		path, err := route.NormalizePath(raw)
		if err != nil {
			return
		}
		r := &http.Request{
			Method: "GET", Proto: "HTTP/1.1", Host: "api.example.com",
			URL:        &url.URL{Path: path},
			Header:     http.Header{},
			RemoteAddr: "192.0.2.1:1",
		}
		in := Info{Route: "GET /{rest...}", Time: fixedTime, Path: path}
		e1, _ := decodeV1(t, r, in)
		if e1.Path != path || e1.RequestContext.Path != path {
			t.Fatalf("1.0 path %q, requestContext.path %q; want %q", e1.Path, e1.RequestContext.Path, path)
		}
		e2, _ := decodeV2(t, r, in)
		dec, err := url.PathUnescape(path)
		if err != nil {
			t.Fatalf("normalised path %q does not decode: %v", path, err)
		}
		if e2.RawPath != path || e2.RequestContext.HTTP.Path != dec && utf8.ValidString(dec) {
			t.Fatalf("2.0 rawPath %q, requestContext.http.path %q; want %q and %q", e2.RawPath, e2.RequestContext.HTTP.Path, path, dec)
		}
	})
}
