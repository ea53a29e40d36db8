package fnhost

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveTestAPI serves a Runtime API on loopback for an instance with no
// process behind it (the test plays the runtime), its header timeout
// headerTimeout, until the test ends.
func serveTestAPI(t *testing.T, headerTimeout time.Duration) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fn := &function{ring: newLogRing(1 << 20)}
	in := &instance{fn: fn, seq: 1, addr: ln.Addr().String(), next: make(chan *nextWaiter, 1),
		ready: make(chan struct{}), initErr: make(chan []byte, 1), exited: make(chan struct{})}
	out, stdout, stderr, err := newOutput(fn.ring, 1)
	if err != nil {
		t.Fatal(err)
	}
	in.out = out
	in.api = newRuntimeAPI(in, ln)
	in.api.headerTimeout = headerTimeout
	served := make(chan struct{})
	go func() { in.api.serve(); close(served) }()
	t.Cleanup(func() {
		in.api.close()
		<-served
		stdout.Close()
		stderr.Close()
		out.discard(nil)
	})
	return in
}

// TestRuntimeAPIAwait drives an instance's Runtime API over real sockets as
// a runtime would, with the invocation side played by the test: the
// invocation's goroutine reads a result posted on the connection that took
// the invocation; gives that connection back when the result comes on
// another one or when its context ends; and the connection then serves the
// runtime's next request as before.
func TestRuntimeAPIAwait(t *testing.T) {
	in := serveTestAPI(t, apiHeaderTimeout)

	type runtimeConn struct {
		net.Conn
		br *bufio.Reader
	}
	dial := func() *runtimeConn {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &runtimeConn{c, bufio.NewReader(c)}
	}
	send := func(c *runtimeConn, method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+in.addr+apiPrefix+path, strings.NewReader(body))
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(c *runtimeConn, wantStatus int) (*http.Response, []byte) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != wantStatus {
			t.Fatalf("status %d (%v), want %d", resp.StatusCode, err, wantStatus)
		}
		return resp, body
	}
	waiter := func() *nextWaiter {
		t.Helper()
		select {
		case w := <-in.next:
			return w
		case <-time.After(5 * time.Second):
			t.Fatal("no /next arrived")
			return nil
		}
	}
	// dispatch hands a new invocation to the waiting runtime and awaits
	// its result on a goroutine; the channel closes when await returns.
	dispatch := func(ctx context.Context, c *runtimeConn, id, event string) (*invocation, chan struct{}) {
		t.Helper()
		inv := &invocation{id: id, payload: []byte(event), deadline: time.Now().Add(time.Minute),
			arn: "arn:aws:lambda:us-east-1:000000000000:function:raw", maxResponse: 1 << 20, done: make(chan result, 1)}
		w := waiter()
		in.deliver(w, inv)
		awaited := make(chan struct{})
		go func() { in.api.await(ctx, w, inv); close(awaited) }()
		resp, body := answer(c, http.StatusOK)
		if got := resp.Header.Get("Lambda-Runtime-Aws-Request-Id"); got != id || string(body) != event {
			t.Fatalf("request id %q and %d bytes, want %q and %d bytes", got, len(body), id, len(event))
		}
		return inv, awaited
	}
	returned := func(awaited chan struct{}, why string) {
		t.Helper()
		select {
		case <-awaited:
		case <-time.After(5 * time.Second):
			t.Fatalf("await did not return %s", why)
		}
	}
	payload := func(inv *invocation, want string) {
		t.Helper()
		select {
		case r := <-inv.done:
			if string(r.payload) != want || r.failed || r.tooLarge {
				t.Fatalf("result %+v, want payload %q", r, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no result for %s", inv.id)
		}
	}

	a, b := dial(), dial()
	// The result on the connection that took the invocation.
	send(a, "GET", "invocation/next", "")
	// An event over 16 KiB goes out in one writev of its head and itself.
	inv, awaited := dispatch(context.Background(), a, "req-1", `"`+strings.Repeat("x", 40<<10)+`"`)
	send(a, "POST", "invocation/no-such-id/response", `"stray"`)
	answer(a, http.StatusBadRequest)
	send(a, "POST", "invocation/req-1/response", `"on a"`)
	answer(a, http.StatusAccepted)
	returned(awaited, "after the result")
	payload(inv, `"on a"`)

	// The result on another connection.
	send(a, "GET", "invocation/next", "")
	inv, awaited = dispatch(context.Background(), a, "req-2", `{}`)
	send(b, "POST", "invocation/req-2/response", `"on b"`)
	answer(b, http.StatusAccepted)
	returned(awaited, "when the result came on another connection")
	payload(inv, `"on b"`)

	// The caller leaves: the connection goes back to its goroutine, which
	// reads the result.
	send(a, "GET", "invocation/next", "")
	ctx, cancel := context.WithCancel(context.Background())
	inv, awaited = dispatch(ctx, a, "req-3", `{}`)
	cancel()
	returned(awaited, "when its context ended")
	send(a, "POST", "invocation/req-3/error", `not json`)
	answer(a, http.StatusAccepted)
	select {
	case r := <-inv.done:
		if !r.failed {
			t.Fatalf("result %+v, want a failure", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no result for req-3")
	}

	// How runtimes post: aws-lambda-go sends every result chunked and
	// announces trailers (which it fills when its handler's answer fails),
	// an X-Ray error cause can make a head larger than the connection's
	// buffer, and a client may wait for "100 Continue". Each result is
	// read whole and the connection keeps serving.
	raw := func(c *runtimeConn, s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	send(a, "GET", "invocation/next", "")
	inv, awaited = dispatch(context.Background(), a, "req-4", `{}`)
	raw(a, "POST "+apiPrefix+"invocation/req-4/error HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"+
		"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"+
		"Lambda-Runtime-Function-Error-Type: Custom.Error\r\n"+
		"Lambda-Runtime-Function-Xray-Error-Cause: "+strings.Repeat("c", 64<<10)+"\r\n\r\n"+
		"4\r\nnot \r\n4\r\njson\r\n0\r\nLambda-Runtime-Function-Error-Type: Late.Error\r\n\r\n")
	answer(a, http.StatusAccepted)
	returned(awaited, "after a chunked error")
	select {
	case r := <-inv.done:
		if want := string(errorJSON("Custom.Error", "not json")); !r.failed || string(r.payload) != want {
			t.Fatalf("result %+v, want a failure %s", r, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no result for req-4")
	}
	send(a, "GET", "invocation/next", "")
	inv, awaited = dispatch(context.Background(), a, "req-5", `{}`)
	raw(a, "POST "+apiPrefix+"invocation/req-5/response HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n")
	answer(a, http.StatusContinue)
	raw(a, `"late"`+"\n")
	answer(a, http.StatusAccepted)
	returned(awaited, "after a result sent on 100 Continue")
	payload(inv, `"late"`+"\n")

	// And the connection still serves the runtime's next request.
	send(a, "GET", "invocation/next", "")
	waiter()

	// A result posted with "Connection: close" on the awaited connection:
	// its 202 (written once await has returned) says close, and the
	// connection ends after it.
	closing := dial()
	send(closing, "GET", "invocation/next", "")
	inv, awaited = dispatch(context.Background(), closing, "req-6", `{}`)
	raw(closing, "POST "+apiPrefix+"invocation/req-6/response HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\n\"ok\"")
	returned(awaited, "after a result with Connection: close")
	payload(inv, `"ok"`)
	if resp, _ := answer(closing, http.StatusAccepted); !resp.Close {
		t.Fatal("the 202 to a result with Connection: close does not say close")
	}
	if n, err := closing.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the connection stays open after Connection: close (%d, %v)", n, err)
	}

	// A request head over 1 MiB is refused, as net/http's server did.
	huge := dial()
	io.WriteString(huge, "POST "+apiPrefix+"init/error HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("p", 1<<20+64<<10)+"\r\n\r\n")
	answer(huge, http.StatusRequestHeaderFieldsTooLarge)
}

// TestRuntimeAPIHeaderTimeout: a head that stalls after its first bytes is
// answered 400 and its connection closed once the header timeout passes;
// one that comes in pieces within it is served.
func TestRuntimeAPIHeaderTimeout(t *testing.T) {
	in := serveTestAPI(t, 300*time.Millisecond)

	dial := func() net.Conn {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	head := "GET " + apiPrefix + "invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"

	// In three pieces, each within the timeout: served (the runtime's
	// /next is parked, waiting for work).
	pieces := dial()
	for _, p := range []string{head[:5], head[5:30], head[30:]} {
		io.WriteString(pieces, p)
		time.Sleep(120 * time.Millisecond)
	}
	select {
	case w := <-in.next:
		if w.c == nil {
			t.Fatal("no connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a head sent in pieces within the timeout was not served")
	}

	// Stalled: 400, and the connection ends.
	stalled := dial()
	start := time.Now()
	io.WriteString(stalled, head[:20])
	stalled.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(stalled), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled head: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Fatalf("status %d, close %v; want 400 and the connection closed", resp.StatusCode, resp.Close)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("answered after %v, before the header timeout", d)
	}
}
