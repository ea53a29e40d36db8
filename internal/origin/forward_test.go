package origin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/testkit"
)

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name     string
		timeouts config.OriginTimeouts
		ctx      time.Duration // request context deadline, 0 for none
		want     time.Duration // when Forward should give up
	}{
		{"response header", config.OriginTimeouts{ResponseHeader: dur(100 * time.Millisecond)}, 0, 100 * time.Millisecond},
		{"overall before headers", config.OriginTimeouts{ResponseHeader: dur(5 * time.Second), Overall: dur(150 * time.Millisecond)}, 0, 150 * time.Millisecond},
		{"request context deadline", config.OriginTimeouts{}, 120 * time.Millisecond, 120 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			o := origin(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/fast" {
					return
				}
				select {
				case <-release:
				case <-time.After(5 * time.Second):
				}
			})
			p := newTestPool(t, config.Origin{Timeouts: tt.timeouts}, Options{}, o.URL)
			// A first request leaves a pooled connection with deadlines
			// set: the slow request reuses it and must still time out.
			if err := p.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/fast", nil)); err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/slow", nil)
			if tt.ctx > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), tt.ctx)
				defer cancel()
				r = r.WithContext(ctx)
			}
			start := time.Now()
			err := p.Forward(httptest.NewRecorder(), r)
			elapsed := time.Since(start)
			var oe *Error
			if !errors.As(err, &oe) || oe.Kind != KindTimeout || oe.StatusCode() != 504 {
				t.Fatalf("err = %v, want *Error KindTimeout (504)", err)
			}
			// The upper bound tells "the timeout fired" from "the origin's
			// 5 s answer came": generous, since CI machines are loaded.
			if elapsed < tt.want-10*time.Millisecond || elapsed > tt.want+2*time.Second {
				t.Fatalf("gave up after %v, want about %v (the origin answers after 5s)", elapsed, tt.want)
			}
		})
	}
}

func TestOverallTimeoutCutsBody(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-release
	})
	p := newTestPool(t, config.Origin{Timeouts: config.OriginTimeouts{Overall: dur(150 * time.Millisecond)}}, Options{}, o.URL)
	rec := httptest.NewRecorder()
	start := time.Now()
	err := p.Forward(rec, httptest.NewRequest("GET", "/", nil))
	var oe *Error
	if err == nil || errors.As(err, &oe) {
		t.Fatalf("err = %v, want a plain error (headers were already sent)", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("body stall cut after %v, want about 150ms", d)
	}
	if rec.Code != 200 || rec.Body.String() != "partial" {
		t.Fatalf("client got %d %q", rec.Code, rec.Body.String())
	}
}

func TestHostHeader(t *testing.T) {
	tests := []struct {
		policy string
		want   func(originHost string) string
	}{
		{"", func(string) string { return "api.example.test" }},
		{"client", func(string) string { return "api.example.test" }},
		{"origin", func(h string) string { return h }},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			o := origin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Host) })
			p := newTestPool(t, config.Origin{HostHeader: tt.policy}, Options{}, o.URL)
			f := front(t, p)
			_, body := rawExchange(t, f.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
			if want := tt.want(o.Listener.Addr().String()); body != want {
				t.Fatalf("origin saw Host %q, want %q", body, want)
			}
		})
	}
}

func TestRequestTarget(t *testing.T) {
	tests := []struct {
		prefix string
		target string // sent by the client
		want   string // seen by the origin
	}{
		{"", "/a%2Fb?x=1;y=2&x=3", "/a%2Fb?x=1;y=2&x=3"},
		{"", "/caf%C3%A9/%7Euser?q=%20+&r", "/caf%C3%A9/%7Euser?q=%20+&r"},
		{"", "/users/42?", "/users/42?"},
		{"", "/", "/"},
		{"/api", "/users/42?x=1", "/api/users/42?x=1"},
		{"/api/", "/users/42", "/api/users/42"},
		{"/v1/legacy", "/a%2Fb?x=1;y=2&x=3", "/v1/legacy/a%2Fb?x=1;y=2&x=3"},
		{"/api", "/", "/api/"},
	}
	o := origin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RequestURI) })
	for _, tt := range tests {
		t.Run(tt.prefix+tt.target, func(t *testing.T) {
			p := newTestPool(t, config.Origin{}, Options{}, o.URL+tt.prefix)
			f := front(t, p)
			_, body := rawExchange(t, f.Listener.Addr().String(), "GET "+tt.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if body != tt.want {
				t.Fatalf("origin saw %q, want %q", body, tt.want)
			}
		})
	}
}

