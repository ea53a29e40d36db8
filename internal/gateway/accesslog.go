package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/turnout/turnout/internal/jsonstr"
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

// AccessLogger writes the access log: a JSON object per request and line,
// the very bytes log/slog's JSONHandler writes for the same record
// ({"time":…,"level":"INFO","msg":"request",…}) — TestAccessLogLikeSlog
// and FuzzAccessLogLine hold it to that — appended by hand into a pooled
// buffer and handed to w in one Write. Through slog the same line cost
// 5–8 µs of CPU a request under load (its Record, attributes, handler
// state and json.Marshal for the one float); by hand it is a few hundred
// nanoseconds.
type AccessLogger struct{ w io.Writer }

// NewAccessLogger returns the JSON access logger writing to w.
func NewAccessLogger(w io.Writer) *AccessLogger { return &AccessLogger{w: w} }

// fieldSink receives an access-log record's fields in order.
type fieldSink interface {
	str(key, v string)
	int(key string, v int64)
	bool(key string, v bool)
	float(key string, v float64)
}

// logAccess writes the access-log record of one answered request, which
// took d.
func (g *Gateway) logAccess(x *exchange, d time.Duration) {
	l := g.opts.AccessLog
	if l == nil {
		return
	}
	line := lines.Get().(*accessLine)
	line.b = appendLineStart(line.b[:0], time.Now())
	accessFields(x, d, line)
	line.b = append(line.b, "}\n"...)
	l.w.Write(line.b)
	if cap(line.b) <= 64<<10 {
		lines.Put(line)
	}
}

// accessFields sends f the fields of the access-log record of one answered
// request, which took d. Its outcome and reason are those of
// turnout_requests_total; a client that went away is outcome client_closed
// with status 499 (nginx's), unless a status had already been sent. target
// is the target of the route's side that had the request — its own, or on
// a route with a canary the canary's, side saying which — also when the
// fallback answered (the reason says why).
func accessFields(x *exchange, d time.Duration, f fieldSink) {
	f.str("request_id", x.id)
	f.str("method", x.method)
	f.str("host", x.host)
	f.str("path", x.path)
	if p := x.plan; p != nil {
		f.str("route", p.pattern)
		f.str("target", x.at.target())
		if p.canary != nil {
			f.str("side", x.side.String())
		}
		if p.off {
			f.bool("route_off", true)
		}
		// Who the authorizer says the caller is, never the token.
		if gd := p.guard; gd != nil && x.authResult != "" {
			f.str("authorizer", gd.name)
			f.str("auth", x.authResult)
			if x.authed {
				if x.auth.Subject != "" {
					f.str("subject", x.auth.Subject)
				}
				if gd.event {
					f.bool("auth_cached", x.auth.Cached)
				}
			}
		}
	}
	if x.apiKeyResult != "" { // the key's name, never the key
		if x.apiKey != "" {
			f.str("api_key", x.apiKey)
		}
		f.str("api_key_result", x.apiKeyResult)
	}
	f.int("status", int64(x.code))
	f.str("outcome", x.outcome.String())
	if x.reason != "" {
		f.str("reason", x.reason)
	}
	f.int("bytes", x.n)
	f.float("duration_ms", float64(d.Microseconds())/1000)
	f.str("remote", x.remote)
	if x.err != nil {
		f.str("error", x.err.Error())
	}
}

// accessLine is one line being written, pooled with its buffer.
type accessLine struct{ b []byte }

var lines = sync.Pool{New: func() any { return &accessLine{b: make([]byte, 0, 512)} }}

// appendLineStart appends the record's opening and the fields slog writes
// first.
func appendLineStart(b []byte, t time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, `","level":"INFO","msg":"request"`...)
}

func (l *accessLine) key(k string) {
	l.b = append(l.b, ',', '"')
	l.b = append(l.b, k...)
	l.b = append(l.b, '"', ':')
}

func (l *accessLine) str(k, v string) {
	l.key(k)
	l.b = jsonstr.AppendSlog(l.b, v)
}

func (l *accessLine) int(k string, v int64) {
	l.key(k)
	l.b = strconv.AppendInt(l.b, v, 10)
}

func (l *accessLine) bool(k string, v bool) {
	l.key(k)
	l.b = strconv.AppendBool(l.b, v)
}

// float writes v as encoding/json does (which slog calls for floats):
// plain decimal from 1e-6 to 1e21, exponent form outside.
func (l *accessLine) float(k string, v float64) {
	l.key(k)
	if a := math.Abs(v); v == 0 || a >= 1e-6 && a < 1e21 {
		l.b = strconv.AppendFloat(l.b, v, 'f', -1, 64)
		return
	}
	j, err := json.Marshal(v) // ±Inf and NaN: an error, as slog writes
	if err != nil {
		l.b = jsonstr.AppendSlog(l.b, "!ERROR:"+err.Error())
		return
	}
	l.b = append(l.b, j...)
}
