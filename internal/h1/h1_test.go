package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

const maxHead = 1 << 20

// browserGET is what a browser sends for a page; wrkGET is a load
// generator's minimal request.
const (
	browserGET = "GET /api/orders/42?expand=items HTTP/1.1\r\n" +
		"Host: shop.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\n" +
		"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Referer: https://shop.example.com/\r\n" +
		"Cookie: session=0123456789abcdef; theme=dark\r\n" +
		"Connection: keep-alive\r\n" +
		"Upgrade-Insecure-Requests: 1\r\n" +
		"Sec-Fetch-Dest: document\r\n" +
		"Sec-Fetch-Mode: navigate\r\n" +
		"Sec-Fetch-Site: same-origin\r\n" +
		"Priority: u=0, i\r\n\r\n"
	wrkGET = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
)

func TestParseRequest(t *testing.T) {
	var r Request
	body := "POST /api/a?x=1 HTTP/1.1\r\nHost: x:80\r\nContent-Length: 5\r\nContent-Length: 5\r\n" +
		"Expect: 100-continue\r\nX-Note:  spaced \t\r\n\r\nhello"
	if err := Parse(&r, []byte(body), maxHead); err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || string(r.Target) != "/api/a?x=1" || r.Proto() != "HTTP/1.1" ||
		string(r.Host) != "x:80" || r.ContentLength != 5 || r.Chunked || r.Close || !r.Expect100 ||
		body[r.HeadLen:] != "hello" || len(r.Fields) != 5 || string(r.Fields[4].Value) != "spaced" {
		t.Errorf("got %+v", r)
	}

	// The same Request parses the next head with nothing left over.
	if err := Parse(&r, []byte("GET * HTTP/1.0\r\n\r\n"), maxHead); err != ErrTarget {
		t.Errorf("GET * = %v, want ErrTarget", err)
	}
	if err := Parse(&r, []byte("OPTIONS * HTTP/1.0\r\nTransfer-Encoding: x\r\n\r\n"), maxHead); err != ErrTEUnsupported {
		t.Errorf("err = %v", err)
	}
	if err := Parse(&r, []byte("OPTIONS * HTTP/1.0\r\n\r\n"), maxHead); err != nil {
		t.Fatal(err)
	}
	if r.Method != "OPTIONS" || len(r.Fields) != 0 || r.Host != nil || r.ContentLength != -1 ||
		r.Expect100 || !r.Close || r.Proto() != "HTTP/1.0" {
		t.Errorf("reused: got %+v", r)
	}
	if err := Parse(&r, []byte("PURGE http://Cache.example:8080/a HTTP/1.1\r\nHost: cache.example\r\nTransfer-Encoding: Chunked\r\nConnection: x, Close\r\n\r\n"), maxHead); err != nil {
		t.Fatal(err)
	}
	if r.Method != "PURGE" || !r.Chunked || r.ContentLength != -1 || !r.Close {
		t.Errorf("got %+v", r)
	}
	if err := Parse(&r, []byte("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), maxHead); err != nil || r.Close {
		t.Errorf("1.0 keep-alive: err %v, Close %v", err, r.Close)
	}
}

func TestParseRefuses(t *testing.T) {
	const h = "Host: x\r\n"
	tests := []struct {
		name, head string
		want       *Error
	}{
		// RFC 9112 §2.2: lines end in CRLF; bare LF and bare CR refused.
		{"§2.2 bare LF in request line", "GET / HTTP/1.1\n" + h + "\r\n", ErrLineEnding},
		{"§2.2 bare LF in a field", "GET / HTTP/1.1\r\nHost: x\n\r\n", ErrLineEnding},
		{"§2.2 bare LF ends the head", "GET / HTTP/1.1\r\n" + h + "\n", ErrLineEnding},
		{"§2.2 bare CR in a value", "GET / HTTP/1.1\r\n" + h + "X-A: a\rContent-Length: 42\r\n\r\n", ErrLineEnding},
		{"§2.2 empty line first", "\r\nGET / HTTP/1.1\r\n" + h + "\r\n", ErrRequestLine},
		// §3: method SP request-target SP HTTP-version, one SP each.
		{"§3 two spaces", "GET  / HTTP/1.1\r\n" + h + "\r\n", ErrVersion},
		{"§3 tab separator", "GET\t/ HTTP/1.1\r\n" + h + "\r\n", ErrRequestLine},
		{"§3 trailing space", "GET / HTTP/1.1 \r\n" + h + "\r\n", ErrVersion},
		{"§3 no version", "GET /\r\n" + h + "\r\n", ErrRequestLine},
		{"§3 method not a token", "G(T / HTTP/1.1\r\n" + h + "\r\n", ErrMethod},
		{"§3 space in target", "GET /a b HTTP/1.1\r\n" + h + "\r\n", ErrVersion},
		// §2.3: HTTP-version; 505 for a well-formed other version.
		{"§2.3 HTTP/2.0", "GET / HTTP/2.0\r\n" + h + "\r\n", ErrVersionUnsupported},
		{"§2.3 HTTP/0.9", "GET / HTTP/0.9\r\n" + h + "\r\n", ErrVersionUnsupported},
		{"§2.3 lower case", "GET / http/1.1\r\n" + h + "\r\n", ErrVersion},
		{"§2.3 HTTP/1.10", "GET / HTTP/1.10\r\n" + h + "\r\n", ErrVersion},
		// §3.2: request-target forms.
		{"§3.2.3 CONNECT", "CONNECT example.com:443 HTTP/1.1\r\n" + h + "\r\n", ErrConnect},
		{"§3.2.4 asterisk for GET", "GET * HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2 authority-form for GET", "GET example.com:80 HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2 relative target", "GET a/b HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2 fragment", "GET /a#b HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2 bad escape", "GET /a%zz HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2 control byte", "GET /a\x01 HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2 non-ASCII", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2.2 ftp scheme", "GET ftp://x/ HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2.2 userinfo", "GET http://u@x/ HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		{"§3.2.2 empty port", "GET http://x:/ HTTP/1.1\r\n" + h + "\r\n", ErrTarget},
		// §3.2: Host.
		{"§3.2 no Host on 1.1", "GET / HTTP/1.1\r\n\r\n", ErrHost},
		{"§3.2 two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrHost},
		{"§3.2 two Hosts on 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", ErrHost},
		{"§3.2 empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", ErrHost},
		{"§3.2 Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ErrHost},
		// §5: field lines.
		{"§5.1 space before colon", "GET / HTTP/1.1\r\n" + h + "Content-Length : 42\r\n\r\n", ErrFieldName},
		{"§5.1 tab before colon", "GET / HTTP/1.1\r\n" + h + "X-A\t: 1\r\n\r\n", ErrFieldName},
		{"§5.1 empty name", "GET / HTTP/1.1\r\n" + h + ": 1\r\n\r\n", ErrFieldName},
		{"§5.1 no colon", "GET / HTTP/1.1\r\n" + h + "Content-Length 42\r\n\r\n", ErrFieldLine},
		{"§5.1 name not a token", "GET / HTTP/1.1\r\n" + h + "X\"A: 1\r\n\r\n", ErrFieldName},
		{"§5.2 obs-fold", "GET / HTTP/1.1\r\n" + h + "X-Note: a\r\n Content-Length: 42\r\n\r\n", ErrObsFold},
		{"§5.2 obs-fold with tab", "GET / HTTP/1.1\r\n" + h + "X-Note: a\r\n\tb\r\n\r\n", ErrObsFold},
		{"§5.2 leading space on the first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", ErrObsFold},
		{"§5.5 NUL in a value", "GET / HTTP/1.1\r\n" + h + "X-A: a\x00b\r\n\r\n", ErrFieldValue},
		{"§5.5 vertical tab in a value", "GET / HTTP/1.1\r\n" + h + "Transfer-Encoding:\x0bchunked\r\n\r\n", ErrFieldValue},
		{"§5.5 DEL in a value", "GET / HTTP/1.1\r\n" + h + "X-A: \x7f\r\n\r\n", ErrFieldValue},
		// §6.3: message body length.
		{"§6.3 CL list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 0, 42\r\n\r\n", ErrContentLength},
		{"§6.3 CL duplicates differ", "POST / HTTP/1.1\r\n" + h + "Content-Length: 0\r\nContent-Length: 42\r\n\r\n", ErrContentLength},
		{"§6.3 CL duplicates with a leading zero", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 05\r\n\r\n", ErrContentLength},
		{"§6.3 CL plus sign", "POST / HTTP/1.1\r\n" + h + "Content-Length: +0\r\n\r\n", ErrContentLength},
		{"§6.3 CL negative", "POST / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", ErrContentLength},
		{"§6.3 CL hex", "POST / HTTP/1.1\r\n" + h + "Content-Length: 0x0\r\n\r\n", ErrContentLength},
		{"§6.3 CL empty", "POST / HTTP/1.1\r\n" + h + "Content-Length:\r\n\r\n", ErrContentLength},
		{"§6.3 CL overflow", "POST / HTTP/1.1\r\n" + h + "Content-Length: 18446744073709551617\r\n\r\n", ErrContentLength},
		{"§6.3 TE and CL", "POST / HTTP/1.1\r\n" + h + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTEAndCL},
		{"§6.3 CL and TE", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n", ErrTEAndCL},
		{"§6.1 TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncoding},
		{"§6.1 TE twice", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncoding},
		{"§6.1 TE empty", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding:\r\n\r\n", ErrTransferEncoding},
		{"§6.1 TE xchunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\n\r\n", ErrTEUnsupported},
		{"§6.1 TE chunked, identity", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, identity\r\n\r\n", ErrTEUnsupported},
		{"§6.1 TE gzip, chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n", ErrTEUnsupported},
		{"§6.1 TE quoted", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: \"chunked\"\r\n\r\n", ErrTEUnsupported},
		{"§6.5 chunked with Trailer", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n", ErrTrailer},
		// RFC 9110 §10.1.1: Expect.
		{"RFC 9110 §10.1.1 other expectation", "POST / HTTP/1.1\r\n" + h + "Expect: 200-ok\r\n\r\n", ErrExpect},
	}
	var r Request
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Parse(&r, []byte(tt.head), maxHead); err != tt.want {
				t.Errorf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestParseLimit: a head longer than the limit is 431 whether or not its
// end has arrived; a shorter one without its end asks for more.
func TestParseLimit(t *testing.T) {
	var r Request
	head := []byte(browserGET)
	if err := Parse(&r, head, len(head)); err != nil {
		t.Errorf("head of exactly the limit: %v", err)
	}
	if err := Parse(&r, head, len(head)-1); err != ErrHeadTooLarge {
		t.Errorf("head one over the limit: %v, want ErrHeadTooLarge", err)
	}
	if err := Parse(&r, head[:len(head)-1], len(head)); err != ErrIncomplete {
		t.Errorf("head missing its last byte: %v, want ErrIncomplete", err)
	}
	long := []byte("GET / HTTP/1.1\r\nX-A: " + strings.Repeat("a", 100))
	if err := Parse(&r, long, 64); err != ErrHeadTooLarge {
		t.Errorf("endless field: %v, want ErrHeadTooLarge", err)
	}
	// A bad field does not hide an oversized head.
	bad := []byte("GET / HTTP/1.1\r\nX A: 1\r\nX-B: " + strings.Repeat("b", 100))
	if err := Parse(&r, bad, 64); err != ErrHeadTooLarge {
		t.Errorf("bad field, oversized head: %v, want ErrHeadTooLarge", err)
	}
	longLine := []byte("GET /" + strings.Repeat("a", 100))
	if err := Parse(&r, longLine, 64); err != ErrURITooLong {
		t.Errorf("endless request line: %v, want ErrURITooLong", err)
	}
	if err := Parse(&r, append(longLine, " HTTP/1.1\r\n\r\n"...), 64); err != ErrURITooLong {
		t.Errorf("request line over the limit: %v, want ErrURITooLong", err)
	}
	if err := Parse(&r, nil, 64); err != ErrIncomplete {
		t.Errorf("empty buffer: %v, want ErrIncomplete", err)
	}
}

func TestParseAllocs(t *testing.T) {
	var r Request
	for _, head := range []string{browserGET, wrkGET} {
		b := []byte(head)
		if err := Parse(&r, b, maxHead); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { Parse(&r, b, maxHead) }); n != 0 {
			t.Errorf("%.0f allocations per parse of %q, want 0", n, head[:16])
		}
	}
}

// BenchmarkParse compares h1 with net/http's http.ReadRequest on the same
// bytes (its bufio.Reader reused, as a server would). On the 2-core dev
// machine, go1.26.8, `go test -run XXX -bench Parse -benchmem -count 3`,
// medians:
//
//	browser/h1            419 ns/op     0 B/op   0 allocs/op
//	browser/ReadRequest  2910 ns/op  1944 B/op  26 allocs/op
//	wrk/h1                 54 ns/op     0 B/op   0 allocs/op
//	wrk/ReadRequest       758 ns/op   912 B/op   7 allocs/op
//
// h1 leaves out what ReadRequest also does: the url.URL, the http.Header
// map and its strings, the context.
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, head string }{{"browser", browserGET}, {"wrk", wrkGET}} {
		buf := []byte(c.head)
		b.Run(c.name+"/h1", func(b *testing.B) {
			var r Request
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if err := Parse(&r, buf, maxHead); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/ReadRequest", func(b *testing.B) {
			rd := bytes.NewReader(buf)
			br := bufio.NewReader(rd)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				rd.Reset(buf)
				br.Reset(rd)
				if _, err := http.ReadRequest(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// parseSeeds are the fuzz tests' seeds: ordinary requests and
// internal/gateway/smuggling_test.go's vectors.
var parseSeeds = []string{
	browserGET, wrkGET,
	"POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET http://x.example:8080/a?b=%20 HTTP/1.1\r\nHost: y\r\nExpect: 100-continue\r\n\r\n",
	// internal/gateway/smuggling_test.go's vectors.
	"POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 42\r\n\r\n",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 42\r\n\r\n",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length : 42\r\n\r\n",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	"POST /api/a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
	"GET /api/a HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n Content-Length: 42\r\n\r\n",
	"GET /api/a HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 42\r\n\r\n",
	"GET /api/a HTTP/1.1\nHost: x\n\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n",
	"GET HTTPS://[::1]:8443/%41?q=%zz HTTP/1.1\r\nHost: [::1]:8443\r\nX-Obs: caf\xc3\xa9\r\nX-Empty:\r\n\r\n",
	"PURGE /a HTTP/1.0\r\nConnection: Keep-Alive, close\r\nx-lower: 1\r\nX-LOWER: 2\r\n\r\n",
}

// FuzzParseAgreesWithNetHTTP: whatever h1 accepts, http.ReadRequest accepts
// too and reads the same method, target, version, fields, body length,
// chunkedness and keep-alive. h1 may refuse more.
func FuzzParseAgreesWithNetHTTP(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		if err := Parse(&r, data, 64<<10); err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("h1 accepts what net/http refuses (%v): %q", err, data)
		}
		if std.Method != r.Method || std.RequestURI != string(r.Target) || std.Proto != r.Proto() {
			t.Fatalf("request line: net/http %q %q %q, h1 %q %q %q",
				std.Method, std.RequestURI, std.Proto, r.Method, r.Target, r.Proto())
		}
		// net/http moves Host and Transfer-Encoding out of Header.
		got := http.Header{}
		for _, fl := range r.Fields {
			name := textproto.CanonicalMIMEHeaderKey(string(fl.Name))
			if name == "Host" || name == "Transfer-Encoding" {
				continue
			}
			got[name] = append(got[name], string(fl.Value))
		}
		if len(got) != len(std.Header) {
			t.Fatalf("fields: net/http %q, h1 %q", std.Header, got)
		}
		for name, vv := range std.Header {
			if strings.Join(vv, "\x00") != strings.Join(got[name], "\x00") {
				t.Fatalf("field %s: net/http %q, h1 %q", name, vv, got[name])
			}
		}
		wantCL := r.ContentLength
		switch {
		case r.Chunked:
			if len(std.TransferEncoding) != 1 || std.TransferEncoding[0] != "chunked" {
				t.Fatalf("chunked: net/http Transfer-Encoding %q", std.TransferEncoding)
			}
		case wantCL < 0:
			wantCL = 0
		}
		if std.ContentLength != wantCL {
			t.Fatalf("Content-Length: net/http %d, h1 %d", std.ContentLength, r.ContentLength)
		}
		if std.Close != r.Close {
			t.Fatalf("Close: net/http %v, h1 %v", std.Close, r.Close)
		}
		if r.Host != nil && std.Host != string(r.Host) && r.Target[0] == '/' {
			t.Fatalf("Host: net/http %q, h1 %q", std.Host, r.Host)
		}
	})
}
