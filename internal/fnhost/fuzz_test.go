package fnhost

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/h1"
)

// FuzzErrorDocument: whatever a function process posts to the Runtime API's
// error endpoints, the error turnout passes on is one JSON object.
func FuzzErrorDocument(f *testing.F) {
	f.Add([]byte(`{"errorMessage":"boom","errorType":"Oops"}`), "Runtime.Error")
	f.Add([]byte(`not json`), "")
	f.Add([]byte(`["a"]`), "Custom")
	f.Add([]byte("\xff\xfe"), "Runtime.\"Quoted\"")
	f.Add([]byte(``), "")
	f.Fuzz(func(t *testing.T, body []byte, typ string) {
		doc := errorDocument(body, typ, "Runtime.Unknown")
		var v map[string]any
		if err := json.Unmarshal(doc, &v); err != nil {
			t.Fatalf("error document %q is not a JSON object: %v", doc, err)
		}
	})
}

// FuzzOutput: whatever a function writes to stdout, the reader closes it as
// lines of that instance (of the request begun before it), each without a
// newline, and a sync after it returns.
func FuzzOutput(f *testing.F) {
	f.Add([]byte("one\ntwo\n"), false)
	f.Add([]byte("partial"), true)
	f.Add([]byte("\x00turnout-0000000000000000 1\n"), true)
	f.Add([]byte("a\r\nb\rc\n\x00\n"), false)
	f.Add(bytes.Repeat([]byte("x"), 20<<10), true)
	f.Fuzz(func(t *testing.T, data []byte, begin bool) {
		ring := newLogRing(1 << 20)
		o, stdout, stderr, err := newOutput(ring, 3)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{}, 2)
		for _, s := range o.streams {
			go func() { o.read(s); done <- struct{}{} }()
		}
		if begin {
			o.begin("req")
		}
		go func() { stdout.Write(data); stdout.Close(); stderr.Close() }()
		o.exited()
		<-done
		<-done
		for _, l := range ring.snapshot("") {
			if l.instance != 3 || strings.Contains(l.Text, "\n") {
				t.Fatalf("line %+v", l)
			}
			if want := map[bool]string{true: "req", false: ""}[begin]; l.RequestID != want {
				t.Fatalf("line %+v, want request %q", l, want)
			}
		}
	})
}

// FuzzRuntimeAPIRequest: whatever a runtime sends, reading a Runtime API
// request and its body does not panic, and a request read whole was read
// the way net/http reads it: the same method, path and body, and the next
// request starts at the same byte.
func FuzzRuntimeAPIRequest(f *testing.F) {
	f.Add([]byte("POST /2018-06-01/runtime/invocation/x/response HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" +
		"Trailer: Lambda-Runtime-Function-Error-Type\r\n\r\n3\r\nabc\r\n0\r\nLambda-Runtime-Function-Error-Type: E\r\n\r\nNEXT"))
	f.Add([]byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\nNEXT"))
	f.Add([]byte("POST /2018-06-01/runtime/init/error?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabcNEXT"))
	f.Add([]byte("POST http://x/2018-06-01/runtime/invocation/%41/error HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 64) // heads over the buffer take the long way
		req, err := parseRequest(br, new(h1.Request), nil)
		if err != nil {
			return
		}
		body, err := io.ReadAll(&req.body)
		if err != nil {
			return
		}
		rest, _ := io.ReadAll(br)

		want, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(data), 64<<10))
		if err != nil {
			t.Fatalf("read as %s %s, net/http refuses: %v", req.method, req.path, err)
		}
		wantBody, err := io.ReadAll(want.Body)
		if err != nil {
			t.Fatalf("body read whole (%q), net/http fails: %v", body, err)
		}
		if req.method != want.Method || req.path != want.URL.Path || !bytes.Equal(body, wantBody) || req.close != want.Close {
			t.Fatalf("read %s %q close=%v body %q, net/http %s %q close=%v body %q",
				req.method, req.path, req.close, body, want.Method, want.URL.Path, want.Close, wantBody)
		}
		if !bytes.HasSuffix(data, rest) || len(data)-len(rest) != consumed(t, data) {
			t.Fatalf("next request at byte %d, net/http's at %d", len(data)-len(rest), consumed(t, data))
		}
	})
}

// consumed is how many bytes of data net/http reads for its first request
// and that request's body. (Its buffer holds a trailer section whole: a
// smaller one refuses a trailer longer than itself.)
func consumed(t *testing.T, data []byte) int {
	r := bytes.NewReader(data)
	br := bufio.NewReaderSize(r, 64<<10)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, req.Body)
	return len(data) - r.Len() - br.Buffered()
}
