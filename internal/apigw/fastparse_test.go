package apigw

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// typicalV2 is an answer as aws-lambda-go's json.Marshal of
// events.APIGatewayV2HTTPResponse writes it.
const typicalV2 = `{"statusCode":200,"headers":{"Content-Type":"application/json"},"multiValueHeaders":null,"body":"{\"id\":\"7\",\"name\":\"User 7\",\"email\":\"user7@example.com\",\"plan\":\"free\"}\n","cookies":null}`

// fastSeeds are payloads at the edges of parseFast's subset.
var fastSeeds = []string{
	typicalV2,
	`{"statusCode":200,"headers":{"X":"a\"b\\c\/d\be\ff\ng\rh\ti"},"body":"\u00e9\u20ac\ud83d\ude00\u0000"}`,
	`{"statusCode":200,"body":"\ud800","headers":{"X":"\udc00\ud800\u0041"}}`,
	`{"statusCode":200,"body":"\ud800\ud800\udc00 \ud83d\u0041 \ud83d\u00"}`,
	"{\"statusCode\":200,\"body\":\"\xff\xfe\xed\xa0\x80 \xe2\x82\",\"headers\":{\"X\":\"\xc3\xa9\xff\"}}",
	`{"statusCode":200,"body":"a\'b"}`,
	"{\"statusCode\":200,\"body\":\"a\tb\"}",
	`{"statusCode":200,"statusCode":201}`,
	`{"statusCode":200,"headers":{"X":"1","X":"2"}}`,
	`{"statusCode":200,"headers":{"X":"1","X":null}}`,
	`{"statusCode":200,"headers":{"A":"1","\u0041":"2"}}`,
	`{"statusCode":200,"headers":{"content-type":"a","Content-Type":"b","CONTENT-TYPE":"c"}}`,
	`{"statusCode":200,"headers":{"bad name":null,"X-Null":null}}`,
	`{"statusCode":200,"headers":{"X-A":"h","Set-Cookie":"s"},"multiValueHeaders":{"x-a":["1",null,"2"],"X-A":["0"],"X-B":[],"X-C":null,"Set-Cookie":["m"]},"cookies":["c1","c2"]}`,
	`{"statusCode":200,"multiValueHeaders":{"X":[null]},"headers":{"X":"gone"}}`,
	`{"statusCode":200,"multiValueHeaders":{"bad name":[]}}`,
	`{"statusCode":200,"cookies":[]}`,
	`{"statusCode":200,"cookies":[null]}`,
	`{"statusCode":200,"cookies":["a\u000db"]}`,
	`{"statusCode":200,"headers":{"Connection":"X-Private, keep-alive","X-Private":"p","Transfer-Encoding":"chunked","Content-Length":"1"}}`,
	" \t\r\n{ \"statusCode\" : 204 , \"body\" : \"x\" , \"isBase64Encoded\" : null } \n",
	"\v{\"statusCode\":200}\f",
	"\u00a0{\"statusCode\":200}",
	`{"statusCode":304,"isBase64Encoded":true,"body":"!!"}`,
	`{"statusCode":204,"isBase64Encoded":true,"body":"aGk="}`,
	`{"statusCode":304,"body":"x"}`,
	`{"statusCode":200,"body":"\ud800"}`,
	`{"statusCode":200,"body":"\udc00\ud800\u0041\ud83d\ude00"}`,
	"{\"statusCode\":200,\"body\":\"\xff\xed\xa0\x80\"}",
	`{"statusCode":200,"isBase64Encoded":true,"body":"aG\u0056s\/bG8="}`,
	`{"statusCode":200,"isBase64Encoded":true}`,
	`{"statusCode":200,"isBase64Encoded":true,"body":""}`,
	`{"statusCode":200,"isBase64Encoded":true,"body":"aGVs\r\nbG8="}`,
	`{"statusCode":200,"isBase64Encoded":true,"body":"aGVs\nbG8="}`,
	`{"statusCode":200,"isBase64Encoded":false,"body":""}`,
	`{"statusCode":200,"isBase64Encoded":1}`,
	`{"statusCode":0200}`, `{"statusCode":-200}`, `{"statusCode":200.0}`, `{"statusCode":2000}`,
	`{"statusCode":2e2}`, `{"statusCode":199}`, `{"statusCode":600}`, `{"statusCode":599}`,
	`{"statusCode":200,"headers":{"X":5,"Y":true}}`,
	`{"statusCode":200,"headers":{"X":{"a":[1,{"b":null}]}}}`,
	`{"statusCode":200,"other":{"a":[1,2,{}]}}`,
	`{"statusCode":200,}`, `{"statusCode":200,"body":"x"`, `{"statusCode":200} {}`, `{"statusCode":200}}`,
	`{"statusCode":200,"body":nul}`, `{"statusCode":200,"body":nullx}`, `{"statusCode":200,"headers":nullnull}`,
	`{"statusCode":200,"cookies":["a",]}`, `{"statusCode":200,"multiValueHeaders":{"X":["a",]}}`,
	`{"status\u0043ode":200}`, `{"StatusCode":200}`, `{}`, `{"body":"x"}`,
}

