package apigw

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// authorizers are the requestContext.authorizer blocks the table runs
// every case with: none, each kind, and the kinds' empty forms.
var authorizers = map[string]*Authorizer{
	"none": nil,
	"jwt": {Claims: map[string]any{
		"sub": "user-1", "cognito:groups": []any{"admin", "users"}, "exp": json.Number("1700000000"),
		"email_verified": true, "nested": map[string]any{"<k>": "a&b", "z": nil}, "nothing": nil,
		"sep": "line\u2028para\u2029", "ctl": "tab\there\x00\x1f\x7f",
	}, Scopes: []string{"read", "write<all>"}},
	"jwt-empty":     {Claims: map[string]any{}, Scopes: []string{}},
	"jwt-nil":       {},
	"lambda":        lambdaAuthorizer(),
	"lambda-nil":    {Lambda: true, PrincipalID: "p-1", Latency: 3},
	"lambda-empty":  {Lambda: true, Context: map[string]any{}},
	"lambda-shadow": {Lambda: true, PrincipalID: "real", Context: map[string]any{"principalId": "spoof", "integrationLatency": 9}},
}

func lambdaAuthorizer() *Authorizer {
	return &Authorizer{Lambda: true, PrincipalID: "user|42", Latency: 17, Context: map[string]any{
		"user": "ü\xff<script>", "n": json.Number("42"), "f": 1.5, "big": 1e21, "small": 1e-7,
		"yes": true, "no": false, "null": nil, "list": []any{1.0, "x", nil, []any{}},
		"obj": map[string]any{"b": "<v>", "a": map[string]any{}}, "": "empty key", "\u2028": "sep key",
	}}
}

// checkEncode fails t unless the hand encoders write exactly marshal's
// bytes (or both fail) for the events of r. With public, EventV2 and
// EventV1 must write them too: only for requests whose events are built
// the same every time (see FuzzEventEncode).
func checkEncode(t *testing.T, r *http.Request, body []byte, in Info, public bool) {
	t.Helper()
	ev2 := buildV2(r, body, in)
	got, err := appendEventV2(nil, ev2)
	want, werr := marshal(ev2)
	sameBytes(t, "2.0", got, err, want, werr)
	if public {
		got, err = EventV2(r, body, in)
		sameBytes(t, "EventV2", got, err, want, werr)
	}

	ev1 := buildV1(r, body, in)
	got, err = appendEventV1(nil, ev1)
	want, werr = marshal(ev1)
	sameBytes(t, "1.0", got, err, want, werr)
	if public {
		got, err = EventV1(r, body, in)
		sameBytes(t, "EventV1", got, err, want, werr)
	}
}

func sameBytes(t *testing.T, what string, got []byte, err error, want []byte, werr error) {
	t.Helper()
	if (err == nil) != (werr == nil) {
		t.Fatalf("%s: error %v, marshal's %v", what, err, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from marshal\n got: %q\nwant: %q", what, got, want)
	}
}

// TestEncodeMatchesMarshal holds the hand encoders to marshal over every
// golden case, each with every kind of authorizer block, with and without
// a stage.
func TestEncodeMatchesMarshal(t *testing.T) {
	for base, c := range loadCases(t) {
		for name, a := range authorizers {
			for _, stage := range []string{"", "prod"} {
				t.Run(filepath.Base(base)+"/"+name+"/"+stage, func(t *testing.T) {
					r, body, in := c.build(t)
					in.Authorizer, in.Stage = a, stage
					checkEncode(t, r, body, in, true)
				})
			}
		}
	}
	t.Run("repeats", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/items?id=1&id=2&idList=1;2;3&q=a+b%20c&bad=%zz&flag&%ff=%00&e=%e2%80%a8", nil)
		r.Header.Add("Cookie", "a=1; b=2")
		r.Header.Add("Cookie", "c=3")
		r.Header.Add("X-Multi", "one")
		r.Header.Add("X-Multi", "two\x01\"\\")
		r.Header["lower-case"] = []string{"raw"}
		r.Header["X-Empty"] = []string{}
		checkEncode(t, r, []byte("<b>\b\f</b>"), Info{Route: "GET /items", Time: fixedTime}, true)
	})
	t.Run("no-host", func(t *testing.T) {
		r := httptest.NewRequest("DELETE", "/", nil)
		r.Host = ""
		checkEncode(t, r, nil, Info{Time: fixedTime}, true)
	})
	t.Run("unencodable", func(t *testing.T) {
		// Both fail alike on a context value JSON cannot hold.
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range []any{math.NaN(), json.Number("1x"), make(chan int)} {
			a := &Authorizer{Lambda: true, Context: map[string]any{"v": v}}
			checkEncode(t, r, nil, Info{Time: fixedTime, Authorizer: a}, true)
		}
	})
}

