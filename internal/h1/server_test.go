package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/testkit"
)

// serve starts s (its Handler set by the caller) on a loopback port until
// the test ends and returns the address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := testkit.Receive(t, done, 5*time.Second, "Serve to return"); err != http.ErrServerClosed {
			t.Errorf("Serve = %v, want http.ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

func serveFunc(t testing.TB, h http.HandlerFunc) (string, *testkit.SyncBuffer) {
	var logs testkit.SyncBuffer
	return serve(t, &Server{Handler: h, ErrorLog: log.New(&logs, "", 0)}), &logs
}

// exchange writes raw to a fresh connection, reads one response per method
// in methods, and reports whether the server then closed the connection.
func exchange(t *testing.T, addr, raw string, methods ...string) ([]*http.Response, []string, bool) {
	t.Helper()
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v", len(resps)+1, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(resps)+1, err)
		}
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
	return resps, bodies, closedAfter(t, c, br)
}

// closedAfter reports whether c ends (EOF or reset) with nothing more to
// read, rather than staying open.
func closedAfter(t *testing.T, c net.Conn, br *bufio.Reader) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	b, err := br.ReadByte()
	if err == nil {
		t.Fatalf("unexpected byte %q after the responses", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

func TestServerKeepAliveAndPipelining(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s host=%s cl=%d body=%s x=%q", r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, b, r.Header["X-A"])
	})
	// Empty lines before a request line are skipped (RFC 9112 §2.2).
	raw := "\r\nGET /a?q=1 HTTP/1.1\r\nHost: h\r\nx-a: 1\r\nX-A: 2\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\r\n" +
		"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" +
		"GET http://other:81/d HTTP/1.1\r\nHost: h\r\n\r\n"
	resps, bodies, closed := exchange(t, addr, raw, "GET", "POST", "POST", "GET")
	want := []string{
		`GET /a?q=1 HTTP/1.1 host=h cl=0 body= x=["1" "2"]`,
		`POST /b HTTP/1.1 host=h cl=5 body=hello x=[]`,
		`POST /c HTTP/1.1 host=h cl=-1 body=abcde x=[]`,
		`GET http://other:81/d HTTP/1.1 host=other:81 cl=0 body= x=[]`,
	}
	for i, b := range bodies {
		if b != want[i] {
			t.Errorf("response %d: %q, want %q", i+1, b, want[i])
		}
		if resps[i].ContentLength != int64(len(want[i])) || resps[i].Header.Get("Date") == "" ||
			resps[i].Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("response %d header: %v, length %d", i+1, resps[i].Header, resps[i].ContentLength)
		}
	}
	if closed {
		t.Error("keep-alive connection closed")
	}
}

func TestServerRequestLikeNetHTTP(t *testing.T) {
	var got, want *http.Request
	var gotBody, wantBody string
	h := func(dst **http.Request, body *string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			*dst, *body = r, string(b)
		}
	}
	var logs testkit.SyncBuffer
	ours := serve(t, &Server{Handler: h(&got, &gotBody), ErrorLog: log.New(&logs, "", 0)})
	theirs := testkit.Serve(t, h(&want, &wantBody))
	for _, raw := range []string{
		"GET /p/a%20b?x=%41&y HTTP/1.1\r\nHost: Example.COM:8080\r\nuser-agent: t\r\nAccept: a\r\nAccept: b\r\nPragma: no-cache\r\nConnection: close\r\n\r\n",
		"POST http://h.example/x HTTP/1.1\r\nHost: other\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nz\r\n0\r\n\r\n",
		"DELETE /x HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\nHost: h\r\n\r\n",
	} {
		exchange(t, ours, raw, "X")
		exchange(t, theirs, raw, "X")
		for _, f := range []struct {
			name      string
			got, want any
		}{
			{"Method", got.Method, want.Method},
			{"URL", *got.URL, *want.URL},
			{"Proto", got.Proto, want.Proto},
			{"ProtoMinor", got.ProtoMinor, want.ProtoMinor},
			{"Header", fmt.Sprint(got.Header), fmt.Sprint(want.Header)},
			{"Host", got.Host, want.Host},
			{"RequestURI", got.RequestURI, want.RequestURI},
			{"ContentLength", got.ContentLength, want.ContentLength},
			{"TransferEncoding", fmt.Sprint(got.TransferEncoding), fmt.Sprint(want.TransferEncoding)},
			{"Close", got.Close, want.Close},
			{"body", gotBody, wantBody},
			{"NoBody", got.Body == http.NoBody, want.Body == http.NoBody},
			{"LocalAddr", got.Context().Value(http.LocalAddrContextKey) != nil, true},
			{"RemoteAddr", strings.HasPrefix(got.RemoteAddr, "127.0.0.1:"), true},
		} {
			if fmt.Sprint(f.got) != fmt.Sprint(f.want) {
				t.Errorf("%q: %s = %v, net/http has %v", raw, f.name, f.got, f.want)
			}
		}
		if got.Context().Err() == nil {
			t.Errorf("%q: context not cancelled after the handler returned", raw)
		}
	}
}

