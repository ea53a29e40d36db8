package edge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// ErrBodyTimeout is returned by a request body's Read when the client sent
// nothing for the body timeout.
var ErrBodyTimeout = errors.New("request body timeout: the client stopped sending the body")

// BodyTimeout wraps h so that a request body stalling longer than d between
// two reads fails the read with ErrBodyTimeout and the client gets
// 408 Request Timeout with the connection closed. When h had already
// started its response (a full-duplex handler), the response is aborted
// instead, so that the unread body is never parsed as a next request.
//
// It works with the connection's read deadline (http.ResponseController),
// re-armed before each read, so a slow but steady upload is not cut off:
// the bound is on stalls, not on total time. Total time is bounded by the
// route's timeout, and buffered bodies by max_body_bytes. Whatever h answers
// after the failed read (a 502, say) is replaced by the 408; h's own logs
// and metrics still record what it saw.
func BodyTimeout(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		tw := &timeoutWriter{ResponseWriter: w}
		// The body is wrapped in a shallow copy of the request: the
		// server keeps the request it handed out, and net/http tells by
		// its Body whether the handler read an "Expect: 100-continue"
		// body — replaced there, a handler that never reads it would
		// have the server wait for a body the client withholds until
		// the 100 it never gets.
		r = r.WithContext(r.Context())
		r.Body = &stallBody{rc: r.Body, ctl: http.NewResponseController(w), d: d, w: tw}
		h.ServeHTTP(tw, r)
		if tw.finish() {
			// The response had started when the body timed out (a
			// full-duplex handler). The unread rest of the body is still
			// on the connection, where net/http would parse it as the next
			// request: abort instead, which closes an HTTP/1 connection
			// (the client sees a truncated response) or resets an HTTP/2
			// stream.
			panic(http.ErrAbortHandler)
		}
	})
}

// stallBody re-arms the read deadline before every read of the body.
type stallBody struct {
	rc  io.ReadCloser
	ctl *http.ResponseController
	d   time.Duration
	w   *timeoutWriter
	err error // sticky: once a read failed, the deadline is not touched again
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	deadline := time.Now().Add(b.d)
	armed := b.ctl.SetReadDeadline(deadline) == nil
	n, err := b.rc.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		// The body is complete: hand the connection's deadlines back to
		// net/http (it clears them itself for HTTP/1).
		if armed {
			b.ctl.SetReadDeadline(time.Time{})
		}
	case armed && isTimeout(err) && !time.Now().Before(deadline):
		// Ours, not a deadline someone else set to interrupt this read
		// (the origin proxy does, when the origin answers early).
		b.w.expire()
		b.err = fmt.Errorf("%w (nothing for %s)", ErrBodyTimeout, b.d)
		return n, b.err
	default:
		b.err = err
	}
	return n, err
}

func (b *stallBody) Close() error { return b.rc.Close() }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// timeoutWriter turns the response into a 408 once the body timed out,
// as long as no response has started.
type timeoutWriter struct {
	http.ResponseWriter

	mu      sync.Mutex
	started bool // a final status was sent through
	expired bool // the body read timed out
	sent408 bool
}

func (w *timeoutWriter) expire() {
	w.mu.Lock()
	w.expired = true
	w.mu.Unlock()
}

// claim reports whether the handler's response goes through; otherwise the
// 408 has been (or is now) sent in its place.
func (w *timeoutWriter) claim(code int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return true
	}
	if w.expired {
		w.send408Locked()
		return false
	}
	if code >= 200 {
		w.started = true
	}
	return true
}

func (w *timeoutWriter) send408Locked() {
	if w.sent408 {
		return
	}
	w.sent408 = true
	h := w.ResponseWriter.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Connection", "close")
	w.ResponseWriter.WriteHeader(http.StatusRequestTimeout)
	io.WriteString(w.ResponseWriter, "408 request timeout: the request body stalled\n")
}

func (w *timeoutWriter) WriteHeader(code int) {
	if w.claim(code) {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *timeoutWriter) Write(p []byte) (int, error) {
	if !w.claim(http.StatusOK) {
		return 0, ErrBodyTimeout
	}
	return w.ResponseWriter.Write(p)
}

// Flush lets handlers that assert http.Flusher stream through the wrapper.
func (w *timeoutWriter) Flush() {
	if w.claim(http.StatusOK) {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// finish sends the 408 when the handler returned without answering after
// the body timed out. It reports whether the body timed out after the
// handler's own response had started.
func (w *timeoutWriter) finish() (abort bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.expired && !w.started {
		w.send408Locked()
	}
	return w.expired && w.started && !w.sent408
}

// Unwrap lets http.ResponseController reach the connection (flush,
// hijack, deadlines).
func (w *timeoutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
