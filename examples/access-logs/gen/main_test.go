package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/foreignlog"
)

// TestSampleIsGenerated keeps the committed sample equal to what this
// generator writes (run go generate ./examples/access-logs/gen after
// changing it), and readable by turnout analyze without a malformed line.
func TestSampleIsGenerated(t *testing.T) {
	var want bytes.Buffer
	if err := Write(&want); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("../cloudfront.log.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("examples/access-logs/cloudfront.log.gz is not what the generator writes: run go generate ./examples/access-logs/gen")
	}

	r, err := foreignlog.NewReader(bytes.NewReader(got), foreignlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Format() != foreignlog.CloudFront {
		t.Errorf("detected as %s", r.Format())
	}
	var o turnout.Observation
	for {
		err := r.Next(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := r.Stats(); s.Parsed != Lines || s.Malformed != 0 {
		t.Errorf("stats %+v, want %d parsed and none malformed", s, Lines)
	}
}
