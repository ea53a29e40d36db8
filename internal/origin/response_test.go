package origin

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		status  int
		length  int64
		chunked bool
		close   bool
		fields  int
		err     bool
	}{
		{"minimal", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, 5, false, false, 1, false},
		{"no reason", "HTTP/1.1 204\r\n\r\n", 204, -1, false, false, 0, false},
		{"bare LF lines", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 200, 0, false, false, 1, false},
		{"http/1.0 closes", "HTTP/1.0 200 OK\r\n\r\n", 200, -1, false, true, 0, false},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", 200, 1, false, false, 2, false},
		{"close", "HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n", 200, -1, false, true, 1, false},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 200, -1, true, true, 2, false},
		{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 200, 5, false, false, 2, false},
		{"lower-case names", "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-foo:  bar \r\n\r\n", 200, 3, false, false, 2, false},
		{"dropped value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\n\r\n", 200, -1, false, false, 0, false},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", 0, 0, false, false, 0, true},
		{"http/2 status line", "HTTP/2 200\r\n\r\n", 0, 0, false, false, 0, true},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, 0, false, false, 0, true},
		{"length overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, 0, false, false, 0, true},
		{"empty name", "HTTP/1.1 200 OK\r\n: x\r\n\r\n", 0, 0, false, false, 0, true},
		{"status 099", "HTTP/1.1 099 Low\r\n\r\n", 0, 0, false, false, 0, true},
		{"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, false, false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h responseHead
			err := readHead(bufio.NewReader(strings.NewReader(tt.in)), &h)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if h.status != tt.status || h.contentLength != tt.length || h.chunked != tt.chunked || h.close != tt.close || len(h.fields) != tt.fields {
				t.Fatalf("got status %d length %d chunked %v close %v fields %d (%v)", h.status, h.contentLength, h.chunked, h.close, len(h.fields), h.fields)
			}
		})
	}
}

func TestReadHeadLongLinesAndReuse(t *testing.T) {
	long := strings.Repeat("v", 40000)
	in := "HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	var h responseHead
	if err := readHead(br, &h); err != nil || h.status != 200 || h.fields[0].value != long {
		t.Fatalf("long header: %v status %d", err, h.status)
	}
	if err := readHead(br, &h); err != nil || h.status != 404 || len(h.fields) != 1 {
		t.Fatalf("second head on the same reader: %v status %d fields %v", err, h.status, h.fields)
	}
	huge := "HTTP/1.1 200 OK\r\nX-Huge: " + strings.Repeat("v", maxHeadBytes) + "\r\n\r\n"
	if err := readHead(bufio.NewReader(strings.NewReader(huge)), &h); err == nil {
		t.Fatal("a head over maxHeadBytes was accepted")
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.0 301 Moved\nLocation: /x\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h responseHead
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		if err := readHead(br, &h); err != nil {
			return
		}
		if h.status < 100 || h.status > 999 {
			t.Fatalf("status %d accepted", h.status)
		}
		if h.chunked && h.contentLength != -1 {
			t.Fatalf("chunked with Content-Length %d", h.contentLength)
		}
		if h.contentLength < -1 {
			t.Fatalf("Content-Length %d", h.contentLength)
		}
		for _, fl := range h.fields {
			if !validToken(fl.key) || textproto.CanonicalMIMEHeaderKey(fl.key) != fl.key {
				t.Fatalf("key %q not a canonical token", fl.key)
			}
			if strings.ContainsAny(fl.value, "\r\n\x00") {
				t.Fatalf("value %q of %s holds CR, LF or NUL", fl.value, fl.key)
			}
			if fl.value != trimOWS(fl.value) {
				t.Fatalf("value %q not trimmed", fl.value)
			}
		}
		// Parsing is deterministic and the reused state does not leak
		// between heads.
		var again responseHead
		again.fields = append(again.fields, field{"Stale", "x"})
		again.raw = append(again.raw, "stale"...)
		if err := readHead(bufio.NewReader(bytes.NewReader(data)), &again); err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		if again.status != h.status || len(again.fields) != len(h.fields) || again.contentLength != h.contentLength {
			t.Fatalf("second parse differs: %+v vs %+v", again, h)
		}
	})
}