// TestEncodeUnsetFields fills the fields turnout never sets, so the
// encoders' omitempty and fallbacks for them are held to marshal too.
func TestEncodeUnsetFields(t *testing.T) {
	r := httptest.NewRequest("POST", "/x?a=1", nil)
	in := Info{Route: "POST /x", Time: fixedTime}
	for _, empty := range []bool{true, false} {
		ev2 := buildV2(r, nil, in)
		ev1 := buildV1(r, nil, in)
		if empty {
			ev2.StageVariables = map[string]string{}
			ev2.Cookies = []string{}
			ev2.Headers = nil
			ev2.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}
			ev1.StageVariables = map[string]string{}
			ev1.MultiValueHeaders = map[string][]string{"A": nil, "B": {}}
			ev1.RequestContext.Authorizer = map[string]any{}
		} else {
			ev2.StageVariables = map[string]string{"env": "prod", "b": "<&>"}
			ev2.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{AccessKey: "AK<"}}
			ev2.RequestContext.Authentication = &events.APIGatewayV2HTTPRequestContextAuthentication{}
			ev2.RequestContext.Authentication.ClientCert.SubjectDN = "CN=a&b"
			ev1.StageVariables = map[string]string{"env": "prod"}
			ev1.RequestContext.OperationName = "op"
			id := &ev1.RequestContext.Identity
			id.CognitoIdentityPoolID, id.AccountID, id.CognitoIdentityID, id.Caller = "pool", "acct", "cid", "caller"
			id.APIKey, id.APIKeyID, id.AccessKey = "key", "keyid", "ak"
			id.CognitoAuthenticationType, id.CognitoAuthenticationProvider, id.UserArn, id.User = "t", "p", "arn", "u"
			id.ClientCert = &events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert{IssuerDN: "CN=<x>"}
		}
		got, err := appendEventV2(nil, ev2)
		want, werr := marshal(ev2)
		sameBytes(t, "2.0", got, err, want, werr)
		got, err = appendEventV1(nil, ev1)
		want, werr = marshal(ev1)
		sameBytes(t, "1.0", got, err, want, werr)
	}
	// Only the identity's omitempty fields before sourceIp decide its
	// first comma.
	ev1 := buildV1(r, nil, in)
	ev1.RequestContext.Identity.AccessKey = "only"
	got, err := appendEventV1(nil, ev1)
	want, werr := marshal(ev1)
	sameBytes(t, "1.0 accessKey", got, err, want, werr)
}

// FuzzEventEncode builds both formats' events from arbitrary requests and
// holds the hand encoders to marshal of the same struct, byte for byte.
func FuzzEventEncode(f *testing.F) {
	f.Add("POST", "/x/42", "id=1&id=2&q=a+b%20c", "api.example.com", "X-Test", "a\x00b", "Cookie", "a=1; b=2",
		"application/json", []byte(`{"n":"<1>"}`), uint8(0), "user-1")
	f.Add("GET", "/ü/%zz", "%ff%fe=%00&&=&flag", "127.0.0.1:8080", "x-lower", "\xff\xfe", "User-Agent", "ua\u2028",
		"image/png", []byte{0x89, 'P', 'N', 'G'}, uint8(1), "\x7f\"\\")
	f.Add("PUT", "", "", "", "Host", "h", "", "", "", []byte(nil), uint8(2), "")
	f.Add("PATCH", "/a b", "a=%e2%80%a9", "h.example", "Content-Type", "text/plain; charset=\x01", "X", "\t",
		"text/plain", []byte("line\r\n\b\f"), uint8(7), "1e3")
	f.Fuzz(func(t *testing.T, method, path, query, host, name1, value1, name2, value2, ctype string, body []byte, kind uint8, s string) {
		r := &http.Request{
			Method: method, Proto: "HTTP/1.1", Host: host,
			URL:        &url.URL{Path: path, RawQuery: query},
			Header:     http.Header{},
			RemoteAddr: host,
		}
		r.Header[name1] = append(r.Header[name1], value1)
		r.Header[name2] = append(r.Header[name2], value2, value1)
		if ctype != "" {
			r.Header["Content-Type"] = []string{ctype}
		}
		in := Info{Route: method + " /x/{id}", PathParams: map[string]string{"id": s, s: value2},
			RequestID: s, Time: fixedTime}
		if kind&8 != 0 {
			in.Stage = s
		}
		switch kind & 7 {
		case 1:
			in.Authorizer = &Authorizer{Claims: map[string]any{"sub": s, s: value1, "n": json.Number("7")}, Scopes: []string{s, value2}}
		case 2:
			in.Authorizer = &Authorizer{}
		case 3:
			in.Authorizer = &Authorizer{Lambda: true, PrincipalID: s, Latency: int64(len(body)),
				Context: map[string]any{"k": s, s: value1, "b": len(body) > 3, "f": float64(len(query)) / 3, "l": []any{s, nil}}}
		case 4:
			in.Authorizer = &Authorizer{Lambda: true}
		case 5:
			// An invalid json.Number fails marshal: the encoder must too.
			in.Authorizer = &Authorizer{Lambda: true, Context: map[string]any{"n": json.Number(s)}}
		}
		// Two raw header names can lower-case to one 2.0 header (invalid
		// bytes both become U+FFFD), and which value wins then depends on
		// map order: such a request's builds are compared each with
		// marshal of itself, not with each other.
		lower := map[string]bool{}
		for name := range r.Header {
			lower[strings.ToLower(name)] = true
		}
		checkEncode(t, r, body, in, len(lower) == len(r.Header))
	})
}
