// Package foreignlog streams the access logs of the products in front of an
// API before turnout is — CloudFront standard, AWS ALB and nginx combined,
// plain or gzip — into turnout.Observations one line at a time, so
// `turnout analyze` can rank templates in bounded memory. turnout's own
// access log is written by the gateway (gateway/accesslog.go).
package foreignlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/turnout/turnout"
)

// Format names an access-log format.
type Format string

const (
	// Auto asks NewReader to detect the format from the first lines.
	Auto Format = ""
	// CloudFront is a CloudFront standard log (legacy or v2 "W3C" output):
	// tab-separated, described by its "#Fields:" header.
	CloudFront Format = "cloudfront"
	// ALB is an Application Load Balancer access log.
	ALB Format = "alb"
	// Nginx is nginx's predefined "combined" log_format, optionally followed
	// by $request_time.
	Nginx Format = "nginx"
)

// Formats lists the formats NewReader can read, in detection order.
var Formats = []Format{CloudFront, ALB, Nginx}

// ParseFormat maps a --format value to a Format; "auto" and "" mean Auto.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "auto":
		return Auto, nil
	case "cloudfront", "alb", "nginx":
		return Format(s), nil
	}
	return Auto, fmt.Errorf("unknown log format %q: use auto, cloudfront, alb or nginx", s)
}

// DefaultMaxLineBytes bounds one log line. CloudFront does not log URLs over
// 8 KB or header sets over 20 KB, and ALB truncates user agents at 8 KB, so
// 64 KiB leaves room for every legitimate line; longer ones are malformed.
const DefaultMaxLineBytes = 64 << 10

// detectLines is how many non-blank lines Detect is given at most.
const detectLines = 16

// Options configure a Reader.
type Options struct {
	// Format is the log format; Auto (the default) detects it from the
	// first lines.
	Format Format
	// MaxLineBytes bounds a line, newline included (default
	// DefaultMaxLineBytes). A longer line is skipped as malformed; it is
	// never buffered whole.
	MaxLineBytes int
}

// LineError reports a malformed line. It is not fatal: the Reader has
// skipped the line and the next call to Next continues with the one after.
type LineError struct {
	Line   int64  // 1-based line number in the (decompressed) input
	Reason string // what is wrong, e.g. "sc-status: not a number"
	Text   string // the start of the line, at most 160 bytes
}

func (e *LineError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Stats counts what a Reader has read so far. Lines = Parsed + Malformed +
// Skipped.
type Stats struct {
	Lines     int64 // lines read
	Parsed    int64 // lines that yielded an Observation
	Malformed int64 // lines that could not be parsed
	Skipped   int64 // blank lines and "#" directives (CloudFront headers)
}

// Reader streams Observations from one access log. It holds one line at a
// time: memory stays bounded by MaxLineBytes whatever the size of the log.
type Reader struct {
	br      *bufio.Reader
	gz      *gzip.Reader
	format  Format
	parser  lineParser
	maxLine int
	stats   Stats
	err     error // sticky fatal error
}

// lineParser parses one non-blank line. A parser that understands
// directives (CloudFront's "#Fields:") reports them with errDirective.
type lineParser interface {
	parse(line []byte, o *turnout.Observation) error
}

// errDirective marks a line that is not a request but was understood.
var errDirective = errors.New("directive")

// reason is a malformed-line reason that allocates nothing on the hot path.
type reason string

func (r reason) Error() string { return string(r) }

// NewReader reads a log from r. Gzip input is recognised by its magic bytes,
// not a file name, and may be a concatenation of gzip members. With Auto,
// the format is detected from the first lines; an input whose format cannot
// be told gets an error naming --format, and an empty input yields io.EOF on
// the first Next.
func NewReader(r io.Reader, opt Options) (*Reader, error) {
	maxLine := opt.MaxLineBytes
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	if maxLine < 16 {
		maxLine = 16 // bufio's minimum
	}
	rd := &Reader{maxLine: maxLine, format: opt.Format}
	// The line reader's buffer is the line bound, so it must be ours:
	// bufio.NewReaderSize would reuse a caller's larger *bufio.Reader.
	rd.br = bufio.NewReaderSize(struct{ io.Reader }{r}, maxLine)
	if magic, _ := rd.br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(rd.br)
		if err != nil {
			return nil, fmt.Errorf("read gzip header: %w", err)
		}
		rd.gz = gz
		rd.br = bufio.NewReaderSize(struct{ io.Reader }{gz}, maxLine)
	}
	if rd.format == Auto {
		lines := rd.peekLines()
		if len(lines) == 0 {
			rd.format = Nginx // nothing to read; any parser will do
		} else {
			f, err := Detect(lines)
			if err != nil {
				return nil, err
			}
			rd.format = f
		}
	}
	switch rd.format {
	case CloudFront:
		rd.parser = newCloudFrontParser()
	case ALB:
		rd.parser = newALBParser()
	case Nginx:
		rd.parser = newNginxParser()
	default:
		return nil, fmt.Errorf("unknown log format %q: use cloudfront, alb or nginx", rd.format)
	}
	return rd, nil
}

