package apigw

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// typicalRequest is a function route's usual call: ten headers (one of
// them cookies), a query string and a 200-byte JSON body.
func typicalRequest() (*http.Request, []byte, Info) {
	r := httptest.NewRequest("POST", "/user/42?id=1&id=2&idList=1;2;3&q=a+b", strings.NewReader(""))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0")
	r.Header.Set("Accept", "application/json, text/plain, */*")
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl")
	r.Header.Set("Content-Length", "200")
	r.Header.Add("Cookie", "session=abc; theme=dark")
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	r.Header.Set("X-Request-Id", "5f1c2a7e-8b1d-4c3e-9a0f-6d2b7e4c1a90")
	body := []byte(`{"name":"turnout","email":"user@example.com","tags":["a","b","c"],"n":42,` +
		`"address":{"street":"1 Main St","city":"Springfield","zip":"12345"},"note":"a \"quoted\" word",` +
		`"active":true,"score":9.5}`)
	body = append(body, strings.Repeat(" ", 200-len(body))...)
	in := Info{Route: "POST /user/{id}", PathParams: map[string]string{"id": "42"},
		RequestID: "req-1", SourceIP: "198.51.100.1", Time: fixedTime, Path: "/user/42"}
	return r, body, in
}

func benchmarkEvent(b *testing.B, event func(*http.Request, []byte, Info) ([]byte, error)) {
	r, body, in := typicalRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event(r, body, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventV2(b *testing.B) { benchmarkEvent(b, EventV2) }
func BenchmarkEventV1(b *testing.B) { benchmarkEvent(b, EventV1) }

// BenchmarkEncode times the encoding alone, of a typical request's built
// events: encoding/json's (marshal) and the hand encoder's.
func BenchmarkEncode(b *testing.B) {
	r, body, in := typicalRequest()
	ev2, ev1 := buildV2(r, body, in), buildV1(r, body, in)
	for _, bc := range []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"V2/marshal", func() ([]byte, error) { return marshal(ev2) }},
		{"V2/hand", func() ([]byte, error) { return appendEventV2(make([]byte, 0, sizeV2(ev2)), ev2) }},
		{"V1/marshal", func() ([]byte, error) { return marshal(ev1) }},
		{"V1/hand", func() ([]byte, error) { return appendEventV1(make([]byte, 0, sizeV1(ev1)), ev1) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.enc(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseV2(b *testing.B) {
	payload := []byte(`{"statusCode":200,"headers":{"Content-Type":"application/json","X-Request-Id":"req-1"},"cookies":["a=1; Path=/"],"body":"{\"id\":42,\"name\":\"turnout\"}"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseV2(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseV1 parses a 1.0 answer as aws-lambda-go's json.Marshal of
// events.APIGatewayProxyResponse writes it.
func BenchmarkParseV1(b *testing.B) {
	payload := []byte(`{"statusCode":200,"headers":{"Content-Type":"application/json"},"multiValueHeaders":null,"body":"{\"id\":\"7\",\"name\":\"User 7\",\"email\":\"user7@example.com\",\"plan\":\"free\"}\n"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseV1(payload); err != nil {
			b.Fatal(err)
		}
	}
}
