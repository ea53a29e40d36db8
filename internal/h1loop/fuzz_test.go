//go:build linux

package h1loop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"

	"github.com/turnout/turnout/internal/testkit"
)

// FuzzLoopServer feeds arbitrary bytes to the loops (in front of an
// origin, with /fallback/… and whatever they do not serve handed to
// h1.Server) on a loopback connection, and holds them to h1's FuzzServer
// rules: no panic (none logged either), and every byte written back is a
// sequence of well-formed HTTP/1.1 answers, a refusal closing the
// connection.
func FuzzLoopServer(f *testing.F) {
	get := "GET /len/3 HTTP/1.1\r\nHost: h\r\n\r\n"
	for _, s := range []string{
		get,
		get + get + "HEAD /len/4 HTTP/1.1\r\nHost: h\r\n\r\n" + get,
		get + "GET /chunked HTTP/1.1\r\nHost: h\r\n\r\nGET /close HTTP/1.1\r\nHost: h\r\n\r\n" + get,
		"GET /fallback/x HTTP/1.1\r\nHost: h\r\n\r\n" + get,
		"POST /len/2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get,
		"POST /len/2 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get,
		"GET /len/2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
		"GET /len/2 HTTP/1.0\r\n\r\n",
		"GET /nocontent HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
		"GET /len/2 HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n",
		"GET /len/2 HTTP/1.1\r\nHost: h\r\nHost: h2\r\n\r\n",
		"GET /len/2 HTTP/1.1\r\n Host: h\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET /len/100000 HTTP/1.1\r\nHost: h\r\n\r\nGET /panic HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	var logs testkit.SyncBuffer
	o := testOrigin(f)
	r := newRig(f, o.URL, func(_ *config.Origin, s *Server) {
		s.MaxHeaderBytes = 4096
		s.Logf = func(format string, args ...any) { fmt.Fprintf(&logs, format+"\n", args...) }
		s.Fallback.MaxHeaderBytes = 4096
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := testkit.Dial(t, r.addr, 10*time.Second)
		defer c.Close()
		c.Write(data) // the server may close before reading it all
		c.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(c)
		// The methods of the requests sent, as far as net/http reads
		// them: an answer to a HEAD has no body to read.
		var methods []string
		for rr := bufio.NewReader(bytes.NewReader(data)); ; {
			// Empty lines before a request are skipped, as servers do
			// (RFC 9112 §2.2); net/http's reader does not.
			for b, err := rr.Peek(1); err == nil && (b[0] == '\r' || b[0] == '\n'); b, err = rr.Peek(1) {
				rr.Discard(1)
			}
			req, err := http.ReadRequest(rr)
			if err != nil {
				break
			}
			methods = append(methods, req.Method)
			io.Copy(io.Discard, req.Body)
		}
		for i := 0; ; i++ {
			if _, err := br.Peek(1); err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "connection reset") {
					t.Fatalf("after %d answers: %v", i, err)
				}
				break
			}
			var req *http.Request
			if i < len(methods) {
				req = &http.Request{Method: methods[i]}
			}
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("answer %d to %q: %v", i+1, data, err)
			}
			if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 || resp.StatusCode < 100 || resp.StatusCode > 599 {
				t.Fatalf("answer %d to %q: %s %d", i+1, data, resp.Proto, resp.StatusCode)
			}
			{
				// A body may be cut short: the client closed its side,
				// and an answer still going after the hang-up grace is
				// abandoned.
				if _, err := io.ReadAll(resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "connection reset") {
					t.Fatalf("answer %d body to %q: %v", i+1, data, err)
				}
			}
			resp.Body.Close()
			if resp.StatusCode >= 400 && resp.StatusCode != 404 && !resp.Close {
				t.Fatalf("refusal %d to %q kept the connection", resp.StatusCode, data)
			}
			if resp.Close {
				break
			}
			if i > 64 {
				t.Fatalf("more answers than requests to %q", data)
			}
		}
		if l := logs.String(); strings.Contains(l, "panic") && !strings.Contains(l, "a bug") {
			t.Fatalf("a loop panicked: %s", l)
		}
	})
}