// peekLines returns up to detectLines non-blank lines from the start of the
// input without consuming them. It sees at most the buffer's size.
func (r *Reader) peekLines() [][]byte {
	buf, _ := r.br.Peek(r.maxLine)
	if len(buf) == 0 {
		// Peek(n) returns what is buffered only after a short read; make
		// sure at least one fill happened.
		buf, _ = r.br.Peek(1)
	}
	var lines [][]byte
	for len(buf) > 0 && len(lines) < detectLines {
		i := bytes.IndexByte(buf, '\n')
		var line []byte
		if i < 0 {
			line, buf = buf, nil
		} else {
			line, buf = buf[:i], buf[i+1:]
		}
		line = trimCR(line)
		if len(bytes.TrimSpace(line)) > 0 {
			lines = append(lines, line)
		}
	}
	return lines
}

// Format is the format being read (detected or given).
func (r *Reader) Format() Format { return r.format }

// Stats reports the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Next parses the next request line into o, overwriting every field, and
// returns nil. At the end of the input it returns io.EOF. A malformed line
// returns a *LineError; the caller may simply call Next again. Any other
// error (a read error, a corrupt gzip stream) is fatal and sticky.
//
// o is reused by the caller from line to line; strings put into it are
// never aliased to the read buffer, so o's values stay valid.
func (r *Reader) Next(o *turnout.Observation) error {
	if r.err != nil {
		return r.err
	}
	for {
		line, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			r.stats.Lines++
			r.stats.Malformed++
			le := &LineError{Line: r.stats.Lines, Reason: fmt.Sprintf("line longer than %d bytes", r.maxLine), Text: clip(line)}
			if derr := r.discardLine(); derr != nil {
				r.err = derr
			}
			return le
		}
		if err != nil && err != io.EOF {
			r.err = fmt.Errorf("read line %d: %w", r.stats.Lines+1, err)
			return r.err
		}
		if len(line) == 0 && err == io.EOF {
			r.err = io.EOF
			return io.EOF
		}
		r.stats.Lines++
		line = trimCR(bytes.TrimSuffix(line, []byte{'\n'}))
		if isBlank(line) {
			r.stats.Skipped++
			if err == io.EOF {
				r.err = io.EOF
				return io.EOF
			}
			continue
		}
		resetObservation(o)
		perr := r.parser.parse(line, o)
		if err == io.EOF {
			r.err = io.EOF // after this line
		}
		switch {
		case perr == nil:
			r.stats.Parsed++
			return nil
		case perr == errDirective:
			r.stats.Skipped++
			if r.err != nil {
				return r.err
			}
			continue
		default:
			r.stats.Malformed++
			return &LineError{Line: r.stats.Lines, Reason: perr.Error(), Text: clip(line)}
		}
	}
}

// discardLine skips the rest of an overlong line.
func (r *Reader) discardLine() error {
	for {
		_, err := r.br.ReadSlice('\n')
		switch err {
		case nil:
			return nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			return io.EOF
		default:
			return fmt.Errorf("read line %d: %w", r.stats.Lines, err)
		}
	}
}

// Close releases the gzip decoder, if any. It does not close the
// underlying reader.
func (r *Reader) Close() error {
	if r.gz != nil {
		return r.gz.Close()
	}
	return nil
}

func resetObservation(o *turnout.Observation) {
	*o = turnout.Observation{RequestBytes: -1}
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// clip returns the start of a line for a malformed-line report, with
// control bytes and invalid UTF-8 made visible.
func clip(b []byte) string {
	const max = 160
	cut := len(b) > max
	if cut {
		b = b[:max]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
	if cut {
		s += "…"
	}
	return s
}

// Detect tells the format of a log from its first non-blank lines: a
// CloudFront "#Version:"/"#Fields:" header settles it; otherwise the format
// whose parser accepts the most lines wins (CloudFront, then ALB, then nginx
// on a tie). It fails when no parser accepts any line.
func Detect(firstLines [][]byte) (Format, error) {
	if len(firstLines) > detectLines {
		firstLines = firstLines[:detectLines]
	}
	for _, l := range firstLines {
		if bytes.HasPrefix(l, []byte("#Version:")) || bytes.HasPrefix(l, []byte("#Fields:")) {
			return CloudFront, nil
		}
	}
	best, bestN := Auto, 0
	var o turnout.Observation
	for _, f := range Formats {
		var p lineParser
		switch f {
		case CloudFront:
			p = newCloudFrontParser()
		case ALB:
			p = newALBParser()
		case Nginx:
			p = newNginxParser()
		}
		n := 0
		for _, l := range firstLines {
			resetObservation(&o)
			if p.parse(trimCR(l), &o) == nil {
				n++
			}
		}
		if n > bestN {
			best, bestN = f, n
		}
	}
	if bestN == 0 {
		return Auto, errors.New("cannot detect the log format (not a CloudFront standard log, an ALB access log or an nginx combined log); pass --format cloudfront|alb|nginx")
	}
	return best, nil
}
