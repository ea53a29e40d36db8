package origin

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// maxHeadBytes bounds one response head (status line and header fields),
// like http.Transport's MaxResponseHeaderBytes default.
const maxHeadBytes = 1 << 20

// field is one response header field. Key is canonical; both strings point
// into the single string holding the whole head.
type field struct{ key, value string }

// responseHead is a parsed response head. One lives in each upConn and is
// reused, so parsing allocates only the head string itself.
type responseHead struct {
	status        int
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool          // the connection cannot be reused after this response
	connection    string        // the Connection field values, joined by ", "
	upgrade       string        // the Upgrade field value
	keepAlive     time.Duration // the Keep-Alive field's timeout=, 0 if none
	hasType       bool          // a Content-Type field was present
	dropped       int           // fields dropped for control characters in their value
	fields        []field

	raw         []byte // scratch for the bytes of the head
	nothingRead bool   // the read failed before a single byte arrived
}

// errMalformed marks a response the origin got wrong (KindProtocol).
var errMalformed = errors.New("malformed response")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// readHead reads one response head from br into h. It copies the head once
// into a string and slices every key and value out of it, so a response costs
// one allocation here however many fields it has.
func readHead(br *bufio.Reader, h *responseHead) error {
	raw := h.raw[:0]
	h.nothingRead = false
	for {
		start := len(raw)
		line, err := br.ReadSlice('\n')
		raw = append(raw, line...)
		for err == bufio.ErrBufferFull && len(raw) <= maxHeadBytes {
			line, err = br.ReadSlice('\n')
			raw = append(raw, line...)
		}
		if len(raw) > maxHeadBytes {
			h.raw = raw[:0]
			return malformed("response head larger than %d bytes", maxHeadBytes)
		}
		if err != nil {
			h.raw = raw[:0]
			h.nothingRead = len(raw) == 0
			return err
		}
		if n := len(raw) - start; n == 1 || (n == 2 && raw[start] == '\r') {
			break // the empty line that ends the head
		}
	}
	if cap(raw) <= 64<<10 {
		h.raw = raw[:0]
	} else {
		h.raw = nil // do not keep a huge scratch buffer on a pooled conn
	}
	return parseHead(string(raw), h)
}

// parseHead parses s, a complete head ending with an empty line.
func parseHead(s string, h *responseHead) error {
	h.status = 0
	h.contentLength = -1
	h.chunked = false
	h.close = false
	h.connection = ""
	h.upgrade = ""
	h.keepAlive = 0
	h.hasType = false
	h.dropped = 0
	h.fields = h.fields[:0]

	// A head whose lines end in CR LF but for one bare LF is an origin
	// that put an LF into a value (user input in a header): reading the
	// LF as a line end, as RFC 9112 section 2.2 allows, would turn the
	// rest of that value into a header of its own for the client. A head
	// with bare LF throughout (some old servers) is still read.
	if crlf := strings.Count(s, "\r\n"); crlf > 0 && crlf != strings.Count(s, "\n") {
		return malformed("bare LF among CR LF line ends")
	}
	line, rest := nextLine(s)
	http10, err := parseStatusLine(line, h)
	if err != nil {
		return err
	}
	keepAlive := false // HTTP/1.0 "Connection: keep-alive"
	for {
		line, rest = nextLine(rest)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Obsolete line folding (RFC 9112 section 5.2): a proxy must
			// reject it or unfold it; rejecting is the safe choice.
			return malformed("folded header line")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return malformed("header line without a name: %.40q", line)
		}
		name := line[:colon]
		if !validToken(name) {
			return malformed("invalid header name %.40q", name)
		}
		value := trimOWS(line[colon+1:])
		key := textproto.CanonicalMIMEHeaderKey(name)
		if !validValue(value) {
			// A CR, LF or NUL in a value could split the header we send to
			// the client. Drop the field, unless it frames the message.
			switch key {
			case "Content-Length", "Transfer-Encoding", "Connection":
				return malformed("control character in %s", key)
			}
			h.dropped++
			continue
		}
		switch key {
		case "Content-Length":
			n, ok := parseContentLength(value)
			if !ok || (h.contentLength >= 0 && h.contentLength != n) {
				return malformed("bad Content-Length %.40q", value)
			}
			h.contentLength = n
		case "Transfer-Encoding":
			if !strings.EqualFold(value, "chunked") || h.chunked {
				return malformed("unsupported Transfer-Encoding %.40q", value)
			}
			h.chunked = true
		case "Connection":
			if h.connection == "" {
				h.connection = value
			} else {
				h.connection += ", " + value
			}
			if hasToken(value, "close") {
				h.close = true
			}
			if hasToken(value, "keep-alive") {
				keepAlive = true
			}
		case "Upgrade":
			h.upgrade = value
		case "Keep-Alive":
			if t := keepAliveTimeout(value); t > 0 && (h.keepAlive == 0 || t < h.keepAlive) {
				h.keepAlive = t
			}
		case "Content-Type":
			h.hasType = true
		}
		h.fields = append(h.fields, field{key, value})
	}
	if h.chunked && h.contentLength >= 0 {
		// RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length,
		// and such a message ought to be handled as an error; do not reuse
		// the connection, and never pass the Content-Length on.
		h.contentLength = -1
		h.close = true
	}
	if http10 && !keepAlive {
		h.close = true
	}
	return nil
}

