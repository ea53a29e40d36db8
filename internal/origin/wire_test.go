package origin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/route"
	"github.com/turnout/turnout/internal/testkit"
)

// gatewayCheck does to r what the gateway's check does before it forwards
// r to an origin: it refuses a field name with an underscore and a path
// route.NormalizePath refuses, and replaces r.URL's path with the
// normalised one when that differs. It returns the normalised path.
// (Absolute-form targets are not matched against the routes' hosts here.)
func gatewayCheck(r *http.Request) (string, bool) {
	for k := range r.Header {
		if strings.IndexByte(k, '_') >= 0 {
			return "", false
		}
	}
	raw := r.RequestURI
	if raw == "" || raw[0] != '/' {
		raw = r.URL.EscapedPath()
	} else if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	path, err := route.NormalizePath(raw)
	if err != nil {
		return "", false
	}
	if path != raw {
		dec, err := url.PathUnescape(path)
		if err != nil {
			return "", false
		}
		r.URL.Path, r.URL.RawPath = dec, path
		if dec == path {
			r.URL.RawPath = ""
		}
	}
	return path, true
}

// wireCheck is gatewayCheck for the event-loop path, which has only the
// parsed head: the normalised path and the raw query.
func wireCheck(req *h1.Request) (path string, rawQuery []byte, ok bool) {
	target := string(req.Target)
	raw := target
	if raw[0] != '/' {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return "", nil, false
		}
		raw = u.EscapedPath()
	} else if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if i := bytes.IndexByte(req.Target, '?'); i >= 0 {
		rawQuery = req.Target[i+1:]
	}
	for _, f := range req.Fields {
		if bytes.IndexByte(f.Name, '_') >= 0 {
			return "", nil, false
		}
	}
	path, err := route.NormalizePath(raw)
	return path, rawQuery, err == nil
}

// recorder is a raw origin on 127.0.0.1 that records each request head it
// reads and answers it 200 with an empty body.
type recorder struct {
	*rawOrigin
	heads chan string
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{heads: make(chan string, 16)}
	rec.rawOrigin = newRawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readRequestHead(br)
			if err != nil {
				return
			}
			rec.heads <- head
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	return rec
}

// viaGoroutinePath sends the raw request through h1.Server and Forward, as
// the gateway does (gatewayCheck, X-Request-Id: id), and returns the head
// the origin got and the client's address as the server saw it.
func viaGoroutinePath(t *testing.T, p *Pool, rec *recorder, raw, id string) (head, remote string) {
	t.Helper()
	remotes := make(chan string, 1)
	addr := testkit.ServeWith(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remotes <- r.RemoteAddr
		if _, ok := gatewayCheck(r); !ok {
			t.Errorf("the gateway would refuse %q", raw)
			http.Error(w, "refused", 400)
			return
		}
		r.Header["X-Request-Id"] = []string{id}
		if err := p.Forward(w, r); err != nil {
			t.Errorf("Forward: %v", err)
		}
	})})
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	return testkit.Receive(t, rec.heads, 5*time.Second, "the request at the origin"), <-remotes
}

// sameRequest compares two request heads as an origin reads them: method,
// target, version, Host and the header as a map (order aside).
func sameRequest(t *testing.T, what, want, got string) {
	t.Helper()
	wr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(want)))
	if err != nil {
		t.Fatalf("%s: goroutine path's head %q: %v", what, want, err)
	}
	gr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(got)))
	if err != nil {
		t.Fatalf("%s: wire head %q: %v", what, got, err)
	}
	if wr.Method != gr.Method || wr.RequestURI != gr.RequestURI || wr.Proto != gr.Proto || wr.Host != gr.Host ||
		!reflect.DeepEqual(wr.Header, gr.Header) || wr.ContentLength != gr.ContentLength {
		t.Errorf("%s:\ngoroutine path: %q\nwire:           %q", what, want, got)
	}
}