// echoHeaders answers with the request head as the origin received it.
func echoHeaders(t *testing.T) *rawOrigin {
	return newRawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readRequestHead(br)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(head), head)
		}
	})
}

func headerOf(head, key string) []string {
	var out []string
	for _, line := range strings.Split(head, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, key) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func TestForwardedHeaders(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		send    string
		xff     string
		proto   string
		host    string
	}{
		{"untrusted replaces", nil,
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n",
			"127.0.0.1", "http", "api.test"},
		{"untrusted range", []string{"10.0.0.0/8"},
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n", "127.0.0.1", "http", "api.test"},
		{"trusted appends and keeps", []string{"127.0.0.0/8"},
			"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: www.test\r\n",
			"1.2.3.4, 5.6.7.8, 127.0.0.1", "https", "www.test"},
		{"trusted without headers", []string{"127.0.0.1/32"}, "", "127.0.0.1", "http", "api.test"},
		{"trusted but connection-named", []string{"127.0.0.0/8"},
			"Connection: X-Forwarded-For\r\nX-Forwarded-For: 1.2.3.4\r\n", "127.0.0.1", "http", "api.test"},
	}
	o := echoHeaders(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPool(t, config.Origin{}, Options{TrustedProxies: mustPrefixes(t, tt.trusted...)}, o.URL())
			f := front(t, p)
			_, head := rawExchange(t, f.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: api.test\r\n"+tt.send+"\r\n")
			for _, c := range []struct{ key, want string }{
				{"X-Forwarded-For", tt.xff}, {"X-Forwarded-Proto", tt.proto}, {"X-Forwarded-Host", tt.host},
			} {
				if got := headerOf(head, c.key); len(got) != 1 || got[0] != c.want {
					t.Errorf("%s = %q, want [%q]\nhead:\n%s", c.key, got, c.want, head)
				}
			}
		})
	}
}

func TestHopByHopHeaders(t *testing.T) {
	o := newRawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, err := readRequestHead(br)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nConnection: X-Internal, keep-alive\r\nX-Internal: secret\r\n"+
			"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: foo\r\nX-Public: yes\r\n"+
			"Content-Length: %d\r\n\r\n%s", len(head), head)
	})
	p := newTestPool(t, config.Origin{}, Options{TrustedProxies: mustPrefixes(t, "127.0.0.0/8")}, o.URL())
	f := front(t, p)
	resp, head := rawExchange(t, f.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: api.test\r\n"+
		"Connection: keep-alive, X-Forwarded-For, X-Request-Id, X-Secret\r\n"+
		"Keep-Alive: 300\r\nProxy-Authorization: Basic abc\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"+
		"Upgrade: foo\r\nX-Secret: s\r\nX-Request-Id: req-123\r\nX-Forwarded-For: 9.9.9.9\r\nX-Kept: k\r\n\r\n")
	for _, gone := range []string{"Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Upgrade", "X-Secret"} {
		if v := headerOf(head, gone); len(v) > 0 {
			t.Errorf("origin received %s: %q", gone, v)
		}
	}
	for key, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Request-Id": "req-123", "X-Kept": "k"} {
		if v := headerOf(head, key); len(v) != 1 || v[0] != want {
			t.Errorf("origin received %s = %q, want [%q]", key, v, want)
		}
	}
	for _, gone := range []string{"X-Internal", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v := resp.Header.Values(gone); len(v) > 0 {
			t.Errorf("client received %s: %q", gone, v)
		}
	}
	if resp.Header.Get("X-Public") != "yes" {
		t.Errorf("client lost X-Public")
	}
}