func TestServerHTTP10(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
		}
		w.Write([]byte("body"))
	})
	resps, bodies, closed := exchange(t, addr, "GET / HTTP/1.0\r\n\r\n", "GET")
	if !closed || bodies[0] != "body" || resps[0].Header.Get("Connection") != "" {
		t.Errorf("1.0 without keep-alive: closed %v, body %q, header %v", closed, bodies[0], resps[0].Header)
	}
	resps, bodies, closed = exchange(t, addr, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", "GET")
	if closed || bodies[1] != "body" || resps[0].Header.Get("Connection") != "keep-alive" || resps[0].ContentLength != 4 {
		t.Errorf("1.0 keep-alive: closed %v, body %q, header %v", closed, bodies[1], resps[0].Header)
	}
	// A streamed response to 1.0 is close-delimited, never chunked.
	resps, bodies, closed = exchange(t, addr, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET")
	if !closed || bodies[0] != "abody" || resps[0].TransferEncoding != nil || resps[0].ContentLength != -1 {
		t.Errorf("1.0 streamed: closed %v, body %q, %+v", closed, bodies[0], resps[0])
	}
}

func TestServerNoBodyResponses(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(304)
			if _, err := w.Write([]byte("x")); err != http.ErrBodyNotAllowed {
				t.Errorf("Write on 304 = %v", err)
			}
		default:
			w.Write([]byte("<html>hello</html>"))
		}
	})
	raw := "HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, raw)
	all := readUntil(t, c, "<html>hello</html>")
	heads := strings.Split(all, "\r\n\r\n")
	if len(heads) != 5 || !strings.Contains(heads[0], "Content-Length: 18") || !strings.Contains(heads[0], "Content-Type: text/html; charset=utf-8") ||
		strings.Contains(heads[1], "Content-Length") || strings.Contains(heads[1], "Transfer-Encoding") ||
		!strings.HasPrefix(heads[1], "HTTP/1.1 204 No Content\r\n") || !strings.HasPrefix(heads[2], "HTTP/1.1 304 Not Modified\r\n") ||
		strings.Contains(heads[2], "Content-Type") || !strings.Contains(heads[2], `Etag: "x"`) || heads[4] != "<html>hello</html>" {
		t.Errorf("responses:\n%s", all)
	}
}

// readUntil reads c until what it read ends with suffix.
func readUntil(t *testing.T, c net.Conn, suffix string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte(suffix)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("%v after %q", err, got)
		}
	}
	return string(got)
}