var wireRequests = []struct {
	name, head string
	trusted    bool
	hostOrigin bool
	prefix     string
	id         string
}{
	{name: "GET", head: "GET /a/b HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n"},
	{name: "HEAD", head: "HEAD /a HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "POST without body", head: "POST /submit HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "POST Content-Length 0", head: "POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"},
	{name: "PATCH", head: "PATCH /x HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "DELETE", head: "DELETE /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
	{name: "query odd bytes", head: "GET /s?q=a%20b&x=\"{}|\\^`&&y=?z= HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "empty query", head: "GET /s? HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "double question mark", head: "GET /s?? HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "path odd bytes", head: "GET /a/{b}/c!d'(e)*[f]\"g HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "path normalised", head: "GET /x//y!z/%7e/caf%c3%a9 HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "path normalised to plain", head: "GET //a//b HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "path escapes kept", head: "GET /caf%C3%A9/%2A HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "forwarded from untrusted", head: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\r\n"},
	{name: "forwarded from trusted", trusted: true, head: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: front.example\r\n\r\n"},
	{name: "forwarded from trusted, empty", trusted: true, head: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: \r\nX-Forwarded-Host:\r\n\r\n"},
	{name: "forwarded from trusted, Connection drops", trusted: true, head: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Host: f\r\nConnection: X-Forwarded-For, x-forwarded-host\r\n\r\n"},
	{name: "Connection names fields", head: "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret, x-request-id,Cache-Control\r\nX-Secret: s\r\nX-Kept: k\r\nX-Request-Id: client-id\r\nCache-Control: no-store\r\n\r\n"},
	{name: "hop-by-hop fields", head: "GET / HTTP/1.1\r\nHost: h\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-Sum\r\nProxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"},
	{name: "host_header origin", hostOrigin: true, head: "GET / HTTP/1.1\r\nHost: client.example\r\n\r\n"},
	{name: "prefix", prefix: "/legacy", head: "GET /a?b=c HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "prefix root", prefix: "/legacy/", head: "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
	{name: "absolute form", head: "GET http://Example.COM:8080/p/%7e?q=1 HTTP/1.1\r\nHost: other\r\n\r\n"},
	{name: "absolute form odd path", head: "GET http://example.com/a{b}!c HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "absolute form normalised", head: "GET http://example.com//a!b HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "X-Request-Id of the client", id: "client-chosen-id", head: "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: client-chosen-id\r\n\r\n"},
	{name: "X-Request-Id replaced", head: "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: a\r\nX-Request-Id: b\r\n\r\n"},
	{name: "Pragma no-cache", head: "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n"},
	{name: "Pragma no-cache, Cache-Control", head: "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nCache-control: max-age=0\r\n\r\n"},
	{name: "Pragma second", head: "GET / HTTP/1.1\r\nHost: h\r\nPragma: x\r\nPragma: no-cache\r\n\r\n"},
	{name: "names and values", head: "GET / HTTP/1.1\r\nhost: h\r\naccept: a\r\nACCEPT: b\r\nx-EMPTY:\r\nX-Tab: \tv\t \r\nX-Obs: caf\xc3\xa9\r\nIdempotency-Key: 1\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"},
	{name: "Expect-free OPTIONS", head: "OPTIONS /x HTTP/1.1\r\nHost: h\r\nOrigin: o\r\n\r\n"},
	{name: "IPv6 host", head: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"},
}

func TestWireRequestMatchesGoroutinePath(t *testing.T) {
	for _, tc := range wireRequests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t)
			o := config.Origin{}
			if tc.hostOrigin {
				o.HostHeader = "origin"
			}
			var opts Options
			if tc.trusted {
				opts.TrustedProxies = mustPrefixes(t, "127.0.0.0/8")
			}
			p := newTestPool(t, o, opts, rec.URL()+tc.prefix)
			id := tc.id
			if id == "" {
				id = "0123456789abcdef"
			}
			want, remote := viaGoroutinePath(t, p, rec, tc.head, id)

			var req h1.Request
			if err := h1.Parse(&req, []byte(tc.head), 1<<20); err != nil {
				t.Fatalf("h1.Parse: %v", err)
			}
			path, query, ok := wireCheck(&req)
			if !ok {
				t.Fatalf("wireCheck refused %q", tc.head)
			}
			w, ok := p.PickWire()
			if !ok {
				t.Fatal("PickWire: not reachable")
			}
			got := string(w.AppendRequest(nil, &req, path, query, remote, id))
			sameRequest(t, tc.name, want, got)
		})
	}
}

// FuzzWireRequest holds AppendRequest to the goroutine path's appendHead
// for any head h1.Parse accepts and the event-loop path would serve (no
// body, no upgrade, no Expect, HTTP/1.1), as the gateway passes it on.
// net/http's ReadRequest builds the *http.Request h1.Server would.
func FuzzWireRequest(f *testing.F) {
	f.Add([]byte("GET /a?b HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: x-a\r\nX-A: 1\r\n\r\n"), uint8(0))
	f.Add([]byte("POST http://h:1/a{b}//c HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n"), uint8(7))
	f.Add([]byte("DELETE /%7e!x HTTP/1.1\r\nHost: [::1]\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: a\r\nX-Request-Id: q\r\n\r\n"), uint8(3))
	for i, tc := range wireRequests {
		f.Add([]byte(tc.head), uint8(i))
	}
	f.Fuzz(func(t *testing.T, head []byte, flags uint8) {
		var req h1.Request
		if h1.Parse(&req, head, 64<<10) != nil || req.ContentLength > 0 || req.Chunked || req.Expect100 || req.ProtoMinor != 1 {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil || websocketUpgrade(r) != "" {
			return
		}
		r.RemoteAddr = "10.0.0.7:5555"
		if flags&1 != 0 {
			r.RemoteAddr = "[::1]:5555"
		}
		if _, ok := gatewayCheck(r); !ok {
			return
		}
		path, query, ok := wireCheck(&req)
		if !ok {
			t.Fatalf("wireCheck refused what gatewayCheck accepted: %q", head)
		}
		id := "fuzz-id"
		r.Header["X-Request-Id"] = []string{id}

		o := config.Origin{Name: "o", URLs: []string{"http://127.0.0.1:1"}}
		if flags&2 != 0 {
			o.URLs[0] += "/pre%20fix"
		}
		if flags&4 != 0 {
			o.HostHeader = "origin"
		}
		var opts Options
		if flags&8 != 0 {
			opts.TrustedProxies = mustPrefixes(t, "10.0.0.0/8", "::1/128")
		}
		p, err := NewPool(o, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		in := p.instances[0]

		var want bytes.Buffer
		bw := bufio.NewWriterSize(&want, writeBufferSize)
		bw.Write(p.appendHead(bw.AvailableBuffer(), r, in, requestBodyMode(r), ""))
		bw.Flush()
		got := Wire{in: in}.AppendRequest(nil, &req, path, query, r.RemoteAddr, id)
		sameRequest(t, fmt.Sprintf("%q", head), want.String(), string(got))
	})
}

func TestForwardPathAsNetURL(t *testing.T) {
	for _, raw := range []string{"/", "/a", "/a!b", "/a%21b", "/%7e", "/a{b}", "/caf%C3%A9", "/a%2fb", "/a b", "/a+b;c=d:e@f", "/[x]", "/*"} {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			continue
		}
		if got, want := forwardPath(raw, raw, false), u.EscapedPath(); got != want {
			t.Errorf("forwardPath(%q) unchanged = %q, net/url %q", raw, got, want)
		}
		dec, _ := url.PathUnescape(raw)
		u2 := &url.URL{Path: dec, RawPath: raw}
		if dec == raw {
			u2.RawPath = ""
		}
		if got, want := forwardPath(raw, "/other", false), u2.EscapedPath(); got != want {
			t.Errorf("forwardPath(%q) replaced = %q, net/url %q", raw, got, want)
		}
	}
}

func BenchmarkWireRequest(b *testing.B) {
	p := newTestPool(b, config.Origin{}, Options{}, "http://127.0.0.1:8080")
	head := []byte("GET /api/items?id=42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n")
	var req h1.Request
	if err := h1.Parse(&req, head, 1<<20); err != nil {
		b.Fatal(err)
	}
	w, _ := p.PickWire()
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		dst = w.AppendRequest(dst[:0], &req, "/api/items", req.Target[11:], "192.0.2.1:40000", "0123456789abcdef")
	}
}

// BenchmarkGoroutineRequestHead is the goroutine path's appendHead for
// BenchmarkWireRequest's request, for comparison.
func BenchmarkGoroutineRequestHead(b *testing.B) {
	p := newTestPool(b, config.Origin{}, Options{}, "http://127.0.0.1:8080")
	head := "GET /api/items?id=42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		b.Fatal(err)
	}
	r.RemoteAddr = "192.0.2.1:40000"
	r.Header["X-Request-Id"] = []string{"0123456789abcdef"}
	in := p.instances[0]
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		dst = p.appendHead(dst[:0], r, in, bodyNone, "")
	}
}

// headsOf reads what the goroutine path reads from an origin's answer:
// readFinalHead over a bufio.Reader of the connection's size, with the
// interim answers it passes on as h1.Server writes them (no framing
// fields), and the final head as RoundTrip's Response holds it.
type headsOf struct {
	interim  []interimHead
	status   int
	header   http.Header
	cl       int64
	chunked  bool
	close    bool
	ka       time.Duration
	consumed int
	err      error
}

type interimHead struct {
	status int
	header http.Header
}

// interimWriter records the interim answers readFinalHead writes.
type interimWriter struct {
	h       http.Header
	interim []interimHead
}

func (w *interimWriter) Header() http.Header         { return w.h }
func (w *interimWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *interimWriter) WriteHeader(code int) {
	h := w.h.Clone()
	delete(h, "Content-Length")
	delete(h, "Transfer-Encoding")
	w.interim = append(w.interim, interimHead{code, h})
}

func goroutineHeads(raw []byte, method string) headsOf {
	rd := bytes.NewReader(raw)
	cc := &upConn{br: bufio.NewReaderSize(rd, readBufferSize)}
	w := &interimWriter{h: http.Header{}}
	var p *Pool // readFinalHead does not use its pool
	err := p.readFinalHead(w, &http.Request{Method: method}, cc)
	out := headsOf{interim: w.interim, err: err}
	if err != nil {
		return out
	}
	resp := &Response{Header: http.Header{}}
	resp.setHead(&cc.head)
	delete(resp.Header, "Content-Length")
	out.status, out.header = resp.Status, resp.Header
	h := &cc.head
	out.cl, out.chunked, out.close, out.ka = h.contentLength, h.chunked, h.close, h.keepAlive
	out.consumed = len(raw) - rd.Len() - cc.br.Buffered()
	return out
}

// fieldsOf parses "Name: value\r\n" lines as a client does.
func fieldsOf(t testing.TB, b []byte) http.Header {
	t.Helper()
	h := http.Header{}
	for _, line := range strings.SplitAfter(string(b), "\r\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\r\n"), ": ")
		if !ok || !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("field line %q", line)
		}
		h[k] = append(h[k], v)
	}
	return h
}