func TestH2CUpgradeNotForwarded(t *testing.T) {
	o := echoHeaders(t)
	p := newTestPool(t, config.Origin{}, Options{}, o.URL())
	f := front(t, p)
	resp, head := rawExchange(t, f.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: api.test\r\n"+
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	for _, gone := range []string{"Upgrade", "Connection", "Http2-Settings"} {
		if v := headerOf(head, gone); len(v) > 0 {
			t.Errorf("origin received %s: %q", gone, v)
		}
	}
}

func TestResponseHeaderInjection(t *testing.T) {
	tests := []struct {
		name     string
		response string
		status   int
		absent   []string
	}{
		{"CR in value dropped", "HTTP/1.1 200 OK\r\nX-Bad: a\rSet-Cookie: injected=1\r\nX-Good: ok\r\nContent-Length: 2\r\n\r\nok", 200, []string{"X-Bad", "Set-Cookie"}},
		{"NUL in value dropped", "HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nX-Good: ok\r\nContent-Length: 2\r\n\r\nok", 200, []string{"X-Nul"}},
		{"bare LF splits into a bad line", "HTTP/1.1 200 OK\r\nX-Bad: a\nInjected\r\nContent-Length: 2\r\n\r\nok", 502, nil},
		{"CR in Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r5\r\n\r\nok", 502, nil},
		{"folded line", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok", 502, nil},
		{"bad status line", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", 502, nil},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 502, nil},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 2\r\n\r\nok", 502, nil},
		{"unsupported coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", 502, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := frontOfAnswer(t, tt.response)
			c := testkit.Dial(t, f.Listener.Addr().String(), 5*time.Second)
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			raw, _ := io.ReadAll(c)
			head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n")) // the test's 502 page may quote the bad line
			if bytes.Contains(bytes.ToLower(head), []byte("injected")) || bytes.Contains(head, []byte{0}) {
				t.Fatalf("client received the injected bytes:\n%q", raw)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
			if err != nil {
				t.Fatalf("client got an unparsable response %q: %v", raw, err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tt.status, raw)
			}
			if tt.status == 502 && resp.Header.Get("X-Error-Kind") != "protocol" {
				t.Fatalf("error kind %q, want protocol", resp.Header.Get("X-Error-Kind"))
			}
			for _, k := range tt.absent {
				if v := resp.Header.Values(k); len(v) > 0 {
					t.Errorf("client received %s: %q", k, v)
				}
			}
			if tt.status == 200 && resp.Header.Get("X-Good") != "ok" {
				t.Errorf("client lost X-Good")
			}
		})
	}
}

func TestChunkedRequestStreamed(t *testing.T) {
	gotFirst := make(chan struct{})
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != -1 {
			t.Errorf("origin saw Content-Length %d, want chunked", r.ContentLength)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil || string(buf) != "first" {
			t.Errorf("first read: %q %v", buf, err)
		}
		close(gotFirst)
		rest, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s|%s", buf, rest, r.Trailer.Get("X-Sum"))
	})
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	f := front(t, p)

	c := testkit.Dial(t, f.Listener.Addr().String(), 5*time.Second)
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nfirst\r\n")
	testkit.Receive(t, gotFirst, 2*time.Second, "the origin to receive the first chunk before the client finished (else the request body is buffered)")
	io.WriteString(c, "7\r\n-second\r\n0\r\nX-Sum: 42\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "first|-second|42" {
		t.Fatalf("origin echoed %q, want first|-second|42", body)
	}
}

func TestRequestBodies(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%s %d %d %x", r.Method, r.ContentLength, n, h.Sum(nil))
	})
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	f := front(t, p)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	sum := fmt.Sprintf("%x", sha256.Sum256(big))
	empty := fmt.Sprintf("%x", sha256.Sum256(nil))
	tests := []struct {
		name   string
		method string
		body   io.Reader
		length int64
		want   string
	}{
		{"content-length", "POST", bytes.NewReader(big), int64(len(big)), fmt.Sprintf("POST %d %d %s", len(big), len(big), sum)},
		{"unknown length", "PUT", io.MultiReader(bytes.NewReader(big)), -1, fmt.Sprintf("PUT -1 %d %s", len(big), sum)},
		{"empty post", "POST", nil, 0, "POST 0 0 " + empty},
		{"get", "GET", nil, 0, "GET 0 0 " + empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, f.URL+"/up", tt.body)
			req.ContentLength = tt.length
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != tt.want {
				t.Fatalf("origin saw %q, want %q", body, tt.want)
			}
		})
	}
}