// fuzzFast is the differential check: whenever parseFast answers,
// parseSlow accepts the same payload and answers the same.
func fuzzFast(f *testing.F, v2 bool) {
	for _, s := range responseSeeds {
		f.Add([]byte(s))
	}
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkFast(t, payload, v2) })
}

// checkFast checks parseFast against parseSlow on payload and reports
// whether the fast path took it.
func checkFast(t *testing.T, payload []byte, v2 bool) bool {
	t.Helper()
	orig := string(payload)
	fast := parseFast(payload, v2)
	if string(payload) != orig {
		t.Fatal("parseFast changed the payload")
	}
	if fast == nil {
		return false
	}
	slow, err := parseSlow(payload, v2)
	if err != nil {
		t.Fatalf("fast path accepted what the slow path rejects (%v):\n%q\nfast: %d %v %q", err, payload, fast.Status, fast.Header, fast.Body)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast and slow paths differ on\n%q\nfast: %d %#v %#v\nslow: %d %#v %#v",
			payload, fast.Status, fast.Header, fast.Body, slow.Status, slow.Header, slow.Body)
	}
	// The response must not alias the payload.
	if len(fast.Body) > 0 {
		fast.Body[0] ^= 0xff
		if string(payload) != orig {
			t.Fatal("the body aliases the payload")
		}
	}
	return true
}

// FuzzFastParseFields keeps the shape of an answer and fuzzes what is
// between the quotes (written raw: escapes, invalid UTF-8, quotes and all),
// which the byte-level targets rarely reach inside a valid object.
func FuzzFastParseFields(f *testing.F) {
	f.Add(200, "Content-Type", "application/json", "x-a", "1", "X-A", "2", `{\"id\":\"7\"}\n`, "a=1; Path=/", uint8(0))
	f.Add(204, "content-type", "text/plain", "Content-Type", "\\u00e9", "Set-Cookie", "m=1", "aGk=", "c=\\ud83d\\ude00", uint8(0xff))
	f.Add(302, "Location", "/\\u003cx\\u003e", "Connection", "X-A", "X-A", "\\ud800", "\\udc00\\ud800", "b=\xff", uint8(0x5a))
	f.Fuzz(func(t *testing.T, status int, n1, v1, n2, v2, m1, m2, body, cookie string, flags uint8) {
		var b strings.Builder
		field := func(bit uint8, key, value string) {
			if flags&bit == 0 {
				return
			}
			b.WriteString(`,"` + key + `":` + value)
		}
		b.WriteString(`{"statusCode":` + strconv.Itoa(status))
		field(1, "headers", `{"`+n1+`":"`+v1+`","`+n2+`":"`+v2+`"}`)
		field(2, "multiValueHeaders", `{"`+m1+`":["`+m2+`",null,"`+v1+`"],"`+n2+`":[]}`)
		field(4, "body", `"`+body+`"`)
		field(8, "isBase64Encoded", "true")
		field(16, "cookies", `["`+cookie+`","`+v2+`"]`)
		field(32, "headers", "null")
		field(64, "body", "null")
		b.WriteString("}")
		if flags&128 != 0 {
			b.WriteString(" \n")
		}
		for _, v2 := range []bool{false, true} {
			checkFast(t, []byte(b.String()), v2)
		}
	})
}

func FuzzFastParseV1(f *testing.F) { fuzzFast(f, false) }
func FuzzFastParseV2(f *testing.F) { fuzzFast(f, true) }