// compareHeads holds ParseWireResponse and AppendFields to the goroutine
// path for the answer raw to a request of method.
func compareHeads(t testing.TB, raw []byte, method string) {
	t.Helper()
	want := goroutineHeads(raw, method)
	var r WireResponse
	var interim []interimHead
	n := 0
	for {
		k, err := ParseWireResponse(&r, raw[n:], method)
		if err != nil {
			switch {
			case want.err == nil:
				t.Fatalf("%q: wire error %v, goroutine path none", raw, err)
			case errors.Is(err, ErrIncomplete):
				if want.err != io.EOF {
					t.Fatalf("%q: wire incomplete, goroutine path %v", raw, want.err)
				}
			case err.Error() != want.err.Error():
				t.Fatalf("%q: wire error %v, goroutine path %v", raw, err, want.err)
			}
			return
		}
		if k <= 0 {
			t.Fatalf("%q: no progress", raw)
		}
		n += k
		if r.Status >= 200 {
			break
		}
		interim = append(interim, interimHead{r.Status, fieldsOf(t, r.AppendFields(nil))})
	}
	if want.err != nil {
		t.Fatalf("%q: goroutine path error %v, wire none (status %d)", raw, want.err, r.Status)
	}
	if len(interim) != len(want.interim) {
		t.Fatalf("%q: %d interim answers, goroutine path %d", raw, len(interim), len(want.interim))
	}
	for i := range interim {
		if interim[i].status != want.interim[i].status || !reflect.DeepEqual(interim[i].header, want.interim[i].header) {
			t.Fatalf("%q: interim %d: wire %v, goroutine path %v", raw, i, interim[i], want.interim[i])
		}
	}
	got := fieldsOf(t, r.AppendFields(nil))
	if r.Status == 304 {
		delete(want.header, "Content-Type") // h1.Server leaves it out (see the socket test)
	}
	if !reflect.DeepEqual(got, want.header) && !(len(got) == 0 && len(want.header) == 0) {
		t.Fatalf("%q: fields\nwire:           %v\ngoroutine path: %v", raw, got, want.header)
	}
	hasBody := bodyAllowed(method, want.status)
	if r.Status != want.status || r.ContentLength != want.cl || r.Chunked != want.chunked ||
		r.Bodyless == hasBody || r.UntilClose != (hasBody && !want.chunked && want.cl < 0) ||
		r.KeepAlive != (!want.close && !r.UntilClose) || r.KeepAliveFor != want.ka || n != want.consumed {
		t.Fatalf("%q: wire %+v n=%d, goroutine path %+v", raw, r, n, want)
	}
	if _, ok := got["Date"]; ok != r.HasDate {
		t.Fatalf("%q: HasDate %v with fields %v", raw, r.HasDate, got)
	}
}