func TestResponseStreamed(t *testing.T) {
	seen := make(chan struct{})
	tests := []struct {
		name  string
		setup func(w http.ResponseWriter)
	}{
		{"chunked", func(w http.ResponseWriter) {}},
		{"event-stream", func(w http.ResponseWriter) { w.Header().Set("Content-Type", "text/event-stream") }},
		{"content-length", func(w http.ResponseWriter) { w.Header().Set("Content-Length", "12") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = make(chan struct{})
			o := origin(t, func(w http.ResponseWriter, r *http.Request) {
				tt.setup(w)
				io.WriteString(w, "first-")
				w.(http.Flusher).Flush()
				select {
				case <-seen:
				case <-time.After(3 * time.Second):
					return // the client never saw the first part
				}
				io.WriteString(w, "second")
			})
			p := newTestPool(t, config.Origin{}, Options{}, o.URL)
			f := front(t, p)
			resp, err := http.Get(f.URL + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := make([]byte, 6)
			done := make(chan error, 1)
			go func() { _, err := io.ReadFull(resp.Body, buf); done <- err }()
			select {
			case err := <-done:
				if err != nil || string(buf) != "first-" {
					t.Fatalf("first part %q, %v", buf, err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("first part not delivered while the origin waits: response is buffered")
			}
			close(seen)
			rest, _ := io.ReadAll(resp.Body)
			if string(rest) != "second" {
				t.Fatalf("rest %q", rest)
			}
		})
	}
}

func TestLargeResponse(t *testing.T) {
	big := bytes.Repeat([]byte("turnout-"), 2<<20) // 16 MiB
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprint("chunked=", chunked), func(t *testing.T) {
			o := origin(t, func(w http.ResponseWriter, r *http.Request) {
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(big)))
				}
				for b := big; len(b) > 0; b = b[min(len(b), 100000):] {
					w.Write(b[:min(len(b), 100000)])
				}
			})
			p := newTestPool(t, config.Origin{}, Options{}, o.URL)
			f := front(t, p)
			resp, err := http.Get(f.URL + "/big")
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			want := sha256.Sum256(big)
			if err != nil || n != int64(len(big)) || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("got %d bytes (err %v), want %d intact", n, err, len(big))
			}
		})
	}
}

func TestTrailers(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	})
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	f := front(t, p)
	resp, err := http.Get(f.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "body" || resp.Trailer.Get("X-Checksum") != "abc" {
		t.Fatalf("body %q trailer %v, want body and X-Checksum: abc", body, resp.Trailer)
	}
}

func TestNoBodyResponsesKeepAlive(t *testing.T) {
	o := newRawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readRequestHead(br)
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(head, "HEAD "):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
			case strings.Contains(head, "/204"):
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			case strings.Contains(head, "/304"):
				io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n")
			case strings.Contains(head, "/continue"):
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
			}
		}
	})
	p := newTestPool(t, config.Origin{}, Options{}, o.URL())
	f := front(t, p)
	for _, c := range []struct{ method, path, body string }{
		{"HEAD", "/", ""}, {"GET", "/204", ""}, {"GET", "/304", ""}, {"GET", "/continue", "ok"}, {"GET", "/chunked", "ok"}, {"HEAD", "/", ""},
	} {
		req, _ := http.NewRequest(c.method, f.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != c.body || resp.StatusCode >= 500 {
			t.Fatalf("%s %s: %d %q, want body %q", c.method, c.path, resp.StatusCode, b, c.body)
		}
	}
	if n := o.conns.Load(); n != 1 {
		t.Fatalf("origin saw %d connections, want 1 (no-body responses must leave the conn reusable)", n)
	}
}

func TestKeepAliveReuse(t *testing.T) {
	var newConns int
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	o.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns++
		}
	}
	o.Start()
	defer o.Close()
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	for i := 0; i < 100; i++ {
		rec := httptest.NewRecorder()
		if err := p.Forward(rec, httptest.NewRequest("GET", "/", nil)); err != nil || rec.Body.String() != "ok" {
			t.Fatalf("request %d: %v %q", i, err, rec.Body.String())
		}
	}
	o.Close() // waits for the connection states to settle
	if newConns != 1 {
		t.Fatalf("origin saw %d connections over 100 sequential requests, want 1", newConns)
	}
}

// closeAfterOne serves one request per connection, then closes it without
// saying so: the next request on that pooled connection meets a dead socket.
func closeAfterOne(t *testing.T) *rawOrigin {
	return newRawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
}

