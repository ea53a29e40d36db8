package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/testkit"
)

// FuzzServer feeds arbitrary bytes to a Server on a loopback connection
// and holds it to: no panic (none logged either), and every byte it writes
// back is a sequence of well-formed HTTP/1.1 responses, one per request
// its handler served plus at most one refusal, nothing after.
func FuzzServer(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		wrkGET + wrkGET + "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + wrkGET,
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + wrkGET,
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n0123456789abcdefghij" + wrkGET,
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
		"GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"GET /big HTTP/1.1\r\nHost: h\r\n\r\nGET /panic HTTP/1.1\r\nHost: h\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	} {
		f.Add([]byte(s))
	}
	var mu sync.Mutex
	methods := map[string][]string{} // by the client's address
	var logs testkit.SyncBuffer
	addr := serve(f, &Server{
		MaxHeaderBytes: 4096,
		ErrorLog:       log.New(&logs, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/panic" {
				panic(http.ErrAbortHandler) // no response: the connection closes
			}
			mu.Lock()
			methods[r.RemoteAddr] = append(methods[r.RemoteAddr], r.Method)
			mu.Unlock()
			io.CopyN(io.Discard, r.Body, 10)
			switch r.URL.Path {
			case "/big":
				w.Write(bytes.Repeat([]byte("b"), 3*bufSize))
			default:
				w.Write([]byte("hello"))
			}
		}),
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := testkit.Dial(t, addr, 5*time.Second)
		defer c.Close()
		defer func() { // client ports get reused
			mu.Lock()
			delete(methods, c.LocalAddr().String())
			mu.Unlock()
		}()
		c.Write(data) // the server may close before reading it all
		c.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(c)
		var resps []*http.Response
		for i := 0; ; i++ {
			if _, err := br.Peek(1); err != nil {
				if !errors.Is(err, io.EOF) && !isReset(err) {
					t.Fatalf("after %d responses: %v", len(resps), err)
				}
				break
			}
			// The handler recorded the method before it answered.
			mu.Lock()
			served := methods[c.LocalAddr().String()]
			mu.Unlock()
			var req *http.Request
			if finals := finalResponses(resps); finals < len(served) {
				req = &http.Request{Method: served[finals]}
			}
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("response %d to %q: %v", i+1, data, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil && !(isReset(err) && resp.ContentLength == -1) {
				t.Fatalf("response %d body to %q: %v", i+1, data, err)
			}
			if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 || resp.StatusCode < 100 || resp.StatusCode > 599 {
				t.Fatalf("response %d to %q: %s %d", i+1, data, resp.Proto, resp.StatusCode)
			}
			if resp.StatusCode >= 400 && !resp.Close {
				t.Fatalf("refusal %d to %q kept the connection: %q", resp.StatusCode, data, body)
			}
			resps = append(resps, resp)
		}
		mu.Lock()
		served := len(methods[c.LocalAddr().String()])
		mu.Unlock()
		if finals := finalResponses(resps); finals < served || finals > served+1 {
			t.Fatalf("%d responses to %d requests served: %q", finals, served, data)
		}
		if strings.Contains(logs.String(), "panic") && !strings.Contains(logs.String(), "ErrAbortHandler") {
			t.Fatalf("server panicked: %s", logs.String())
		}
	})
}

func finalResponses(resps []*http.Response) int {
	n := 0
	for _, r := range resps {
		if r.StatusCode >= 200 {
			n++
		}
	}
	return n
}

// isReset reports a connection reset: a server closing with input unread
// may reset, which loses no byte it wrote before the client read them all
// only if it lingers; the reads here come after it wrote everything.
func isReset(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}
