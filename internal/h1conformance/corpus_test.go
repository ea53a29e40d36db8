package h1conformance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCaseNames checks every case is named by a section of RFC 9112 or
// RFC 9110, once.
func TestCaseNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range cases {
		if !strings.HasPrefix(c.name, "9112-") && !strings.HasPrefix(c.name, "9110-") || !strings.Contains(c.name, "/") {
			t.Errorf("case %q is not named RFC-section/what", c.name)
		}
		if seen[c.name] {
			t.Errorf("two cases named %q", c.name)
		}
		seen[c.name] = true
	}
}

// recorder is a testing.TB for running one case where its failure is the
// expected outcome: it records failures instead of failing the test.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Cleanup(f func())    { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)                 { r.Fatalf("%s", fmt.Sprint(args...)) }

// runCase runs the case named name against s and returns its failures.
func runCase(t *testing.T, name string, s *server) []string {
	t.Helper()
	for _, c := range cases {
		if c.name != name {
			continue
		}
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.run(r, s)
		}()
		<-done
		for _, f := range r.cleanups {
			f()
		}
		return r.failures
	}
	t.Fatalf("no case named %q", name)
	return nil
}

// rawServer serves HTTP/1.1 on loopback, reading requests with net/http's
// parser and writing whatever answer returns, byte for byte: a stand-in for
// a server with a framing bug.
func rawServer(t *testing.T, answer func(r *http.Request) string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(nc)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, r.Body)
					if _, err := io.WriteString(nc, answer(r)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// echoAnswer is a correct answer from /echo to a bodiless r.
func echoAnswer(r *http.Request) string {
	return "HTTP/1.1 200 OK\r\nX-Echo-Method: " + r.Method + "\r\nX-Echo-Target: " + r.RequestURI +
		"\r\nX-Echo-Body-Length: 0\r\nContent-Length: 0\r\n\r\n"
}

// TestCorpusCatchesFramingBugs runs cases against servers with one
// framing bug each: each case must fail.
func TestCorpusCatchesFramingBugs(t *testing.T) {
	for _, tc := range []struct {
		bug, name string
		answer    func(r *http.Request) string
	}{
		{"a body in the answer to HEAD", "9110-9.3.2/head-length", func(r *http.Request) string {
			if r.Method == http.MethodHead {
				return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100)
			}
			return echoAnswer(r)
		}},
		{"a body in a 204", "9110-15.3.5/no-content", func(r *http.Request) string {
			if r.URL.Path == "/status/204" {
				return "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
			}
			return echoAnswer(r)
		}},
		{"chunked to an HTTP/1.0 client", "9112-6.1/http10-not-chunked", func(r *http.Request) string {
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(streamBody(5)), streamBody(5))
		}},
		{"a bare LF ending the status line", "9112-6.2/content-length", func(r *http.Request) string {
			return strings.Replace(echoAnswer(r), "\r\n", "\n", 1)
		}},
		{"a Content-Length shorter than the body", "9112-9.3.2/pipelined", func(r *http.Request) string {
			return strings.Replace(echoAnswer(r), "Content-Length: 0\r\n\r\n", "Content-Length: 0\r\n\r\nextra", 1)
		}},
		{"an aborted response ended with a last chunk", "9112-8/aborted-response", func(r *http.Request) string {
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\npartial\n\r\n0\r\n\r\n"
		}},
		{"no Date", "9110-6.6.1/date", echoAnswer},
		{"keeping the connection after Connection: close", "9112-9.6/connection-close", echoAnswer},
	} {
		t.Run(tc.bug, func(t *testing.T) {
			s := &server{addr: rawServer(t, tc.answer), opts: Options{}.withDefaults()}
			if f := runCase(t, tc.name, s); len(f) == 0 {
				t.Fatalf("case %s passes against a server that sends %s", tc.name, tc.bug)
			} else {
				t.Logf("%s fails as it should: %s", tc.name, f[0])
			}
		})
	}
}

// TestReadResponseRefuses holds the strict reader to what RFC 9112 does not
// let a server send.
func TestReadResponseRefuses(t *testing.T) {
	for _, tc := range []struct{ what, raw string }{
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"},
		{"no SP after the status code", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"},
		{"two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"},
		{"HTTP/2.0 status line", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n"},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"},
		{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
		{"differing CLs", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"CL with a sign", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\na"},
		{"CL in a 204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"},
		{"TE in a 1xx", "HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n\r\n0\r\n\r\n"},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"},
		{"no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n"},
		{"short CL body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"},
		{"head cut short", "HTTP/1.1 200 OK\r\nContent-Le"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			resp, err := readResponse(bufio.NewReader(strings.NewReader(tc.raw)), http.MethodGet)
			if err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("read %v from %q, want an error", resp, tc.raw)
			}
		})
	}
}

// TestReadResponseFraming checks the reader delimits bodies by RFC 9112
// §6.3, leaving the next response's bytes unread.
func TestReadResponseFraming(t *testing.T) {
	for _, tc := range []struct {
		what, method, raw, body string
		framing                 framing
	}{
		{"length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab", "ab", lengthBody},
		{"repeated equal lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", "ab", lengthBody},
		{"chunked with extensions and trailers", "GET",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\nA\r\n0123456789\r\n0\r\nX-T: v\r\n\r\n", "ab0123456789", chunkedBody},
		{"HEAD with a length", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "", noBody},
		{"304 with a length", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", "", noBody},
		{"close-delimited", "GET", "HTTP/1.0 200 OK\r\n\r\nto the end", "to the end", closeBody},
		{"empty reason", "GET", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", "", lengthBody},
	} {
		t.Run(tc.what, func(t *testing.T) {
			next := "HTTP/1.1 204 No Content\r\n\r\n"
			if tc.framing == closeBody {
				next = ""
			}
			br := bufio.NewReader(strings.NewReader(tc.raw + next))
			resp, err := readResponse(br, tc.method)
			if err != nil {
				t.Fatal(err)
			}
			if string(resp.body) != tc.body || resp.framing != tc.framing {
				t.Fatalf("got %v %q, want %s %q", resp, resp.body, tc.framing, tc.body)
			}
			if next == "" {
				return
			}
			if resp, err := readResponse(br, "GET"); err != nil || resp.status != 204 {
				t.Fatalf("the next response: %v, %v", resp, err)
			}
		})
	}
}