var wireAnswers = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: max=3, timeout=\"7\"\r\nKeep-Alive: timeout=4\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: X-Secret, date\r\nX-Secret: s\r\nDate: x\r\nX-Kept: k\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: x\r\nUpgrade: h2c\r\nTE: t\r\nTrailer: x\r\nProxy-Connection: close\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\nContent-Type: text/html\r\nETag: \"e\"\r\n\r\n",
	"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\nLink: </s.css>; rel=preload\r\n\r\nx",
	"HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: a\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: b\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 999 Whatever\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\ncontent-type: a\nx-powered-by: b\n\n",
	"HTTP/1.1 200 OK\r\ncontent-type: a\r\nX-LOWER-upper: b\r\nX-Empty:\r\nX-Ctl: a\x01b\r\nX-Tab:\t v \t\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
	// Malformed: refused by both, with the same error.
	"HTTP/2 200 OK\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 099 OK\r\n\r\n",
	"\r\nHTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\x00\r\n\r\n",
	"HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
	// Incomplete: the goroutine path meets EOF.
	"",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
	"HTTP/1.1 103 Early Hints\r\n\r\n",
}

func TestParseWireResponseMatchesGoroutinePath(t *testing.T) {
	for _, raw := range wireAnswers {
		for _, method := range []string{"GET", "HEAD", "POST"} {
			compareHeads(t, []byte(raw), method)
		}
	}
	huge := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxHeadBytes) + "\r\n\r\n"
	compareHeads(t, []byte(huge), "GET")
	compareHeads(t, []byte(huge[:maxHeadBytes+20]), "GET")
	compareHeads(t, []byte(huge[:maxHeadBytes-20]), "GET")
}

// FuzzWireResponse holds ParseWireResponse and AppendFields to the
// goroutine path's readFinalHead and copyResponseFields on any bytes.
func FuzzWireResponse(f *testing.F) {
	for _, raw := range wireAnswers {
		f.Add([]byte(raw), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		compareHeads(t, raw, method)
	})
}

func BenchmarkWireResponseLowerCase(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\ndate: Sun, 06 Dec 2026 10:00:00 GMT\r\nserver: uvicorn\r\ncontent-length: 13\r\ncontent-type: application/json\r\n\r\n{\"ok\": true}\n")
	buf := make([]byte, len(raw))
	var r WireResponse
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, raw) // ParseWireResponse canonicalises the names in place
		if _, err := ParseWireResponse(&r, buf, "GET"); err != nil {
			b.Fatal(err)
		}
		dst = r.AppendFields(dst[:0])
	}
}

func BenchmarkWireResponse(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"ok\": true}\n")
	var r WireResponse
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseWireResponse(&r, raw, "GET"); err != nil {
			b.Fatal(err)
		}
		dst = r.AppendFields(dst[:0])
	}
}

// chunkedVerdict is what a client gets from a chunked body: its bytes, its
// trailers, and whether it ended cleanly; consumed is how much of the
// input the body took.
type chunkedVerdict struct {
	body     string
	trailers http.Header
	ok       bool
	consumed int
}

// goroutineChunked is the goroutine path's verdict: copyChunked over a
// bufio.Reader of the connection's size.
func goroutineChunked(data []byte) chunkedVerdict {
	rd := bytes.NewReader(data)
	cc := &upConn{br: bufio.NewReaderSize(rd, readBufferSize)}
	rec := httptest.NewRecorder()
	var p *Pool
	_, err := p.copyChunked(rec, cc, &flusher{w: rec})
	v := chunkedVerdict{body: rec.Body.String(), trailers: http.Header{}, ok: err == nil}
	for k, vs := range rec.Header() {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			v.trailers[name] = vs
		}
	}
	v.consumed = len(data) - rd.Len() - cc.br.Buffered()
	return v
}

// clientChunked is what a client makes of the bytes Scan passed on:
// net/http's chunked reader for the body, then the trailer section.
func clientChunked(t testing.TB, out []byte) (body string, trailers http.Header) {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(out), readBufferSize)
	b, err := io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		t.Fatalf("the bytes passed on %q are not a chunked body: %v", out, err)
	}
	trailers = http.Header{}
	if _, err := readTrailers(&upConn{br: br}, trailers); err != nil {
		t.Fatalf("the trailers passed on %q: %v", out, err)
	}
	for k, vs := range trailers {
		delete(trailers, k)
		trailers[strings.TrimPrefix(k, http.TrailerPrefix)] = vs
	}
	if br.Buffered() != 0 {
		t.Fatalf("bytes passed on after the body's end: %q", out)
	}
	return string(b), trailers
}

// scanAll feeds data to a ChunkScanner in pieces of split's sizes, keeping
// what Scan leaves unconsumed, as the loop does with its read buffer.
func scanAll(t testing.TB, data []byte, split func(left int) int) (out []byte, v chunkedVerdict) {
	t.Helper()
	var s ChunkScanner
	var pending []byte
	pos := 0
	for {
		if pos < len(data) {
			k := max(1, min(split(len(data)-pos), len(data)-pos))
			pending = append(pending, data[pos:pos+k]...)
			pos += k
		}
		n, m, done, err := s.Scan(pending)
		if n < 0 || m < 0 || m > n || n > len(pending) {
			t.Fatalf("Scan(%q) = n %d, m %d", pending, n, m)
		}
		out = append(out, pending[:m]...)
		v.consumed += n
		pending = append([]byte(nil), pending[n:]...)
		switch {
		case err != nil:
			return out, v
		case done:
			v.ok = true
			return out, v
		case pos == len(data) && n == 0:
			return out, v // the origin closed before the end
		}
	}
}