func TestServerResponseFraming(t *testing.T) {
	big := strings.Repeat("x", 3*bufSize)
	addr, logs := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(big))
		case "/cl":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write([]byte(big))
		case "/short":
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("abc"))
		case "/twice":
			w.WriteHeader(201)
			w.WriteHeader(202)
		case "/nosniff":
			w.Header()["Content-Type"] = nil
			w.Write([]byte("<html>"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/103":
			w.Header().Set("Link", "</s.css>")
			w.WriteHeader(103)
			w.Write([]byte("after"))
		}
	})
	resps, bodies, closed := exchange(t, addr, "GET /big HTTP/1.1\r\nHost: h\r\n\r\nGET /cl HTTP/1.1\r\nHost: h\r\n\r\nGET /twice HTTP/1.1\r\nHost: h\r\n\r\nGET /nosniff HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "GET", "GET", "GET")
	if closed || bodies[0] != big || fmt.Sprint(resps[0].TransferEncoding) != "[chunked]" ||
		bodies[1] != big || resps[1].ContentLength != int64(len(big)) || resps[1].TransferEncoding != nil ||
		resps[2].StatusCode != 201 || !strings.Contains(logs.String(), "superfluous") ||
		resps[3].Header["Content-Type"] != nil || bodies[3] != "<html>" {
		t.Errorf("closed %v; %+v %+v %+v %+v; logs %s", closed, resps[0], resps[1], resps[2], resps[3], logs)
	}
	_, bodies, closed = exchange(t, addr, "GET /close HTTP/1.1\r\nHost: h\r\n\r\n", "GET")
	if !closed || bodies[0] != "bye" {
		t.Errorf("Connection: close from the handler: closed %v, body %q", closed, bodies[0])
	}
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET /short HTTP/1.1\r\nHost: h\r\n\r\n")
	if got, _ := io.ReadAll(c); !bytes.HasSuffix(got, []byte("\r\n\r\nabc")) || !bytes.Contains(got, []byte("Content-Length: 10\r\n")) {
		t.Errorf("short response: %q, want the connection closed after abc", got)
	}
	c = testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET /103 HTTP/1.1\r\nHost: h\r\n\r\n")
	got := readUntil(t, c, "after")
	if !strings.HasPrefix(got, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\n") {
		t.Errorf("103: %q", got)
	}
}

func TestServerRequestBodies(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/read":
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %v", len(b), err)
		case "/close":
			r.Body.Close()
			_, err := r.Body.Read(make([]byte, 1))
			fmt.Fprint(w, err)
		default:
			w.Write([]byte("unread"))
		}
	})
	// 100-continue: the interim response comes on the first Read only.
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
	readUntil(t, c, "HTTP/1.1 100 Continue\r\n\r\n")
	io.WriteString(c, "abc")
	readUntil(t, c, "3 <nil>")
	// Not read: not asked for, so the connection closes.
	_, bodies, closed := exchange(t, addr, "POST /no HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", "POST")
	if !closed || bodies[0] != "unread" {
		t.Errorf("unasked 100-continue body: closed %v", closed)
	}
	// Unread bodies up to 256 KiB are drained; the next request follows.
	small := strings.Repeat("b", 1000)
	_, bodies, closed = exchange(t, addr, "POST /no HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n"+small+
		"POST /no HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n"+small+"\r\n0\r\n\r\n"+
		"POST /close HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n"+small+
		"GET /read HTTP/1.1\r\nHost: h\r\n\r\n", "POST", "POST", "POST", "GET")
	if closed || bodies[2] != "http: invalid Read on closed Body" || bodies[3] != "0 <nil>" {
		t.Errorf("drained: closed %v, bodies %q", closed, bodies)
	}
	// A larger unread body closes the connection, with Connection: close.
	c2 := testkit.Dial(t, addr, 5*time.Second)
	defer c2.Close()
	fmt.Fprintf(c2, "POST /no HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", 1<<20)
	go c2.Write(make([]byte, 1<<20))
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || !resp.Close {
		t.Errorf("large unread body: %v %+v", err, resp)
	}
	// A truncated chunked body or bad chunk ends the connection.
	_, bodies, closed = exchange(t, addr, "POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "POST")
	if !closed || !strings.Contains(bodies[0], "0 ") || strings.HasSuffix(bodies[0], "<nil>") {
		t.Errorf("bad chunk: closed %v, body %q", closed, bodies[0])
	}
	// Trailer fields are read and discarded (RFC 9112 §7.1.2); a
	// malformed one ends the connection.
	_, bodies, closed = exchange(t, addr, "POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n", "POST")
	if closed || bodies[0] != "1 <nil>" {
		t.Errorf("trailer: closed %v, body %q", closed, bodies[0])
	}
	for _, bad := range []string{"X-Trailer 1\r\n\r\n", "X-Trailer: 1\n\r\n", "X-T\rrailer: 1\r\n\r\n", "X-Trailer: " + strings.Repeat("a", maxTrailer) + "\r\n\r\n"} {
		_, bodies, closed = exchange(t, addr, "POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"+bad, "POST")
		if !closed || !strings.Contains(bodies[0], "trailer") {
			t.Errorf("trailer %.20q: closed %v, body %q", bad, closed, bodies[0])
		}
	}
}

