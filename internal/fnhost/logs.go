package fnhost

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// LogLine is one line of a function's output, or a platform line
// (START, END, REPORT, errors) written by the host.
type LogLine struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId"`
	Stream    string    `json:"stream"` // "stdout", "stderr" or "platform"
	Text      string    `json:"text"`

	instance int // the seq of the instance that wrote it; 0 for platform lines
}

const (
	maxLineBytes   = 16 << 10
	truncateMarker = " …[truncated]"
	lineOverhead   = 64 // bytes charged per line on top of its strings
	logTailBytes   = 4 << 10
	followBuffer   = 1024
)

func lineCost(l *LogLine) int { return len(l.Text) + len(l.RequestID) + lineOverhead }

// logRing keeps a function's most recent lines within a byte budget.
type logRing struct {
	max int

	mu        sync.Mutex
	lines     []LogLine // lines[head:] are live
	head      int
	bytes     int
	followers map[chan LogLine]struct{}
	dropped   atomic.Uint64
}

func newLogRing(max int) *logRing {
	return &logRing{max: max, followers: map[chan LogLine]struct{}{}}
}

func (r *logRing) add(l LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
	r.bytes += lineCost(&l)
	for r.bytes > r.max && r.head < len(r.lines)-1 {
		r.bytes -= lineCost(&r.lines[r.head])
		r.lines[r.head] = LogLine{}
		r.head++
	}
	// Compact once the dead prefix dominates, so the backing array stays
	// proportional to the live lines.
	if r.head > 64 && r.head*2 > len(r.lines) {
		n := copy(r.lines, r.lines[r.head:])
		clear(r.lines[n:])
		r.lines = r.lines[:n]
		r.head = 0
	}
	for ch := range r.followers {
		select {
		case ch <- l:
		default:
			r.dropped.Add(1)
		}
	}
}

// size reports the bytes charged to the live lines.
func (r *logRing) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}

func (r *logRing) snapshot(requestID string) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []LogLine
	for _, l := range r.lines[r.head:] {
		if requestID == "" || l.RequestID == requestID {
			out = append(out, l)
		}
	}
	return out
}

// instanceLines returns the lines of the instance with seq that no request
// owns: its init output (and the host's INIT_REPORT for it).
func (r *logRing) instanceLines(seq int) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []LogLine
	for _, l := range r.lines[r.head:] {
		if l.instance == seq && l.RequestID == "" {
			out = append(out, l)
		}
	}
	return out
}

// tail returns the last logTailBytes of requestID's lines as text.
func (r *logRing) tail(requestID string) string {
	r.mu.Lock()
	var picked []string
	n := 0
	live := r.lines[r.head:]
	for i := len(live) - 1; i >= 0 && n < logTailBytes; i-- {
		if live[i].RequestID == requestID {
			picked = append(picked, live[i].Text)
			n += len(live[i].Text) + 1
		}
	}
	r.mu.Unlock()
	buf := make([]byte, 0, n)
	for i := len(picked) - 1; i >= 0; i-- {
		buf = append(buf, picked[i]...)
		buf = append(buf, '\n')
	}
	if len(buf) > logTailBytes {
		buf = buf[len(buf)-logTailBytes:]
	}
	return string(buf)
}

func (r *logRing) follow(ctx context.Context, done <-chan struct{}) <-chan LogLine {
	ch := make(chan LogLine, followBuffer)
	r.mu.Lock()
	r.followers[ch] = struct{}{}
	r.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		r.mu.Lock()
		delete(r.followers, ch)
		r.mu.Unlock()
		close(ch)
	}()
	return ch
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
