package apigw

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func BenchmarkEventV2(b *testing.B) {
	r := httptest.NewRequest("POST", "/user/42?id=1&id=2&idList=1;2;3&q=a+b", strings.NewReader(""))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("Accept", "*/*")
	r.Header.Add("Cookie", "session=abc; theme=dark")
	r.Header.Add("X-Forwarded-For", "198.51.100.1")
	body := []byte(`{"name":"turnout","tags":["a","b"],"n":42}`)
	in := Info{Route: "POST /user/{id}", PathParams: map[string]string{"id": "42"},
		RequestID: "req-1", SourceIP: "198.51.100.1", Time: fixedTime, Path: "/user/42"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EventV2(r, body, in); err != nil {
			b.Fatal(err)
		}
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