func TestServerFlushStreaming(t *testing.T) {
	next := make(chan struct{})
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
			<-next
		}
	})
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	got := readUntil(t, c, "part0;\r\n")
	if !strings.Contains(got, "Transfer-Encoding: chunked\r\n") {
		t.Errorf("head: %q", got)
	}
	next <- struct{}{}
	readUntil(t, c, "6\r\npart1;\r\n")
	next <- struct{}{}
	next <- struct{}{}
	readUntil(t, c, "6\r\npart2;\r\n0\r\n\r\n")
}

// The gateway aborts a broken response with a past write deadline and a
// flush: the response must not end cleanly.
func TestServerWriteDeadlineAbort(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		w.Write([]byte("partial"))
		rc.Flush()
		if r.URL.Path == "/cl" {
			return
		}
		if err := rc.SetWriteDeadline(time.Unix(1, 0)); err != nil {
			t.Error(err)
		}
		if r.URL.Path == "/flush" {
			w.Write([]byte("more"))
			if rc.Flush() == nil {
				t.Error("Flush after a past write deadline succeeded")
			}
		}
		w.Write([]byte("more"))
	})
	for _, path := range []string{"/flush", "/noflush"} {
		c := testkit.Dial(t, addr, 5*time.Second)
		defer c.Close()
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		got, err := io.ReadAll(c)
		if err != nil || bytes.Contains(got, []byte("0\r\n\r\n")) || !bytes.HasSuffix(got, []byte("partial\r\n")) {
			t.Errorf("%s: %q, %v: want the connection closed after the first chunk", path, got, err)
		}
	}
}

func TestServerHijack(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		if _, err := w.Write([]byte("x")); err != http.ErrHijacked {
			t.Errorf("Write after Hijack = %v", err)
		}
		if brw.Reader.Buffered() != len("early") {
			t.Errorf("Buffered = %d", brw.Reader.Buffered())
		}
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo:" + line)
		brw.Flush()
	})
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nearly")
	readUntil(t, c, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
	io.WriteString(c, " more\n")
	readUntil(t, c, "echo:early more\n")
}

func TestServerPanics(t *testing.T) {
	addr, logs := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("buffered"))
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	})
	for _, path := range []string{"/abort", "/boom"} {
		c := testkit.Dial(t, addr, 5*time.Second)
		defer c.Close()
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		if got, err := io.ReadAll(c); len(got) != 0 || err != nil {
			t.Errorf("%s: %q, %v: want the connection closed with nothing", path, got, err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "the panic logged", func() bool {
		return strings.Contains(logs.String(), "panic serving 127.0.0.1:")
	})
	if l := logs.String(); strings.Count(l, "panic serving") != 1 || !strings.Contains(l, "boom") {
		t.Errorf("logs: %s", l)
	}
}

func TestServerRefuses(t *testing.T) {
	var logs testkit.SyncBuffer
	addr := serve(t, &Server{MaxHeaderBytes: 256, ErrorLog: log.New(&logs, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("served"))
		})})
	long := strings.Repeat("a", 300)
	for _, tt := range []struct {
		raw    string
		status int
	}{
		{"GET / HTTP/1.1\r\nHost: h\r\nX: " + long + "\r\n\r\n", 431},
		{"GET /" + long + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},
		{"GET / HTTP/1.1\nHost: h\n\n", 400},
		{"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"GET / HTTP/1.1\r\nHost: h\r\n X: folded\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n\r\n", 400},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417},
		{"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501},
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", 400},
		{"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	} {
		resps, bodies, closed := exchange(t, addr, tt.raw, "GET")
		if resps[0].StatusCode != tt.status || !closed || !resps[0].Close || !strings.HasPrefix(bodies[0], fmt.Sprint(tt.status)) {
			t.Errorf("%q: %d %q, closed %v; want %d and closed", tt.raw, resps[0].StatusCode, bodies[0], closed, tt.status)
		}
	}
}

func TestServerHangUpCancelsContext(t *testing.T) {
	cancelled := make(chan time.Duration, 2)
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		start := time.Now()
		select {
		case <-r.Context().Done():
			cancelled <- time.Since(start)
		case <-time.After(10 * time.Second):
		}
	})
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab",
	} {
		c := testkit.Dial(t, addr, 5*time.Second)
		io.WriteString(c, raw)
		time.Sleep(50 * time.Millisecond) // the handler waits
		c.Close()
		if d := testkit.Receive(t, cancelled, 5*time.Second, "the context cancelled"); d > 2*time.Second {
			t.Errorf("%q: cancelled %v after the hang-up", raw, d)
		}
	}
}