// compareChunked holds Scan to copyChunked for one body, fed whole, byte
// by byte and in random pieces.
func compareChunked(t testing.TB, data []byte, seed uint64) {
	t.Helper()
	want := goroutineChunked(data)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	feeds := []struct {
		name  string
		split func(int) int
	}{
		{"whole", func(left int) int { return left }},
		{"byte by byte", func(int) int { return 1 }},
		{"random", func(left int) int { return 1 + rng.IntN(min(left, 64)) }},
	}
	for _, feed := range feeds {
		out, got := scanAll(t, data, feed.split)
		if got.ok != want.ok {
			t.Fatalf("%q fed %s: ok %v, goroutine path %v", data, feed.name, got.ok, want.ok)
		}
		if !got.ok {
			continue
		}
		got.body, got.trailers = clientChunked(t, out)
		if got.body != want.body || got.consumed != want.consumed || !sameFields(got.trailers, want.trailers) {
			t.Fatalf("%q fed %s: passed on %q\nwire:           %+v\ngoroutine path: %+v", data, feed.name, out, got, want)
		}
	}
}

// sameFields compares headers as multisets of values per name.
func sameFields(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		if !slices.Equal(slices.Sorted(slices.Values(va)), slices.Sorted(slices.Values(vb))) {
			return false
		}
	}
	return true
}

var chunkedBodies = []string{
	"5\r\nhello\r\n0\r\n\r\n",
	"5;a=b\r\nhello\r\n6;x;y=\"q;\"\r\n world\r\n0;last\r\n\r\n",
	"5 \t\r\nhello\r\n0\t\r\n\r\n",
	"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
	"0005\r\nhello\r\n000\r\n\r\n",
	"0\r\n\r\n",
	"5\r\nhello\r\n0\r\nx-sum: abc\r\nConnection: x\r\nContent-Length: 3\r\nTrailer: y\r\nX-Ctl: a\x01b\r\nX-Sp:   v  \r\nx-a:b\r\nX-SUM:  second\r\nx-e:\r\n\r\n",
	"0\r\n\n",
	"0\r\nA:b\nc-d:e\r\r\n\n",
	"0\r\nA:\tb\t\r\n\r\n",
	"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
	strings.Repeat("1\r\nx\r\n", 500) + "0\r\n\r\n",
	"5\r\nhello\r\n0\r\n" + strings.Repeat("X-T: "+strings.Repeat("v", 1000)+"\r\n", 60) + "\r\n",
	// Refused by both.
	"g\r\nx\r\n0\r\n\r\n",
	"\r\nx\r\n0\r\n\r\n",
	" 5\r\nhello\r\n0\r\n\r\n",
	"5 x\r\nhello\r\n0\r\n\r\n",
	"11111111111111111\r\n",
	"ffffffffffffffff\r\nab",
	"5\nhello\r\n0\r\n\r\n",
	"5\r\r\nhello\r\n0\r\n\r\n",
	"5\rx\r\nhello\r\n0\r\n\r\n",
	"5\r\nhelloXX0\r\n\r\n",
	"5\r\nhello\rX0\r\n\r\n",
	"5\r\nhello\n0\r\n\r\n",
	"1;" + strings.Repeat("e", 4100) + "\r\nx\r\n0\r\n\r\n",
	"1;" + strings.Repeat("e", 4093) + "\r\nx\r\n0\r\n\r\n",
	"1;" + strings.Repeat("e", 4094) + "\r\nx\r\n0\r\n\r\n",
	strings.Repeat("1;"+strings.Repeat("e", 200)+"\r\nx\r\n", 100) + "0\r\n\r\n",
	strings.Repeat("1;"+strings.Repeat("e", 200)+"\r\nx\r\n", 60) + "0;" + strings.Repeat("e", 200) + "\r\n\r\n",
	"0\r\nno colon\r\n\r\n",
	"0\r\nbad name: x\r\n\r\n",
	"0\r\n: x\r\n\r\n",
	"0\r\nX-A: " + strings.Repeat("v", 8200) + "\r\n\r\n",
	"0\r\nX-A: " + strings.Repeat("v", 8186) + "\r\n\r\n",
	"0\r\nX-A: " + strings.Repeat("v", 8185) + "\r\n\r\n",
	"0\r\n" + strings.Repeat("X-T: "+strings.Repeat("v", 1000)+"\r\n", 70) + "\r\n",
	// Cut short: the goroutine path meets EOF, the scanner is not done.
	"5\r\nhel",
	"5\r\nhello\r",
	"5\r\nhello\r\n0\r\n",
	"5\r\nhello\r\n0\r\nX-A: b\r\n",
}

func TestChunkScannerMatchesGoroutinePath(t *testing.T) {
	for i, body := range chunkedBodies {
		compareChunked(t, []byte(body), uint64(i))
	}
}

// FuzzChunkScanner holds ChunkScanner to the goroutine path's copyChunked
// (net/http/httputil's chunked reader, then readTrailers) on any bytes,
// fed in pieces of every size; a client's chunked reader is the judge of
// the bytes it passes on.
func FuzzChunkScanner(f *testing.F) {
	for _, body := range chunkedBodies {
		if len(body) < 2000 {
			f.Add([]byte(body), uint64(len(body)))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		compareChunked(t, data, seed)
	})
}