func TestStaleConnRetry(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		body        string
		probeIdle   time.Duration
		wantOK      bool
		wantRetries int64
	}{
		{"idempotent retried", "GET", "", time.Hour, true, 1},
		{"non-idempotent probed first", "POST", "data", time.Hour, true, 0},
		{"idle probe catches it first", "GET", "", 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := closeAfterOne(t)
			p := newTestPool(t, config.Origin{}, Options{}, o.URL())
			p.probeIdleAfter = tt.probeIdle
			if err := p.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // let the origin's close arrive
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			rec := httptest.NewRecorder()
			err := p.Forward(rec, httptest.NewRequest(tt.method, "/", body))
			if ok := err == nil && rec.Body.String() == "ok"; ok != tt.wantOK {
				t.Fatalf("second request: err %v body %q, want ok=%v", err, rec.Body.String(), tt.wantOK)
			}
			var oe *Error
			if !tt.wantOK && (!errors.As(err, &oe) || oe.Kind != KindProtocol) {
				t.Fatalf("err = %v, want KindProtocol", err)
			}
			if n := p.staleRetries.Load(); n != tt.wantRetries {
				t.Fatalf("%d stale retries, want %d", n, tt.wantRetries)
			}
			if st := p.Instances()[0]; st.ConsecutiveFailures != 0 || st.Ejected {
				t.Fatalf("stale conn counted against the instance: %+v", st)
			}
		})
	}
}

func TestEarlyHintsForwarded(t *testing.T) {
	f := frontOfAnswer(t, "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := testkit.Dial(t, f.Listener.Addr().String(), 5*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	raw, _ := io.ReadAll(c)
	s := string(raw)
	i103, i200 := strings.Index(s, "103 Early Hints"), strings.Index(s, "200 OK")
	if i103 < 0 || i200 < i103 || !strings.Contains(s[:i200], "Link: </app.css>") || strings.Contains(s[i200:], "Link:") {
		t.Fatalf("want a 103 with Link before a 200 without it, got:\n%s", s)
	}
}

func TestHTTPSOrigin(t *testing.T) {
	o := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", r.Host, r.RequestURI, r.Header.Get("X-Forwarded-For"))
	}))
	defer o.Close()
	p := newTestPool(t, config.Origin{HostHeader: "origin"}, Options{}, o.URL+"/tls")
	p.std.TLSClientConfig = &tls.Config{RootCAs: o.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	f := front(t, p)
	_, body := rawExchange(t, f.Listener.Addr().String(), "GET /a%2Fb?x=1;y=2 HTTP/1.1\r\nHost: api.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
	if want := o.Listener.Addr().String() + " /tls/a%2Fb?x=1;y=2 127.0.0.1"; body != want {
		t.Fatalf("https origin saw %q, want %q", body, want)
	}
}

func TestBrokenRequestBodyFailsFast(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	f := front(t, p)
	start := time.Now()
	resp, _ := rawExchange(t, f.Listener.Addr().String(), "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\nZZ\r\n")
	// The client sent the broken body: 400, not a 502 that would blame
	// the origin (and count toward its breaker).
	if resp.StatusCode != http.StatusBadRequest || time.Since(start) > time.Second {
		t.Fatalf("broken chunked body: %d after %v, want a quick 400", resp.StatusCode, time.Since(start))
	}
}

func TestEarlyResponseDuringUpload(t *testing.T) {
	// The origin refuses an upload without reading it while the client is
	// still sending: the client gets the answer at once, and Forward does
	// not wait for the rest of the body.
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	done := make(chan error, 1)
	f := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done <- p.Forward(w, r)
	}))
	defer f.Close()
	c := testkit.Dial(t, f.Listener.Addr().String(), 5*time.Second)
	defer c.Close()
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"+strings.Repeat("x", 1000))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if err := testkit.Receive(t, done, 2*time.Second, "Forward to return (not wait for the upload the origin refused)"); err != nil {
		t.Fatalf("Forward: %v", err)
	}
}

func TestBrokenResponseIsAborted(t *testing.T) {
	tests := []struct {
		name string
		head string
	}{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"},
		{"chunked, small buffered", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nwor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The origin dies in the middle of the body.
			f := frontOfAnswer(t, tt.head)
			resp, err := http.Get(f.URL + "/")
			if err != nil {
				return // aborted before the header reached the client: fine
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("client read a complete-looking response %q from a broken origin", body)
			}
		})
	}
}