// A pipelined request is no hang-up: the first handler's context stays
// live, and both are answered.
func TestServerPipelinedIsNoHangUp(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			w.Write([]byte("cancelled"))
		case <-time.After(50 * time.Millisecond):
			w.Write([]byte("ok"))
		}
	})
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(20 * time.Millisecond) // the first handler is being watched
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	got := readUntil(t, c, "\r\n\r\nok")
	if strings.Count(got, "\r\n\r\nok") < 2 {
		got += readUntil(t, c, "\r\n\r\nok")
	}
	if strings.Contains(got, "cancelled") {
		t.Errorf("got %q", got)
	}
}

func TestServerTimeouts(t *testing.T) {
	addr := serve(t, &Server{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	// Idle: a kept-alive connection closes after IdleTimeout.
	c := testkit.Dial(t, addr, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readUntil(t, c, "GMT\r\n\r\n")
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("idle read: %d %v", n, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("closed after %v idle, want IdleTimeout", d)
	}
	// Header: a head that does not complete closes after ReadHeaderTimeout.
	c2 := testkit.Dial(t, addr, 5*time.Second)
	defer c2.Close()
	io.WriteString(c2, "GET / HTTP/1.1\r\n")
	start = time.Now()
	if got, err := io.ReadAll(c2); len(got) != 0 || err != nil {
		t.Errorf("slow head: %q %v", got, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v, want ReadHeaderTimeout", d)
	}
}

func TestServerShutdownAndConnState(t *testing.T) {
	var mu sync.Mutex
	states := map[net.Conn][]http.ConnState{}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				entered <- struct{}{}
				<-release
			}
			w.Write([]byte("done"))
		}),
		ConnState: func(c net.Conn, st http.ConnState) {
			mu.Lock()
			states[c] = append(states[c], st)
			mu.Unlock()
		},
	}
	addr := serve(t, s)
	idle := testkit.Dial(t, addr, 5*time.Second)
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readUntil(t, idle, "done")
	testkit.Eventually(t, 5*time.Second, "the connection idle", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, sts := range states {
			return sts[len(sts)-1] == http.StateIdle
		}
		return false
	})
	active := testkit.Dial(t, addr, 5*time.Second)
	defer active.Close()
	io.WriteString(active, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	testkit.Receive(t, entered, 5*time.Second, "the slow handler")

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The idle connection closes; the active one is waited for.
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("idle conn: %d %v", n, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request active", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the listener still accepts")
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(active), nil)
	if err != nil || !resp.Close {
		t.Errorf("active response during shutdown: %v %+v", err, resp)
	}
	if err := testkit.Receive(t, shut, 5*time.Second, "Shutdown"); err != nil {
		t.Error(err)
	}
	testkit.Eventually(t, 5*time.Second, "both connections closed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, sts := range states {
			if sts[len(sts)-1] == http.StateClosed {
				n++
			}
		}
		return n == 2
	})
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, sts := range states {
		got = append(got, fmt.Sprint(sts))
	}
	want1, want2 := "[new active idle closed]", "[new active closed]"
	if len(got) != 2 || !(got[0] == want1 && got[1] == want2 || got[0] == want2 && got[1] == want1) {
		t.Errorf("states %v, want %s and %s", got, want1, want2)
	}
}