func BenchmarkChunkScanner(b *testing.B) {
	body := []byte(strings.Repeat("400\r\n"+strings.Repeat("x", 1024)+"\r\n", 8) + "0\r\n\r\n")
	buf := make([]byte, len(body))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		copy(buf, body)
		var s ChunkScanner
		if _, _, done, err := s.Scan(buf); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

// clientHeads sends method / through h1.Server and Forward to an origin
// that answers answer, and returns the heads the client got (interim ones
// first), each as status and header.
func clientHeads(t *testing.T, answer, method string) []interimHead {
	t.Helper()
	o := newRawOrigin(t, func(c net.Conn) {
		if _, err := readRequestHead(bufio.NewReader(c)); err == nil {
			io.WriteString(c, answer)
		}
	})
	p := newTestPool(t, config.Origin{}, Options{}, o.URL())
	addr := testkit.ServeWith(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Request-Id"] = []string{"id"}
		p.Forward(w, r)
	})})
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	fmt.Fprintf(c, "%s / HTTP/1.1\r\nHost: h\r\n\r\n", method)
	tr := textproto.NewReader(bufio.NewReader(c))
	var heads []interimHead
	for {
		line, err := tr.ReadLine()
		if err != nil {
			t.Fatalf("%q: status line: %v", answer, err)
		}
		var status int
		if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
			t.Fatalf("%q: status line %q", answer, line)
		}
		h, err := tr.ReadMIMEHeader()
		if err != nil {
			t.Fatalf("%q: header: %v", answer, err)
		}
		heads = append(heads, interimHead{status, http.Header(h)})
		if status >= 200 {
			return heads
		}
	}
}

// TestWireResponseAsClientSeesIt holds what AppendFields documents to what
// a client of the goroutine path gets: the fields, and the framing, Date
// and Content-Type rules the loop must follow.
func TestWireResponseAsClientSeesIt(t *testing.T) {
	for _, answer := range wireAnswers {
		for _, method := range []string{"GET", "HEAD"} {
			raw := []byte(answer)
			if goroutineHeads(raw, method).err != nil {
				continue
			}
			heads := clientHeads(t, answer, method)
			var r WireResponse
			n := 0
			for i, client := range heads {
				k, err := ParseWireResponse(&r, raw[n:], method)
				if err != nil {
					t.Fatalf("%q: %v", answer, err)
				}
				n += k
				if r.Status != client.status {
					t.Fatalf("%s %q: head %d: wire status %d, client got %d", method, answer, i, r.Status, client.status)
				}
				got := fieldsOf(t, r.AppendFields(nil))
				want := client.header.Clone()
				if v := want["X-Request-Id"]; len(v) != 1 || v[0] != "id" {
					t.Fatalf("%q: X-Request-Id %q", answer, v)
				}
				delete(want, "X-Request-Id")
				if r.Status < 200 {
					if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
						t.Fatalf("%s %q: interim fields\nwire:   %v\nclient: %v", method, answer, got, want)
					}
					continue
				}
				cl, te := want["Content-Length"], want["Transfer-Encoding"]
				for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection"} {
					delete(want, k)
				}
				if !r.HasDate {
					if len(want["Date"]) != 1 {
						t.Fatalf("%q: client Date %q", answer, want["Date"])
					}
					delete(want, "Date")
				}
				if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Fatalf("%s %q: fields\nwire:   %v\nclient: %v", method, answer, got, want)
				}
				switch {
				case r.Status < 200 || r.Status == 204 || r.Status == 304:
					if cl != nil || te != nil {
						t.Fatalf("%s %q: bodyless answer framed %q %q", method, answer, cl, te)
					}
				case method == "HEAD":
					if te != nil || (cl != nil) != (r.ContentLength >= 0 && !r.Chunked) ||
						cl != nil && cl[0] != fmt.Sprint(r.ContentLength) {
						t.Fatalf("HEAD %q: client framing %q %q, wire %+v", answer, cl, te, r)
					}
				case r.ContentLength >= 0:
					// A repeated Content-Length reaches the client
					// repeated; one says the same.
					if len(cl) == 0 || slices.ContainsFunc(cl, func(v string) bool { return v != fmt.Sprint(r.ContentLength) }) {
						t.Fatalf("%q: client Content-Length %q, wire %d", answer, cl, r.ContentLength)
					}
				}
			}
		}
	}
}

func TestPickWireRoundRobin(t *testing.T) {
	recs := []*recorder{newRecorder(t), newRecorder(t), newRecorder(t)}
	p := newTestPool(t, config.Origin{}, Options{}, recs[0].URL(), recs[1].URL(), recs[2].URL())
	index := func(w Wire) int {
		for i, in := range p.instances {
			if in == w.in {
				return i
			}
		}
		t.Fatalf("wire of no instance")
		return -1
	}
	srv := front(t, p)
	var seq []int
	for range 4 {
		w, ok := p.PickWire()
		if !ok {
			t.Fatal("PickWire not ok")
		}
		seq = append(seq, index(w))
		get(t, srv.URL) // the goroutine path takes the next turn
		select {
		case <-recs[0].heads:
			seq = append(seq, 0)
		case <-recs[1].heads:
			seq = append(seq, 1)
		case <-recs[2].heads:
			seq = append(seq, 2)
		case <-time.After(5 * time.Second):
			t.Fatal("no origin got the request")
		}
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] != (seq[i-1]+1)%3 {
			t.Fatalf("instances in turn %v: not round robin across both paths", seq)
		}
	}
	w, _ := p.PickWire()
	if got := w.Addr().String(); "http://"+got != recs[index(w)].URL() {
		t.Errorf("Addr %s for %s", got, recs[index(w)].URL())
	}
}

