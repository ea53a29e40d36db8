package gateway

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// BufferedWriter batches access-log lines and flushes them every interval,
// so logging costs the request path a memory copy instead of a syscall.
type BufferedWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewBufferedWriter wraps w and flushes it every interval (default 200 ms).
func NewBufferedWriter(w io.Writer, interval time.Duration) *BufferedWriter {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	b := &BufferedWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the flusher and flushes.
func (b *BufferedWriter) Close() error {
	close(b.stop)
	<-b.done
	return b.Flush()
}

// NewAccessLogger returns the JSON access logger writing to w.
func NewAccessLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

// logAccess writes the access-log record of one answered request, which
// took d. Its outcome and reason are those of turnout_requests_total; a
// client that went away is outcome client_closed with status 499 (nginx's),
// unless a status had already been sent. target is the target of the
// route's side that had the request — its own, or on a route with a canary
// the canary's, side saying which — also when the fallback answered (the
// reason says why).
func (g *Gateway) logAccess(x *exchange, d time.Duration) {
	if g.opts.AccessLog == nil {
		return
	}
	r := x.r
	attrs := make([]slog.Attr, 0, 21)
	attrs = append(attrs,
		slog.String("request_id", x.id),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", x.path),
	)
	if p := x.plan; p != nil {
		attrs = append(attrs, slog.String("route", p.pattern), slog.String("target", x.at.target()))
		if p.canary != nil {
			attrs = append(attrs, slog.String("side", x.side.String()))
		}
		if p.off {
			attrs = append(attrs, slog.Bool("route_off", true))
		}
		// Who the authorizer says the caller is, never the token.
		if gd := p.guard; gd != nil && x.authResult != "" {
			attrs = append(attrs, slog.String("authorizer", gd.name), slog.String("auth", x.authResult))
			if x.authed {
				if x.auth.Subject != "" {
					attrs = append(attrs, slog.String("subject", x.auth.Subject))
				}
				if gd.event {
					attrs = append(attrs, slog.Bool("auth_cached", x.auth.Cached))
				}
			}
		}
	}
	if x.apiKeyResult != "" { // the key's name, never the key
		if x.apiKey != "" {
			attrs = append(attrs, slog.String("api_key", x.apiKey))
		}
		attrs = append(attrs, slog.String("api_key_result", x.apiKeyResult))
	}
	attrs = append(attrs,
		slog.Int("status", x.code),
		slog.String("outcome", x.outcome.String()),
	)
	if x.reason != "" {
		attrs = append(attrs, slog.String("reason", x.reason))
	}
	attrs = append(attrs,
		slog.Int64("bytes", x.n),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("remote", r.RemoteAddr),
	)
	if x.err != nil {
		attrs = append(attrs, slog.String("error", x.err.Error()))
	}
	g.opts.AccessLog.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}