// keepAliveTimeout reads the timeout parameter of a Keep-Alive field
// ("timeout=5, max=100", RFC 2068 section 19.7.1.1, as Apache, Node and
// IIS send it): how many seconds the origin keeps an idle connection open.
// It returns 0 when there is none or it is not a whole number of seconds.
func keepAliveTimeout(v string) time.Duration {
	for v != "" {
		var param string
		param, v, _ = strings.Cut(v, ",")
		k, n, ok := strings.Cut(trimOWS(param), "=")
		if !ok || !strings.EqualFold(trimOWS(k), "timeout") {
			continue
		}
		n = strings.Trim(trimOWS(n), `"`)
		secs, err := strconv.Atoi(n)
		if err != nil || secs <= 0 || secs > 24*3600 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	return 0
}

// nextLine splits s at the first LF, dropping the line's CR LF or LF.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// parseStatusLine parses "HTTP/1.1 200 OK" and reports whether the version
// is HTTP/1.0.
func parseStatusLine(line string, h *responseHead) (http10 bool, err error) {
	switch {
	case strings.HasPrefix(line, "HTTP/1.1 "):
	case strings.HasPrefix(line, "HTTP/1.0 "):
		http10 = true
	default:
		return false, malformed("bad status line %.40q", line)
	}
	code := line[len("HTTP/1.1 "):]
	if len(code) < 3 || (len(code) > 3 && code[3] != ' ') {
		return false, malformed("bad status line %.40q", line)
	}
	n := 0
	for i := 0; i < 3; i++ {
		c := code[i]
		if c < '0' || c > '9' {
			return false, malformed("bad status code in %.40q", line)
		}
		n = n*10 + int(c-'0')
	}
	if n < 100 {
		return false, malformed("bad status code %d", n)
	}
	if !validValue(code) {
		return false, malformed("control character in status line")
	}
	h.status = n
	return http10, nil
}

func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// trimOWS trims optional whitespace (SP, HTAB) around a field value.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validValue reports whether s holds no control characters other than HTAB
// (obs-text, bytes >= 0x80, is allowed).
func validValue(s string) bool { return httpguts.ValidHeaderFieldValue(s) }

// validToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func validToken(s string) bool { return httpguts.ValidHeaderFieldName(s) }

// bodyAllowed reports whether a response with this status to this method
// carries a body (RFC 9112 section 6.3).
func bodyAllowed(method string, status int) bool {
	if method == http.MethodHead {
		return false
	}
	return status >= 200 && status != 204 && status != 304
}