func TestServerNetHTTPClient(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Len", fmt.Sprint(len(b)))
			w.Write(bytes.Repeat([]byte("r"), len(b)))
		}),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		},
	}
	addr := serve(t, s)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, n := range []int{0, 10, 5000, 100000} {
		resp, err := client.Post("http://"+addr+"/", "application/octet-stream", bytes.NewReader(make([]byte, n)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) != n || resp.Header.Get("X-Len") != fmt.Sprint(n) {
			t.Errorf("%d: got %d bytes, %v", n, len(b), resp.Header)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("%d connections, want 1 kept alive", conns)
	}
}

// BenchmarkServer measures one keep-alive GET on a loopback connection,
// the handler writing 13 bytes, through Server and through net/http's
// http.Server. allocs/op counts both ends; the client allocates nothing.
func BenchmarkServer(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Hello, World!"))
	})
	quiet := log.New(io.Discard, "", 0)
	b.Run("h1", func(b *testing.B) {
		benchServer(b, serve(b, &Server{Handler: h, ErrorLog: quiet}))
	})
	b.Run("net_http", func(b *testing.B) {
		benchServer(b, testkit.Serve(b, h))
	})
}

func benchServer(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nHello, World!")) {
			m, err := c.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += m
		}
	}
}

// cpuTime is the process's user and system CPU time so far, in ns: the
// benchmarks report it per request beside the wall time, both ends of
// the connection included.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkIdleConns reports the memory an idle keep-alive connection
// costs the server (heap and goroutine stacks, B/conn) after one request,
// through Server and through net/http; the cost of the sockets themselves
// (both ends, measured with a listener that only accepts) is taken off.
func BenchmarkIdleConns(b *testing.B) {
	const n = 1000
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Hello, World!"))
	})
	baseline := func(b *testing.B) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var held []net.Conn
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
		b.Cleanup(func() {
			ln.Close()
			for _, c := range held {
				c.Close()
			}
		})
		return ln.Addr().String()
	}
	measure := func(b *testing.B, addr string, request bool) float64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, n)
		buf := make([]byte, 4096)
		for i := range conns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns[i] = c
			if request {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
				for m := 0; !bytes.HasSuffix(buf[:m], []byte("Hello, World!")); {
					k, err := c.Read(buf[m:])
					if err != nil {
						b.Fatal(err)
					}
					m += k
				}
			}
		}
		time.Sleep(100 * time.Millisecond) // the accept loop catches up
		runtime.GC()
		runtime.ReadMemStats(&after)
		for _, c := range conns {
			c.Close()
		}
		return float64(int64(after.HeapAlloc+after.StackInuse)-int64(before.HeapAlloc+before.StackInuse)) / n
	}
	for _, tt := range []struct {
		name string
		addr func(*testing.B) string
	}{
		{"h1", func(b *testing.B) string { return serve(b, &Server{Handler: h}) }},
		{"net_http", func(b *testing.B) string { return testkit.Serve(b, h) }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var per float64
			for b.Loop() {
				base := measure(b, baseline(b), false)
				per = measure(b, tt.addr(b), true) - base
			}
			b.ReportMetric(per, "B/conn")
		})
	}
}

func TestServerTrailers(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/declared" {
			w.Header().Set("Trailer", "X-Sum")
			w.Write([]byte("body"))
			w.Header().Set("X-Sum", "abc")
			return
		}
		w.Write([]byte("body"))
		w.(http.Flusher).Flush()
		w.Header().Set(http.TrailerPrefix+"X-Late", "1")
	})
	resps, bodies, closed := exchange(t, addr, "GET /declared HTTP/1.1\r\nHost: h\r\n\r\nGET /prefix HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "GET")
	if closed || bodies[0] != "body" || resps[0].Trailer.Get("X-Sum") != "abc" ||
		bodies[1] != "body" || resps[1].Trailer.Get("X-Late") != "1" {
		t.Errorf("closed %v, bodies %q, trailers %v %v", closed, bodies, resps[0].Trailer, resps[1].Trailer)
	}
}

