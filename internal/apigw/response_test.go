package apigw

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v2      bool
		payload string
		status  int
		header  http.Header
		body    string
	}{
		{"v1 minimal", false, `{"statusCode":200}`, 200, http.Header{}, ""},
		{"v1 aws example", false, `{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"Hello World"}`,
			200, http.Header{"Content-Type": {"text/plain"}}, "Hello World"},
		{"v1 multi wins over single", false,
			`{"statusCode":201,"headers":{"X-A":"single","X-B":"b"},"multiValueHeaders":{"x-a":["m1","m2"],"Set-Cookie":["a=1","b=2"]},"body":"ok"}`,
			201, http.Header{"X-A": {"m1", "m2"}, "X-B": {"b"}, "Set-Cookie": {"a=1", "b=2"}}, "ok"},
		{"v1 cookies ignored", false, `{"statusCode":200,"cookies":["a=1"]}`, 200, http.Header{}, ""},
		{"v1 base64", false, `{"statusCode":200,"isBase64Encoded":true,"body":"iVBORw0K","headers":{"Content-Type":"image/png"}}`,
			200, http.Header{"Content-Type": {"image/png"}}, "\x89PNG\r\n"},
		{"v1 nulls", false, `{"statusCode":404,"headers":null,"multiValueHeaders":null,"body":null,"isBase64Encoded":null}`,
			404, http.Header{}, ""},
		{"v1 number and bool header values", false, `{"statusCode":200,"headers":{"X-Count":5,"X-Ok":true,"X-Null":null}}`,
			200, http.Header{"X-Count": {"5"}, "X-Ok": {"true"}}, ""},
		{"hop-by-hop dropped", false,
			`{"statusCode":200,"headers":{"Connection":"X-Private","X-Private":"p","Transfer-Encoding":"chunked","Content-Length":"999","Keep-Alive":"timeout=5","Upgrade":"h2c","X-Kept":"k"},"body":"abc"}`,
			200, http.Header{"X-Kept": {"k"}}, "abc"},
		{"204 drops body", false, `{"statusCode":204,"body":"ignored"}`, 204, http.Header{}, ""},
		{"599 is fine", false, `{"statusCode":599}`, 599, http.Header{}, ""},
		{"v2 full", true,
			`{"statusCode":302,"headers":{"Location":"/x"},"cookies":["a=1; Path=/","b=2; HttpOnly"],"body":"moved"}`,
			302, http.Header{"Location": {"/x"}, "Set-Cookie": {"a=1; Path=/", "b=2; HttpOnly"}}, "moved"},
		{"v2 cookies after headers' Set-Cookie", true,
			`{"statusCode":200,"headers":{"Set-Cookie":"h=0"},"cookies":["c=1"]}`,
			200, http.Header{"Set-Cookie": {"h=0", "c=1"}}, ""},
		{"v2 aws-lambda-go zero fields", true,
			`{"statusCode":200,"headers":null,"multiValueHeaders":null,"body":"hi","cookies":null}`,
			200, http.Header{}, "hi"},
		{"v2 base64", true, `{"statusCode":200,"isBase64Encoded":true,"body":"aGVsbG8="}`, 200, http.Header{}, "hello"},
		{"v2 bare string", true, `"hello"`, 200, http.Header{"Content-Type": {"application/json"}}, `"hello"`},
		{"v2 bare number", true, ` 42 `, 200, http.Header{"Content-Type": {"application/json"}}, `42`},
		{"v2 bare object", true, `{"message":"hi","statusText":"x"}`, 200,
			http.Header{"Content-Type": {"application/json"}}, `{"message":"hi","statusText":"x"}`},
		{"v2 bare array", true, `[1,2]`, 200, http.Header{"Content-Type": {"application/json"}}, `[1,2]`},
		{"v2 null", true, `null`, 200, http.Header{"Content-Type": {"application/json"}}, `null`},
		{"v2 statusCode key is case-sensitive", true, `{"StatusCode":500}`, 200,
			http.Header{"Content-Type": {"application/json"}}, `{"StatusCode":500}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse := ParseV1
			if tc.v2 {
				parse = ParseV2
			}
			resp, err := parse([]byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || string(resp.Body) != tc.body || !reflect.DeepEqual(resp.Header, tc.header) {
				t.Errorf("got %d %v %q\nwant %d %v %q", resp.Status, resp.Header, resp.Body, tc.status, tc.header, tc.body)
			}
			checkWrite(t, resp)
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v1, v2  bool // which parsers must reject it
		payload string
		reason  string
	}{
		{"empty", true, true, ``, "not valid JSON"},
		{"truncated", true, true, `{"statusCode":200`, "not valid JSON"},
		{"trailing garbage", true, true, `{"statusCode":200} x`, "not valid JSON"},
		{"v1 bare value", true, false, `"hello"`, "no statusCode"},
		{"v1 object without statusCode", true, false, `{"body":"x"}`, "no statusCode"},
		{"statusCode string", true, true, `{"statusCode":"200"}`, "must be an integer"},
		{"statusCode float", true, true, `{"statusCode":200.5}`, "must be an integer"},
		{"statusCode exponent", true, true, `{"statusCode":2e2}`, "must be an integer"},
		{"statusCode null", true, true, `{"statusCode":null}`, "must be an integer"},
		{"statusCode huge", true, true, `{"statusCode":99999999999999999999}`, "must be an integer"},
		{"statusCode 600", true, true, `{"statusCode":600}`, "out of range"},
		{"statusCode 99", true, true, `{"statusCode":99}`, "out of range"},
		{"statusCode 1xx", true, true, `{"statusCode":100}`, "out of range"},
		{"statusCode negative", true, true, `{"statusCode":-200}`, "out of range"},
		{"headers array", true, true, `{"statusCode":200,"headers":["a"]}`, "headers must be an object"},
		{"header value object", true, true, `{"statusCode":200,"headers":{"X":{"a":1}}}`, "must be a string"},
		{"header name space", true, true, `{"statusCode":200,"headers":{"X Y":"v"}}`, "not a valid HTTP token"},
		{"header name empty", true, true, `{"statusCode":200,"headers":{"":"v"}}`, "not a valid HTTP token"},
		{"header name colon", true, true, `{"statusCode":200,"headers":{"X:":"v"}}`, "not a valid HTTP token"},
		{"header name non-ascii", true, true, `{"statusCode":200,"headers":{"Xé":"v"}}`, "not a valid HTTP token"},
		{"header value CRLF", true, true, `{"statusCode":200,"headers":{"X":"a\r\nSet-Cookie: evil=1"}}`, "control character"},
		{"header value LF", true, true, `{"statusCode":200,"headers":{"X":"a\nb"}}`, "control character"},
		{"header value NUL", true, true, `{"statusCode":200,"headers":{"X":"a\u0000b"}}`, "control character"},
		{"multi not object", true, true, `{"statusCode":200,"multiValueHeaders":"x"}`, "multiValueHeaders must be an object"},
		{"multi value not array", true, true, `{"statusCode":200,"multiValueHeaders":{"X":"v"}}`, "must be an array"},
		{"multi item object", true, true, `{"statusCode":200,"multiValueHeaders":{"X":[{}]}}`, "must hold strings"},
		{"multi bad name", true, true, `{"statusCode":200,"multiValueHeaders":{"X(Y)":["v"]}}`, "not a valid HTTP token"},
		{"multi CR", true, true, `{"statusCode":200,"multiValueHeaders":{"X":["ok","a\rb"]}}`, "control character"},
		{"body number", true, true, `{"statusCode":200,"body":5}`, "body must be a string"},
		{"body object", true, true, `{"statusCode":200,"body":{"a":1}}`, "body must be a string"},
		{"isBase64Encoded string", true, true, `{"statusCode":200,"isBase64Encoded":"true","body":""}`, "true or false"},
		{"bad base64", true, true, `{"statusCode":200,"isBase64Encoded":true,"body":"not base64!"}`, "not valid base64"},
		{"bad base64 padding", true, true, `{"statusCode":200,"isBase64Encoded":true,"body":"aGVsbG8"}`, "not valid base64"},
		{"v2 cookies not array", false, true, `{"statusCode":200,"cookies":"a=1"}`, "cookies must be an array"},
		{"v2 cookie number", false, true, `{"statusCode":200,"cookies":[1]}`, "cookies[0] must be a string"},
		{"v2 cookie CRLF", false, true, `{"statusCode":200,"cookies":["a=1\r\nX: y"]}`, "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []struct {
				name   string
				parse  func([]byte) (*Response, error)
				reject bool
			}{{"v1", ParseV1, tc.v1}, {"v2", ParseV2, tc.v2}} {
				resp, err := p.parse([]byte(tc.payload))
				if !p.reject {
					if err != nil {
						t.Errorf("%s: unexpected error %v", p.name, err)
					}
					continue
				}
				if err == nil {
					t.Errorf("%s: accepted %s as %d %v", p.name, tc.payload, resp.Status, resp.Header)
					continue
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: error %v does not wrap ErrMalformed", p.name, err)
				}
				if !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("%s: error %q does not say %q", p.name, err, tc.reason)
				}
			}
		})
	}
}

// checkWrite writes resp and checks that the recorded response is exactly
// resp, complete and well formed.
func checkWrite(t testing.TB, resp *Response) {
	t.Helper()
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Before", "kept")
	resp.Write(rec)
	res := rec.Result()
	if res.StatusCode != resp.Status {
		t.Fatalf("status %d, want %d", res.StatusCode, resp.Status)
	}
	if rec.Body.String() != string(resp.Body) {
		t.Fatalf("body %q, want %q", rec.Body.String(), resp.Body)
	}
	if bodyAllowed(resp.Status) {
		if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(resp.Body)) {
			t.Fatalf("Content-Length %q, body %d bytes", cl, len(resp.Body))
		}
	} else if len(resp.Body) != 0 || res.Header.Get("Content-Length") != "" {
		t.Fatalf("status %d with a body or Content-Length", resp.Status)
	}
	if _, ok := resp.Header["Content-Type"]; !ok && res.Header.Get("Content-Type") != "" {
		t.Fatalf("Content-Type %q was sniffed", res.Header.Get("Content-Type"))
	}
	for name, vs := range res.Header {
		if !validName(name) {
			t.Fatalf("invalid header name %q", name)
		}
		for _, v := range vs {
			if !validValue(v) {
				t.Fatalf("invalid value in header %q: %q", name, v)
			}
		}
		switch name {
		case "Connection", "Transfer-Encoding", "Keep-Alive", "Upgrade", "Te", "Trailer", "Proxy-Connection":
			t.Fatalf("hop-by-hop header %s written", name)
		}
	}
	for name, vs := range resp.Header {
		if !reflect.DeepEqual(res.Header[name], vs) {
			t.Fatalf("header %s = %q, want %q", name, res.Header[name], vs)
		}
	}
}

// TestWriteOverServer round-trips a response through a real HTTP server
// and client.
func TestWriteOverServer(t *testing.T) {
	resp, err := ParseV2([]byte(`{"statusCode":207,"headers":{"X-A":"1"},"multiValueHeaders":{"X-B":["1","2"]},"cookies":["a=1","b=2"],"isBase64Encoded":true,"body":"/w=="}`))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { resp.Write(w) }))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 8)
	n, _ := res.Body.Read(buf)
	if res.StatusCode != 207 || res.ContentLength != 1 || string(buf[:n]) != "\xff" ||
		!reflect.DeepEqual(res.Header["Set-Cookie"], []string{"a=1", "b=2"}) ||
		!reflect.DeepEqual(res.Header["X-B"], []string{"1", "2"}) || res.Header.Get("Content-Type") != "" {
		t.Errorf("got %d %v %q", res.StatusCode, res.Header, buf[:n])
	}
}
