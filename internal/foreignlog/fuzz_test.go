package foreignlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/turnout/turnout"
)

// The fuzz targets feed arbitrary bytes to a Reader of one format. They
// check that nothing panics, that every malformed line is reported with its
// line number, that the counts add up, and that every observation a
// successful parse yields is sane. Seeds: testdata/fuzz/Fuzz*/ and every
// line of the golden samples.

func FuzzCloudFront(f *testing.F) {
	seedLines(f, "testdata/cloudfront.log", "testdata/cloudfront-v2.log")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, CloudFront, data) })
}

func FuzzALB(f *testing.F) {
	seedLines(f, "testdata/alb.log")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, ALB, data) })
}

func FuzzNginx(f *testing.F) {
	seedLines(f, "testdata/nginx.log", "testdata/nginx-request-time.log")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, Nginx, data) })
}

// seedLines adds each sample file whole, plain and gzip, and each of its lines (after the
// CloudFront header, so the line is read with the legacy field order).
func seedLines(f *testing.F, files ...string) {
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		f.Add(z.Bytes())
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f.Add(bytes.Clone(sc.Bytes()))
		}
	}
}

func fuzzFormat(t *testing.T, format Format, data []byte) {
	r, err := NewReader(bytes.NewReader(data), Options{Format: format, MaxLineBytes: 4096})
	if err != nil {
		// Only a gzip header can fail before the first line.
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Fatalf("NewReader: %v", err)
		}
		return
	}
	defer r.Close()
	var o turnout.Observation
	var lastLine int64
	for i := 0; ; i++ {
		if i > len(data)+2 {
			t.Fatalf("more results than lines: %d from %d bytes", i, len(data))
		}
		err := r.Next(&o)
		if err == io.EOF {
			break
		}
		var le *LineError
		if errors.As(err, &le) {
			if le.Line <= lastLine || le.Reason == "" || !utf8.ValidString(le.Text) {
				t.Fatalf("bad LineError %+v after line %d", le, lastLine)
			}
			lastLine = le.Line
			continue
		}
		if err != nil {
			if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
				return // a corrupt gzip stream
			}
			t.Fatalf("Next: %v", err)
		}
		lastLine = r.Stats().Lines
		checkSane(t, &o)
	}
	if s := r.Stats(); s.Lines != s.Parsed+s.Malformed+s.Skipped {
		t.Fatalf("stats do not add up: %+v", s)
	}
}

// checkSane holds for every observation any parser returns.
func checkSane(t *testing.T, o *turnout.Observation) {
	t.Helper()
	switch {
	case o.Time.IsZero() || o.Time.Location() != time.UTC:
		t.Fatalf("time %v: want a UTC instant", o.Time)
	case o.Method == "" || strings.ContainsAny(o.Method, " \t\r\n/"):
		t.Fatalf("method %q", o.Method)
	case o.Path == "" || (o.Path[0] != '/' && o.Path != "*"):
		t.Fatalf("path %q: want origin-form or *", o.Path)
	case strings.ContainsAny(o.Path, " \t\r\n?"):
		t.Fatalf("path %q has a space, control byte or '?'", o.Path)
	case strings.ContainsAny(o.RawQuery, " \t\r\n"):
		t.Fatalf("query %q has a space or control byte", o.RawQuery)
	case o.Status != 0 && (o.Status < 100 || o.Status > 999):
		t.Fatalf("status %d", o.Status)
	case o.Bytes < 0 || o.RequestBytes < -1 || o.Duration < 0:
		t.Fatalf("bytes %d, request bytes %d, duration %v", o.Bytes, o.RequestBytes, o.Duration)
	case o.Outcome != turnout.Served && o.Outcome != turnout.Error && o.Outcome != turnout.Throttled:
		t.Fatalf("outcome %q", o.Outcome)
	case strings.ContainsAny(o.Host, " \t\r\n"):
		t.Fatalf("host %q", o.Host)
	}
}