// wrapListener hands out connections that are not a syscall.Conn, as a
// wrapper without a SyscallConn passthrough would.
type wrapListener struct{ net.Listener }

type wrappedConn struct{ net.Conn }

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c}, nil
}

func TestServerWrappedConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cancelled := make(chan bool, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
				cancelled <- true
			case <-time.After(100 * time.Millisecond):
				cancelled <- false
			}
		}
		fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	}), IdleTimeout: time.Second}
	go s.Serve(wrapListener{ln})
	t.Cleanup(func() { s.Close() })
	_, bodies, closed := exchange(t, ln.Addr().String(),
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"+
			"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nyo", "GET", "POST", "POST")
	if closed || fmt.Sprint(bodies) != "[/a  /b hi /c yo]" {
		t.Errorf("closed %v, bodies %q", closed, bodies)
	}
	// The one-byte watch: a pipelined request is no hang-up, and its
	// byte is not lost; a closed connection cancels.
	c := testkit.Dial(t, ln.Addr().String(), 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "GET /d HTTP/1.1\r\nHost: h\r\n\r\n")
	if got := readUntil(t, c, "/d "); !strings.Contains(got, "/slow ") {
		t.Errorf("got %q", got)
	}
	if testkit.Receive(t, cancelled, 5*time.Second, "the slow handler") {
		t.Error("a pipelined request cancelled the context")
	}
	c2 := testkit.Dial(t, ln.Addr().String(), 5*time.Second)
	io.WriteString(c2, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	c2.Close()
	if !testkit.Receive(t, cancelled, 5*time.Second, "the slow handler") {
		t.Error("the client's hang-up did not cancel the context")
	}
}

