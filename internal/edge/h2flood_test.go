package edge

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/turnout/turnout/internal/config"
)

// h2Flood is an HTTP/2 client connection driven frame by frame, for
// sending what a well-behaved client never would.
type h2Flood struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	wmu  sync.Mutex // the Framer's writes; the reader acks SETTINGS too

	goaway    atomic.Pointer[http2.GoAwayFrame]
	closed    chan struct{} // closed when reading from the server fails
	readErr   error
	streamsOK atomic.Int64 // HEADERS frames received (responses)
}

func dialH2(t *testing.T, r *running, ca testCA) *h2Flood {
	t.Helper()
	c, err := tls.Dial("tcp", r.secure, &tls.Config{RootCAs: ca.Pool, ServerName: "api.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN negotiated %q, want h2", p)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	f := &h2Flood{t: t, conn: c, fr: http2.NewFramer(c, c), closed: make(chan struct{})}
	if err := f.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go f.read()
	return f
}

func (f *h2Flood) read() {
	defer close(f.closed)
	for {
		fr, err := f.fr.ReadFrame()
		if err != nil {
			f.readErr = err
			return
		}
		switch fr := fr.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				f.write(func() error { return f.fr.WriteSettingsAck() })
			}
		case *http2.GoAwayFrame:
			f.goaway.Store(fr)
		case *http2.HeadersFrame:
			f.streamsOK.Add(1)
		}
	}
}

func (f *h2Flood) write(fn func() error) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return fn()
}

// serverClosed reports whether the server closed the connection within d.
func (f *h2Flood) serverClosed(d time.Duration) bool {
	select {
	case <-f.closed:
		return true
	case <-time.After(d):
		return false
	}
}

func headerBlock(pairs ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(pairs); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: pairs[i], Value: pairs[i+1]})
	}
	return buf.Bytes()
}

// concurrency is a handler that counts how many of its calls run at once.
type concurrency struct {
	// deaf handlers ignore a reset (a backend call that does not watch
	// the context) and hold for the whole 200 ms.
	deaf            bool
	now, max, total atomic.Int64
}

func (c *concurrency) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	c.total.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	// Hold the handler the way a slow backend would, until the client
	// goes away (a reset stream cancels the request's context).
	done := r.Context().Done()
	if c.deaf {
		done = nil
	}
	select {
	case <-done:
	case <-time.After(200 * time.Millisecond):
	}
	io.WriteString(w, "ok")
}

func floodServer(t *testing.T, h http.Handler, streams int) (*running, testCA) {
	t.Helper()
	ca, dir := newCA(t), t.TempDir()
	tc := &config.TLS{Certificates: []config.CertificateFiles{ca.issue(t, dir, "api.test")}}
	return start(t, Options{Handler: h, TLS: tc, Limits: limits(func(l *config.Limits) { l.MaxConcurrentStreams = streams })}), ca
}

// stillServes checks that a fresh, well-behaved HTTP/2 client is answered.
func stillServes(t *testing.T, r *running, ca testCA) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "api.test"}}}
	resp, err := c.Get("https://" + r.secure + "/after")
	if err != nil {
		t.Fatalf("a normal client after the flood: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("a normal client after the flood got %s %d %q", resp.Proto, resp.StatusCode, b)
	}
}

// TestH2RapidReset opens and immediately resets 5000 streams on one
// connection (CVE-2023-44487). The handlers running at once must stay at
// or under max_concurrent_streams, the server must either keep up or send
// GOAWAY and close, and a new client must be served afterwards.
func TestH2RapidReset(t *testing.T) {
	for _, deaf := range []bool{false, true} {
		name := "handlers stop on reset"
		if deaf {
			name = "handlers ignore reset"
		}
		t.Run(name, func(t *testing.T) { rapidReset(t, deaf) })
	}
}