func TestPickWireReachability(t *testing.T) {
	for _, tc := range []struct {
		url  string
		ok   bool
		addr string
	}{
		{"http://127.0.0.1:8080/x", true, "127.0.0.1:8080"},
		{"http://localhost:81", true, "127.0.0.1:81"},
		{"http://[::1]:82", true, "[::1]:82"},
		{"http://10.0.0.1", true, "10.0.0.1:80"},
		{"http://[::ffff:10.0.0.2]:83", true, "10.0.0.2:83"},
		{"https://127.0.0.1:8443", false, ""},
		{"http://[fe80::1%25eth0]:84", false, ""},
		// A host name: not before it is looked up (resolve_test.go).
	} {
		p := newTestPool(t, config.Origin{}, Options{}, tc.url)
		w, ok := p.PickWire()
		if ok != tc.ok || ok && w.Addr().String() != tc.addr {
			t.Errorf("%s: PickWire ok %v addr %v, want %v %s", tc.url, ok, w.Addr(), tc.ok, tc.addr)
		}
		if ok && w.Instance() != tc.url {
			t.Errorf("%s: Instance %q", tc.url, w.Instance())
		}
	}
	// A pool with no reachable instance does not take a turn.
	p := newTestPool(t, config.Origin{}, Options{}, "https://127.0.0.1:1", "http://[fe80::1%25eth0]:2")
	if _, ok := p.PickWire(); ok || p.next.Load() != 0 {
		t.Errorf("PickWire on unreachable instances: ok %v, turn %d", ok, p.next.Load())
	}
	// Mixed: the round robin goes on; the unreachable one is not ok.
	p = newTestPool(t, config.Origin{}, Options{}, "https://127.0.0.1:1", "http://127.0.0.1:2")
	a, okA := p.PickWire()
	b, okB := p.PickWire()
	if okA == okB || a.in == b.in {
		t.Errorf("mixed pool: %v %v, %v %v", a.Instance(), okA, b.Instance(), okB)
	}
}

func TestWireTimeouts(t *testing.T) {
	o := config.Origin{Timeouts: config.OriginTimeouts{Dial: dur(time.Second), ResponseHeader: dur(3 * time.Second), Overall: dur(2 * time.Second)}}
	p := newTestPool(t, o, Options{}, "http://127.0.0.1:1")
	w, _ := p.PickWire()
	if w.ConnectTimeout() != time.Second || w.ResponseHeaderTimeout() != 2*time.Second || w.OverallTimeout() != 2*time.Second {
		t.Errorf("timeouts %v %v %v", w.ConnectTimeout(), w.ResponseHeaderTimeout(), w.OverallTimeout())
	}
	if got := w.IdleTimeout(0); got != idleTimeout {
		t.Errorf("IdleTimeout(0) = %v", got)
	}
	if got := w.IdleTimeout(5 * time.Second); got != 4*time.Second {
		t.Errorf("IdleTimeout(5s) = %v, want reuseWindow's 4s", got)
	}
	if got := w.IdleTimeout(time.Hour); got != idleTimeout {
		t.Errorf("IdleTimeout(1h) = %v", got)
	}
	if w.PoolClosed() {
		t.Error("PoolClosed before Close")
	}
	p.Close()
	if !w.PoolClosed() {
		t.Error("not PoolClosed after Close")
	}
}

func TestWireReplayable(t *testing.T) {
	for head, want := range map[string]bool{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n":                        true,
		"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n":                     true,
		"POST / HTTP/1.1\r\nHost: h\r\n\r\n":                       false,
		"POST / HTTP/1.1\r\nHost: h\r\nidempotency-key: k\r\n\r\n": true,
		"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n":                      false,
	} {
		var req h1.Request
		if err := h1.Parse(&req, []byte(head), 1<<20); err != nil {
			t.Fatal(err)
		}
		r, _ := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if got := (Wire{}).Replayable(&req); got != want || idempotent(r) != want {
			t.Errorf("%q: Replayable %v, idempotent %v, want %v", head, got, idempotent(r), want)
		}
	}
}