// TestFastParseTakesCommonShapes checks that the fast path answers what
// aws-lambda-go marshals, and answers as the slow path does; otherwise the
// optimisation would silently do nothing.
func TestFastParseTakesCommonShapes(t *testing.T) {
	marshal := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	jsonBody := "{\"id\":\"7\",\"name\":\"User 7\",\"email\":\"user7@example.com\",\"plan\":\"free\"}\n"
	for _, tc := range []struct {
		name    string
		v2      bool
		payload string
	}{
		{"brief's typical answer", true, typicalV2},
		{"v2 zero", true, marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200})},
		{"v2 json", true, marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200,
			Headers: map[string]string{"Content-Type": "application/json"}, Body: jsonBody})},
		{"v2 headers and cookies", true, marshal(events.APIGatewayV2HTTPResponse{StatusCode: 302,
			Headers: map[string]string{"Location": "/next?a=1&b=<2>", "cache-control": "no-store", "X-Request-Id": "req-1"},
			Cookies: []string{"session=abc; Path=/; HttpOnly", "theme=dark"}, Body: "moved"})},
		{"v2 multi", true, marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200,
			MultiValueHeaders: map[string][]string{"X-Multi": {"1", "2"}}, Headers: map[string]string{"X-Multi": "0"}})},
		{"v2 base64", true, marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200, IsBase64Encoded: true,
			Headers: map[string]string{"Content-Type": "image/png"}, Body: "iVBORw0KGgo="})},
		{"v2 escapes and unicode", true, marshal(events.APIGatewayV2HTTPResponse{StatusCode: 201,
			Headers: map[string]string{"Content-Disposition": `attachment; filename="<r&d>.txt"`},
			Body:    "tab\there \"quoted\" back\\slash <html> & \u2028 é 😀 \x01\x7f"})},
		{"v2 204", true, marshal(events.APIGatewayV2HTTPResponse{StatusCode: 204, Body: "dropped"})},
		{"v2 hop-by-hop", true, marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200,
			Headers: map[string]string{"Connection": "close", "Content-Length": "5", "X-Kept": "k"}, Body: "hello"})},
		{"v1 zero", false, marshal(events.APIGatewayProxyResponse{StatusCode: 200})},
		{"v1 json", false, marshal(events.APIGatewayProxyResponse{StatusCode: 200,
			Headers: map[string]string{"Content-Type": "application/json"}, Body: jsonBody})},
		{"v1 multi", false, marshal(events.APIGatewayProxyResponse{StatusCode: 200,
			Headers:           map[string]string{"Content-Type": "text/plain"},
			MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2"}, "Vary": {"Accept", "Origin"}}, Body: "ok"})},
		{"v1 base64", false, marshal(events.APIGatewayProxyResponse{StatusCode: 200, IsBase64Encoded: true, Body: "aGVsbG8="})},
		{"v1 404", false, marshal(events.APIGatewayProxyResponse{StatusCode: 404, Body: `{"message":"not found"}`})},
		{"whitespace", true, " \n{ \"statusCode\" :\t200 ,\r\n\t\"headers\" : { \"A\" : \"1\" , \"B\":null } , \"cookies\" : [ \"c=1\" , \"d=2\" ] ," +
			" \"multiValueHeaders\" : { \"M\" : [ \"1\" , null ] , \"N\" : [ ] } , \"isBase64Encoded\" : false , \"body\" : \"x\" }\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fast := parseFast([]byte(tc.payload), tc.v2)
			if fast == nil {
				t.Fatalf("fast path refused %s", tc.payload)
			}
			slow, err := parseSlow([]byte(tc.payload), tc.v2)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast %d %#v %q\nslow %d %#v %q", fast.Status, fast.Header, fast.Body, slow.Status, slow.Header, slow.Body)
			}
		})
	}
}

// TestFastParseRefuses checks payloads the fast path must leave to the
// slow path (each would be wrong or lose an error message if taken).
func TestFastParseRefuses(t *testing.T) {
	for _, p := range []string{
		`{"statusCode":200,"statusCode":201}`,
		`{"statusCode":200,"headers":{"X":"1","X":null}}`,
		`{"statusCode":200,"headers":{"X Y":"v"}}`,
		`{"statusCode":200,"headers":{"X":"a\r\nb"}}`,
		`{"statusCode":200,"cookies":[null]}`,
		`{"statusCode":200,"isBase64Encoded":true,"body":"not base64!"}`,
		`{"statusCode":0200}`, `{"statusCode":600}`, `{"statusCode":199}`,
		`{"statusCode":200,"body":"a\'b"}`,
		"{\"statusCode\":200,\"body\":\"a\tb\"}",
		"\v{\"statusCode\":200}",
		`{"statusCode":200,"unknown":1}`,
		`{"statusCode":200} x`,
		`{"body":"x"}`,
		`"bare"`,
	} {
		for _, v2 := range []bool{false, true} {
			if r := parseFast([]byte(p), v2); r != nil {
				t.Errorf("v2=%v: fast path took %s", v2, p)
			}
		}
	}
}

func TestFastParseAllocs(t *testing.T) {
	payload := []byte(typicalV2)
	n := testing.AllocsPerRun(100, func() { parseFast(payload, true) })
	// Response, Header map, the values' slice, the string arena, the body.
	if n > 6 {
		t.Errorf("%v allocations, want at most 6", n)
	}
}