func rapidReset(t *testing.T, deaf bool) {
	const streams, attempts = 8, 5000
	h := &concurrency{deaf: deaf}
	r, ca := floodServer(t, h, streams)
	base := runtime.NumGoroutine()
	f := dialH2(t, r, ca)
	block := headerBlock(":method", "GET", ":scheme", "https", ":authority", "api.test", ":path", "/flood")

	sent := 0
	var werr error
	for i := 0; i < attempts && werr == nil; i++ {
		id := uint32(2*i + 1)
		werr = f.write(func() error {
			if err := f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
				return err
			}
			return f.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		})
		if werr == nil {
			sent++
		}
	}
	closed := f.serverClosed(3 * time.Second)
	ga := f.goaway.Load()
	t.Logf("sent %d HEADERS+RST_STREAM pairs (write error: %v); handlers started %d, at most %d at once; server closed: %v (read: %v); GOAWAY: %v",
		sent, werr, h.total.Load(), h.max.Load(), closed, f.readErr, ga)

	if m := h.max.Load(); m > streams {
		t.Errorf("%d handlers ran at once on one connection, want at most max_concurrent_streams = %d", m, streams)
	}
	if closed && ga != nil && ga.ErrCode != http2.ErrCodeEnhanceYourCalm && ga.ErrCode != http2.ErrCodeProtocol {
		t.Errorf("GOAWAY error code %v, want ENHANCE_YOUR_CALM or PROTOCOL_ERROR", ga.ErrCode)
	}
	if deaf && (!closed || ga == nil) {
		// 8 handlers busy and the rest queued: Go's server must give up on
		// the connection rather than queue thousands of streams.
		t.Errorf("with every handler busy, the connection was not closed with GOAWAY (closed %v, GOAWAY %v)", closed, ga)
	}
	if !closed && sent < attempts {
		t.Errorf("the server stopped reading after %d streams without closing the connection", sent)
	}
	if h.total.Load() >= attempts {
		t.Errorf("every one of the %d reset streams ran a handler", attempts)
	}

	// Reset streams' handlers end, and nothing is left running.
	deadline := time.Now().Add(5 * time.Second)
	for h.now.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.now.Load(); n > 0 {
		t.Errorf("%d handlers still running 5 s after the flood", n)
	}
	f.conn.Close()
	stillServes(t, r, ca)
	waitGoroutines(t, base)
}

// TestH2ContinuationFlood sends one HEADERS frame without END_HEADERS and
// then CONTINUATION frames without end (CVE-2023-45288). The server must
// close the connection after a bounded number of header bytes, never call
// the handler for that stream, and keep serving others.
func TestH2ContinuationFlood(t *testing.T) {
	h := &concurrency{}
	r, ca := floodServer(t, h, 8)
	base := runtime.NumGoroutine()
	f := dialH2(t, r, ca)

	// Each fragment is a whole literal header field, 1 KiB of value, so the
	// header list grows by ~1 KiB per frame and HPACK decoding never fails.
	frag := headerBlock("x-pad", strings.Repeat("a", 1024))
	first := headerBlock(":method", "GET", ":scheme", "https", ":authority", "api.test", ":path", "/flood")
	const frames = 20000 // ~20 MiB if nothing stops it
	werr := f.write(func() error {
		return f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: false})
	})
	sent := 0
	for ; sent < frames && werr == nil; sent++ {
		werr = f.write(func() error { return f.fr.WriteContinuation(1, false, frag) })
		select {
		case <-f.closed:
			werr = f.readErr
		default:
		}
	}
	closed := f.serverClosed(5 * time.Second)
	t.Logf("sent %d CONTINUATION frames (%d KiB) before: %v; server closed: %v; GOAWAY: %v", sent, sent*len(frag)>>10, werr, closed, f.goaway.Load())
	if !closed {
		t.Fatalf("connection still open after %d CONTINUATION frames", sent)
	}
	// The server reads past its limit only as far as socket buffers let
	// the client write: well under the 20 MiB offered.
	if sent >= frames {
		t.Errorf("server accepted all %d CONTINUATION frames (%d MiB of header block)", frames, frames*len(frag)>>20)
	}
	if n := h.total.Load(); n != 0 {
		t.Errorf("handler ran %d times for a header block that never ended", n)
	}
	stillServes(t, r, ca)
	waitGoroutines(t, base)
}

// waitGoroutines fails when the goroutine count does not come back near
// base: a flood must not leave per-stream goroutines behind.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > base+10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+10 {
		t.Errorf("%d goroutines 5 s after the flood, %d before", n, base)
	}
}