// A head that arrives a byte at a time is parsed when its end arrives,
// and a bare LF is refused as soon as it ends a head.
func TestServerTrickledHead(t *testing.T) {
	addr, _ := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok " + r.Header.Get("X-A")))
	})
	for _, tt := range []struct{ head, want string }{
		{"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n", "ok 1"},
		{"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\n\n", "400 Bad Request: line not ended by CRLF"},
	} {
		c := testkit.Dial(t, addr, 5*time.Second)
		defer c.Close()
		for i := range len(tt.head) {
			if _, err := c.Write([]byte{tt.head[i]}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		readUntil(t, c, tt.want)
	}
}

// Many clients at once, bodies of every framing both ways, some handlers
// slow enough to be watched: every response intact.
func TestServerConcurrent(t *testing.T) {
	addr, logs := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		if r.URL.Query().Get("slow") != "" {
			time.Sleep(3 * time.Millisecond)
		}
		w.Write(b)
		if len(b)%2 == 0 {
			w.(http.Flusher).Flush()
		}
		w.Write(b)
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				n := (g*977 + i*131) % 20000
				body := bytes.Repeat([]byte{byte('a' + i%26)}, n)
				var rd io.Reader = bytes.NewReader(body)
				if i%3 == 0 {
					rd = io.MultiReader(rd) // unknown length: chunked
				}
				url := "http://" + addr + "/"
				if i%5 == 0 {
					url += "?slow=1"
				}
				resp, err := client.Post(url, "application/octet-stream", rd)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !bytes.Equal(got, append(body, body...)) {
					t.Errorf("request %d/%d: %d bytes back, %v", g, i, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if logs.String() != "" {
		t.Errorf("logs: %s", logs)
	}
}

// Close cancels the context of a handler that is still running, as
// net/http's does when its background read fails.
func TestServerCloseCancelsContext(t *testing.T) {
	entered, cancelled := make(chan struct{}), make(chan bool, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-r.Context().Done():
			cancelled <- true
		case <-time.After(5 * time.Second):
			cancelled <- false
		}
	})}
	go s.Serve(ln)
	c := testkit.Dial(t, ln.Addr().String(), 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	time.Sleep(20 * time.Millisecond) // the handler is being watched
	s.Close()
	if !testkit.Receive(t, cancelled, 10*time.Second, "the handler") {
		t.Error("Close left the handler's context live")
	}
}

// The deadline left from waiting for a head is lifted before the handler
// reads the connection (a body, a hijacked connection), also when the
// handler starts reading after it would have fired; and a later head that
// trickles in on a kept-alive connection still gets ReadHeaderTimeout, not
// IdleTimeout.
func TestServerDeadlinesAcrossRequests(t *testing.T) {
	const rht = 200 * time.Millisecond
	addr := serve(t, &Server{ReadHeaderTimeout: rht, IdleTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * rht) // past the head's deadline
			switch r.URL.Path {
			case "/body":
				b, err := io.ReadAll(r.Body)
				fmt.Fprintf(w, "body=%q err=%v", b, err)
			case "/hijack":
				nc, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer nc.Close()
				line, err := brw.ReadString('\n')
				fmt.Fprintf(nc, "line=%q err=%v\n", line, err)
			}
		})})
	c := testkit.Dial(t, addr, 10*time.Second)
	defer c.Close()
	for i := range 2 { // the first request, then a kept-alive one
		io.WriteString(c, "POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
		time.Sleep(rht / 4)
		io.WriteString(c, "hello")
		if got := readUntil(t, c, "err=<nil>"); !strings.Contains(got, `body="hello"`) {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	// A first request: the deadline left is ReadHeaderTimeout's, which
	// passes while the handler sleeps.
	hc := testkit.Dial(t, addr, 10*time.Second)
	defer hc.Close()
	io.WriteString(hc, "GET /hijack HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(rht / 4)
	io.WriteString(hc, "after\n")
	if got := readUntil(t, hc, "\n"); got != "line=\"after\\n\" err=<nil>\n" {
		t.Fatalf("hijacked: %q", got)
	}

	c2 := testkit.Dial(t, addr, 10*time.Second)
	defer c2.Close()
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readUntil(t, c2, "\r\n\r\n")
	io.WriteString(c2, "GET / HTTP/1.1\r\n") // a head that never ends
	start := time.Now()
	if got, err := io.ReadAll(c2); len(got) != 0 || err != nil {
		t.Errorf("slow head: %q %v", got, err)
	}
	if d := time.Since(start); d > 5*time.Second/2 {
		t.Errorf("a kept-alive connection's unfinished head closed after %v: IdleTimeout, not ReadHeaderTimeout", d)
	}
}

// BenchmarkServerWatched measures a request whose handler outlives the
// hang-up watch's delay (it sleeps 3 ms), on 16 keep-alive connections at
// once: cpu-ns/op is what the watch adds to a slow request, beside the
// sleep's own timer.
func BenchmarkServerWatched(b *testing.B) {
	addr := serve(b, &Server{ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(3 * time.Millisecond)
			w.Write([]byte("Hello, World!"))
		})})
	b.SetParallelism(8) // 16 connections on 2 cores
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		req := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		buf := make([]byte, 4096)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			n := 0
			for !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nHello, World!")) {
				m, err := c.Read(buf[n:])
				if err != nil {
					b.Error(err)
					return
				}
				n += m
			}
		}
	})
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// ReadTrailer (the h1 server's and fnhost's Runtime API's) reads a chunked
// body's trailer section to its empty line and refuses malformed ones.
func TestReadTrailer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		rest string
	}{
		{"\r\nGET", true, "GET"},
		{"X-Sum: 1\r\nX-B:\r\n\r\nnext", true, "next"},
		{": no name\r\n\r\n", false, ""},
		{"X A: 1\r\n\r\n", false, ""},
		{"X-A 1\r\n\r\n", false, ""},
		{"X-A: 1\n\r\n", false, ""},
		{"X-A: a\rb\r\n\r\n", false, ""},
		{"X-A: 1\r\n", false, ""},
		{strings.Repeat("X-A: 0123456789abcdef\r\n", 1000) + "\r\n", false, ""},
	} {
		br := bufio.NewReader(strings.NewReader(tc.in))
		err := ReadTrailer(br)
		if (err == nil) != tc.ok {
			t.Errorf("ReadTrailer(%.40q) = %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if rest, _ := io.ReadAll(br); tc.ok && string(rest) != tc.rest {
			t.Errorf("ReadTrailer(%.40q) left %q, want %q", tc.in, rest, tc.rest)
		}
	}
}
