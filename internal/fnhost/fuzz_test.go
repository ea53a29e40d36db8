package fnhost

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
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
