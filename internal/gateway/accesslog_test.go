package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"testing"
	"time"
)

// slogLine is the line log/slog's JSONHandler writes for an access record
// at t with attrs: what AccessLogger must write, byte for byte.
func slogLine(t time.Time, attrs ...slog.Attr) []byte {
	var buf bytes.Buffer
	r := slog.NewRecord(t, slog.LevelInfo, "request", 0)
	r.AddAttrs(attrs...)
	slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r)
	return buf.Bytes()
}

// attrSink collects the fields as slog attributes.
type attrSink []slog.Attr

func (s *attrSink) str(k, v string)           { *s = append(*s, slog.String(k, v)) }
func (s *attrSink) int(k string, v int64)     { *s = append(*s, slog.Int64(k, v)) }
func (s *attrSink) bool(k string, v bool)     { *s = append(*s, slog.Bool(k, v)) }
func (s *attrSink) float(k string, v float64) { *s = append(*s, slog.Float64(k, v)) }
func (s *attrSink) all(f func(fieldSink))     { f(s) }
func lineOf(t time.Time, f func(fieldSink)) []byte {
	l := &accessLine{}
	l.b = appendLineStart(nil, t)
	f(l)
	return append(l.b, "}\n"...)
}

func checkLikeSlog(t *testing.T, when time.Time, f func(fieldSink)) {
	t.Helper()
	var attrs attrSink
	attrs.all(f)
	want := slogLine(when, attrs...)
	if got := lineOf(when, f); !bytes.Equal(got, want) {
		t.Errorf("access log line differs from slog's JSONHandler:\n got %q\nwant %q", got, want)
	}
}

var (
	utcWhen   = time.Date(2026, 12, 6, 17, 4, 5, 123456789, time.UTC)
	zonedWhen = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -(3*3600+30*60)))
)

// TestAccessLogLikeSlog: the hand-written line is slog's, for the strings
// users put into requests (quotes, control bytes, invalid UTF-8, U+2028,
// HTML characters) and the numbers turnout writes.
func TestAccessLogLikeSlog(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "ctl\x00\x01\x1f\x7f\n\r\t", "bad\xffutf8\xc3", "ls\u2028ps\u2029", "<html>&amp;", "日本語", "\xe2\x80"} {
		for _, when := range []time.Time{utcWhen, zonedWhen} {
			checkLikeSlog(t, when, func(f fieldSink) {
				f.str("path", s)
				f.int("status", 499)
				f.bool("route_off", true)
				f.float("duration_ms", 12.345)
			})
		}
	}
	for _, v := range []float64{0, 0.001, 1, 1.5, 1234567.891, 1e-7, 1e21, 9.999e20, -2.5, math.Inf(1), math.NaN()} {
		checkLikeSlog(t, utcWhen, func(f fieldSink) { f.float("duration_ms", v) })
	}
	if n := testing.AllocsPerRun(100, func() {
		l := lines.Get().(*accessLine)
		l.b = appendLineStart(l.b[:0], utcWhen)
		l.str("path", "/orders/42")
		l.int("status", 200)
		l.float("duration_ms", 0.25)
		lines.Put(l)
	}); n != 0 {
		t.Errorf("writing a line allocates %v times, want 0", n)
	}
}

func FuzzAccessLogLine(f *testing.F) {
	f.Add("/orders", "GET", int64(200), true, 1.25, int64(0))
	f.Add("q\"\\\x00\u2028\xff", "", int64(-1), false, 1e-9, int64(1700000000123456789))
	f.Fuzz(func(t *testing.T, a, b string, n int64, ok bool, v float64, ns int64) {
		checkLikeSlog(t, time.Unix(0, ns).UTC(), func(f fieldSink) {
			f.str("a", a)
			f.int("n", n)
			f.bool("ok", ok)
			f.float("v", v)
			f.str("b", b)
		})
	})
}
