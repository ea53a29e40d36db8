package origin

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzChunkedBody feeds arbitrary bytes to the chunked response body
// reader and its trailer parser (copyChunked, readTrailers): bytes from an
// origin, outside input. Whatever the origin sends, turnout must not panic,
// must not pass on a trailer that could split the client's response or is
// hop-by-hop, and must report the connection reusable only when the body
// ended cleanly. Seeds: testdata/fuzz/FuzzChunkedBody.
func FuzzChunkedBody(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("5\r\nhello\r\n0\r\nX-Sum: 1\r\nConnection: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cc := &upConn{br: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		rec := httptest.NewRecorder()
		var p *Pool // copyChunked does not use its pool
		reusable, err := p.copyChunked(rec, cc, &flusher{w: rec})
		if reusable && err != nil {
			t.Fatalf("reusable with error %v", err)
		}
		if err == nil && !reusable {
			t.Fatal("clean end of body not reusable")
		}
		for k, vs := range rec.Header() {
			name, isTrailer := strings.CutPrefix(k, http.TrailerPrefix)
			if !isTrailer {
				continue
			}
			if !validToken(name) || textproto.CanonicalMIMEHeaderKey(name) != name {
				t.Fatalf("trailer name %q not a canonical token", name)
			}
			if isHopByHop(name) || name == "Content-Length" {
				t.Fatalf("hop-by-hop or framing trailer %q passed on", name)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") || v != trimOWS(v) {
					t.Fatalf("trailer %s value %q holds CR, LF, NUL or untrimmed space", name, v)
				}
			}
		}
	})
}

// FuzzTrailers feeds arbitrary bytes to the trailer section parser alone,
// so the fuzzer need not first produce a valid last chunk.
func FuzzTrailers(f *testing.F) {
	f.Add([]byte("\r\n"))
	f.Add([]byte("X-Checksum: abc\r\nX-Other:\tv \r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cc := &upConn{br: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		dst := map[string][]string{}
		n, err := readTrailers(cc, dst)
		got := 0
		for k, vs := range dst {
			name, ok := strings.CutPrefix(k, http.TrailerPrefix)
			if !ok || !validToken(name) || isHopByHop(name) || name == "Content-Length" {
				t.Fatalf("trailer key %q passed on", k)
			}
			for _, v := range vs {
				if !validValue(v) {
					t.Fatalf("trailer %s value %q passed on", name, v)
				}
			}
			got += len(vs)
		}
		if got != n {
			t.Fatalf("readTrailers said %d fields, passed on %d (err %v)", n, got, err)
		}
	})
}