// roundTripError is the *Error the goroutine path returns for a GET.
func roundTripError(t *testing.T, p *Pool) *Error {
	t.Helper()
	resp, err := p.RoundTrip(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if err == nil {
		resp.Discard()
		t.Fatal("RoundTrip did not fail")
	}
	var oe *Error
	if !errors.As(err, &oe) {
		t.Fatalf("RoundTrip: %v, not an *Error", err)
	}
	return oe
}

func sameError(t *testing.T, what string, want, got *Error) {
	t.Helper()
	if got.Kind != want.Kind || got.StatusCode() != want.StatusCode() || got.Error() != want.Error() {
		t.Errorf("%s:\nwire:           %v (%d)\ngoroutine path: %v (%d)", what, got, got.StatusCode(), want, want.StatusCode())
	}
}

func TestWireFailedMatchesGoroutinePath(t *testing.T) {
	t.Run("connect refused", func(t *testing.T) {
		url := testkit.RefusedURL(t)
		goroutine := newTestPool(t, config.Origin{}, Options{Logger: testkit.QuietLogger()}, url)
		wire := newTestPool(t, config.Origin{}, Options{Logger: testkit.QuietLogger()}, url)
		for i := range 3 {
			want := roundTripError(t, goroutine)
			w, _ := wire.PickWire()
			got := w.Failed(WireConnect, false, syscall.ECONNREFUSED)
			sameError(t, fmt.Sprint("failure ", i+1), want, got)
			a, b := goroutine.Instances()[0], wire.Instances()[0]
			if a.ConsecutiveFailures != b.ConsecutiveFailures || a.Ejected != b.Ejected || a.LastError != b.LastError {
				t.Errorf("after failure %d:\nwire:           %+v\ngoroutine path: %+v", i+1, b, a)
			}
		}
		if !wire.Instances()[0].Ejected {
			t.Error("not ejected after 3 failed connects")
		}
		w, _ := wire.PickWire()
		w.Connected()
		if st := wire.Instances()[0]; st.Ejected || st.ConsecutiveFailures != 0 {
			t.Errorf("after Connected: %+v", st)
		}
	})
	t.Run("connect timeout", func(t *testing.T) {
		p := newTestPool(t, config.Origin{}, Options{Logger: testkit.QuietLogger()}, "http://192.0.2.1:80")
		w, _ := p.PickWire()
		got := w.Failed(WireConnect, false, os.ErrDeadlineExceeded)
		if got.Kind != KindConnect || got.StatusCode() != 502 || got.Error() != "origin http://192.0.2.1:80: connect: connect: dial tcp 192.0.2.1:80: i/o timeout" {
			t.Errorf("dial timeout: %v", got)
		}
		if got := w.Failed(WireConnect, true, os.ErrDeadlineExceeded); got.Kind != KindTimeout || got.StatusCode() != 504 {
			t.Errorf("overall timeout during connect: %v", got)
		}
		if st := p.Instances()[0]; st.ConsecutiveFailures != 1 {
			t.Errorf("an overall timeout counted as a failed connect: %+v", st)
		}
	})
	answering := func(answer string) string {
		o := newRawOrigin(t, func(c net.Conn) {
			if _, err := readRequestHead(bufio.NewReader(c)); err == nil {
				io.WriteString(c, answer)
				if answer == "" {
					time.Sleep(300 * time.Millisecond)
				}
			}
		})
		return o.URL()
	}
	for _, tc := range []struct{ name, answer string }{
		{"malformed head", "HTTP/1.1 20 OK\r\n\r\n"},
		{"101", "HTTP/1.1 101 Switching Protocols\r\n\r\n"},
		{"folded", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"},
		{"closed before the head ended", "HTTP/1.1 200 OK\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := answering(tc.answer)
			goroutine := newTestPool(t, config.Origin{}, Options{}, url)
			wire := newTestPool(t, config.Origin{}, Options{}, url)
			want := roundTripError(t, goroutine)
			w, _ := wire.PickWire()
			var r WireResponse
			_, err := ParseWireResponse(&r, []byte(tc.answer), "GET")
			if err == ErrIncomplete {
				err = io.EOF // the origin closed
			}
			sameError(t, tc.name, want, w.Failed(WireResponseHead, false, err))
			if a, b := goroutine.Instances()[0], wire.Instances()[0]; a.LastError != b.LastError || a.ConsecutiveFailures != b.ConsecutiveFailures {
				t.Errorf("recorded: wire %+v, goroutine path %+v", b, a)
			}
		})
	}
	t.Run("response header timeout", func(t *testing.T) {
		url := answering("")
		o := config.Origin{Timeouts: config.OriginTimeouts{ResponseHeader: dur(50 * time.Millisecond)}}
		goroutine := newTestPool(t, o, Options{}, url)
		wire := newTestPool(t, o, Options{}, url)
		want := roundTripError(t, goroutine)
		w, _ := wire.PickWire()
		got := w.Failed(WireResponseHead, true, nil)
		if got.Kind != want.Kind || got.StatusCode() != 504 || want.StatusCode() != 504 {
			t.Errorf("wire %v, goroutine path %v", got, want)
		}
		if st := wire.Instances()[0]; st.LastError != "" || st.ConsecutiveFailures != 0 {
			t.Errorf("a timeout recorded %+v", st)
		}
	})
}

// TestParseWireResponseIncremental: a head cut anywhere is incomplete (or
// yields the interim answers it holds whole), never an error or a wrong
// answer.
func TestParseWireResponseIncremental(t *testing.T) {
	for _, answer := range wireAnswers {
		raw := []byte(answer)
		if goroutineHeads(raw, "GET").err != nil {
			continue
		}
		var r WireResponse
		full, err := 0, error(nil)
		for err == nil {
			var k int
			k, err = ParseWireResponse(&r, append([]byte(nil), raw[full:]...), "GET")
			full += k
			if err == nil && r.Status >= 200 {
				break
			}
		}
		for cut := 0; cut < full; cut++ {
			buf := append([]byte(nil), raw[:cut]...)
			n := 0
			for {
				k, err := ParseWireResponse(&r, buf[n:], "GET")
				if err == ErrIncomplete {
					break
				}
				if err != nil || r.Status >= 200 || n+k > cut {
					t.Fatalf("%q cut at %d: status %d, n %d, err %v", answer, cut, r.Status, n+k, err)
				}
				n += k
			}
		}
	}
}

// TestChunkScannerAsClientSeesIt holds the bytes Scan passes on to what a
// client of the goroutine path (h1.Server, Forward) gets from a chunked
// answer: the body and the trailers.
func TestChunkScannerAsClientSeesIt(t *testing.T) {
	for _, body := range chunkedBodies {
		if !goroutineChunked([]byte(body)).ok || len(body) > 4096 {
			continue // (net/http's client refuses long trailer sections)
		}
		answer := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" + body
		o := newRawOrigin(t, func(c net.Conn) {
			if _, err := readRequestHead(bufio.NewReader(c)); err == nil {
				io.WriteString(c, answer)
			}
		})
		p := newTestPool(t, config.Origin{}, Options{}, o.URL())
		addr := testkit.ServeWith(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.Forward(w, r)
		})})
		c := testkit.Dial(t, addr, 5*time.Second)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%.60q: %v", body, err)
		}
		got, err := io.ReadAll(resp.Body)
		c.Close()
		if err != nil {
			t.Fatalf("%.60q: body: %v", body, err)
		}
		if _, announced := resp.Header["Trailer"]; announced {
			t.Errorf("%.60q: the client got a Trailer field", body)
		}
		out, v := scanAll(t, []byte(body), func(left int) int { return left })
		if !v.ok {
			t.Fatalf("%.60q: Scan did not end", body)
		}
		wantBody, wantTrailers := clientChunked(t, out)
		if string(got) != wantBody || !sameFields(resp.Trailer, wantTrailers) && !(len(resp.Trailer) == 0 && len(wantTrailers) == 0) {
			t.Errorf("%.60q: client got %q %v, Scan passes on %q %v", body, got, resp.Trailer, wantBody, wantTrailers)
		}
	}
}
