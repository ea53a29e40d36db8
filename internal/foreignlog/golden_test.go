package foreignlog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenEntry is one line's result in a golden file: an observation or a
// malformed-line reason.
type goldenEntry struct {
	Line         int64  `json:"line"`
	Malformed    string `json:"malformed,omitempty"`
	Time         string `json:"time,omitempty"`
	Method       string `json:"method,omitempty"`
	Host         string `json:"host,omitempty"`
	Path         string `json:"path,omitempty"`
	RawQuery     string `json:"raw_query,omitempty"`
	Target       string `json:"target,omitempty"`
	Outcome      string `json:"outcome,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Status       int    `json:"status,omitempty"`
	Bytes        int64  `json:"bytes,omitempty"`
	RequestBytes *int64 `json:"request_bytes,omitempty"`
	Duration     string `json:"duration,omitempty"`
}

type goldenFile struct {
	Format  Format        `json:"format"`
	Stats   Stats         `json:"stats"`
	Entries []goldenEntry `json:"entries"`
}

// readAll runs a Reader over data and records every line's result.
func readAll(t testing.TB, data []byte, opt Options) goldenFile {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), opt)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	g := goldenFile{Format: r.Format()}
	eachLine(t, r, func(o *turnout.Observation, le *LineError) {
		if le != nil {
			if le.Line != r.Stats().Lines {
				t.Errorf("LineError.Line %d, Stats().Lines %d", le.Line, r.Stats().Lines)
			}
			g.Entries = append(g.Entries, goldenEntry{Line: le.Line, Malformed: le.Reason})
			return
		}
		e := goldenEntry{
			Line: r.Stats().Lines, Time: o.Time.Format(time.RFC3339Nano), Method: o.Method, Host: o.Host,
			Path: o.Path, RawQuery: o.RawQuery, Target: o.Target, Outcome: o.Outcome.String(), Reason: o.Reason,
			Status: o.Status, Bytes: o.Bytes, Duration: o.Duration.String(),
		}
		if o.RequestBytes >= 0 {
			rb := o.RequestBytes
			e.RequestBytes = &rb
		}
		g.Entries = append(g.Entries, e)
	})
	g.Stats = r.Stats()
	return g
}

// eachLine reads r to its end and calls line for every line: with the
// observation it parsed, or with the *LineError that reports it malformed.
// Any other error fails tb.
func eachLine(tb testing.TB, r *Reader, line func(o *turnout.Observation, le *LineError)) {
	tb.Helper()
	var o turnout.Observation
	var le *LineError // outside the loop: errors.As would move one to the heap per line
	for {
		err := r.Next(&o)
		if err == io.EOF {
			return
		}
		switch {
		case errors.As(err, &le):
			line(nil, le)
		case err != nil:
			tb.Fatalf("Next: %v", err)
		default:
			line(&o, nil)
		}
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format Format // what Detect must find
	}{
		{"cloudfront.log", CloudFront},
		{"cloudfront-v2.log", CloudFront},
		{"alb.log", ALB},
		{"alb.log.gz", ALB},
		{"nginx.log", Nginx},
		{"nginx-request-time.log", Nginx},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, data, Options{})
			if got.Format != tc.format {
				t.Fatalf("detected %q, want %q", got.Format, tc.format)
			}
			if s := got.Stats; s.Lines != s.Parsed+s.Malformed+s.Skipped || s.Parsed == 0 {
				t.Errorf("stats do not add up: %+v", s)
			}
			// The explicit format reads the same as detection.
			if again := readAll(t, data, Options{Format: tc.format}); !jsonEqual(t, again, got) {
				t.Errorf("--format %s reads differently from auto-detection", tc.format)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(tc.file, ".gz")+".golden.json")
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			if *update && !strings.HasSuffix(tc.file, ".gz") {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s differs from %s (go test -run TestGolden -update rewrites it after review):\n%s", tc.file, golden, out)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return bytes.Equal(ja, jb)
}

// TestGzip: gzip is told by its magic bytes, including a concatenation of
// gzip members (what `cat a.gz b.gz` gives), and a corrupt stream is a
// fatal, reported error rather than a panic or silent truncation.
func TestGzip(t *testing.T) {
	plain, err := os.ReadFile("testdata/nginx.log")
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, plain, Options{})

	var z bytes.Buffer
	for _, half := range [][]byte{plain[:len(plain)/2], plain[len(plain)/2:]} {
		zw := gzip.NewWriter(&z)
		zw.Write(half)
		zw.Close()
	}
	got := readAll(t, z.Bytes(), Options{})
	if !jsonEqual(t, got, want) {
		t.Errorf("two gzip members read differently from the plain log:\n%+v\n%+v", got.Stats, want.Stats)
	}

	corrupt := bytes.Clone(z.Bytes())
	corrupt[len(corrupt)/3] ^= 0xff
	r, err := NewReader(bytes.NewReader(corrupt), Options{Format: Nginx})
	if err == nil {
		var o turnout.Observation
		var le *LineError
		for err = r.Next(&o); err == nil || errors.As(err, &le); err = r.Next(&o) {
		}
	}
	if err == nil || err == io.EOF {
		t.Errorf("corrupt gzip: err %v, want a read error", err)
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  Format
	}{
		{"cloudfront header", []string{"#Version: 1.0", "#Fields: date time cs-uri-stem"}, CloudFront},
		{"cloudfront headerless", []string{"2026-11-02\t08:00:01\tFRA56-P1\t1532\t192.0.2.10\tGET\td.cloudfront.net\t/a\t200\t-\tcurl\t-\t-\tMiss\tid\td.cloudfront.net\thttps\t300\t0.001"}, CloudFront},
		{"alb", []string{`https 2026-11-02T08:00:01.186641Z app/lb/1 1.2.3.4:1 10.0.0.1:80 0.000 0.001 0.000 200 200 1 2 "GET https://h:443/ HTTP/1.1" "ua"`}, ALB},
		{"nginx", []string{`1.2.3.4 - - [02/Nov/2026:09:00:01 +0100] "GET / HTTP/1.1" 200 1 "-" "ua"`}, Nginx},
		{"nginx mostly", []string{`garbage`, `1.2.3.4 - - [02/Nov/2026:09:00:01 +0100] "GET / HTTP/1.1" 200 1 "-" "ua"`}, Nginx},
	} {
		var lines [][]byte
		for _, l := range tc.lines {
			lines = append(lines, []byte(l))
		}
		if got, err := Detect(lines); err != nil || got != tc.want {
			t.Errorf("%s: Detect = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	_, err := Detect([][]byte{[]byte("hello world"), []byte("{\"json\":true}")})
	if err == nil || !strings.Contains(err.Error(), "--format") {
		t.Errorf("undetectable input: err %v, want one naming --format", err)
	}
	if _, err := NewReader(strings.NewReader("hello world\n"), Options{}); err == nil {
		t.Error("NewReader accepted an undetectable log")
	}
	// An empty input is not an error: it has no lines.
	r, err := NewReader(strings.NewReader(""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var o turnout.Observation
	if err := r.Next(&o); err != io.EOF {
		t.Errorf("empty input: Next = %v, want io.EOF", err)
	}
	if _, err := ParseFormat("apache"); err == nil {
		t.Error("ParseFormat accepted apache")
	}
}
