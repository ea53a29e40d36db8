package h1conformance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// response is one response as read off the wire by readResponse, which,
// unlike net/http's client, refuses anything RFC 9112 does not allow a
// server to send, so that a server's framing mistakes fail the case.
type response struct {
	proto   string // "HTTP/1.1" or "HTTP/1.0"
	status  int
	header  http.Header
	framing framing
	body    []byte
	trailer http.Header
}

// framing is how a response's body was delimited (RFC 9112 §6.3).
type framing int

const (
	noBody      framing = iota // HEAD, 1xx, 204, 304
	lengthBody                 // Content-Length
	chunkedBody                // Transfer-Encoding: chunked
	closeBody                  // read until the server closed
)

func (f framing) String() string {
	return [...]string{"no body", "Content-Length", "chunked", "close-delimited"}[f]
}

// Limits on what readResponse accepts, so a broken server cannot make a
// case read without end.
const (
	maxLine = 64 << 10
	maxHead = 1 << 20
	maxBody = 32 << 20
)

// errTruncated is a body the server ended before its framing said it ends.
var errTruncated = errors.New("body truncated")

// errMalformed is a response RFC 9112 does not allow.
var errMalformed = errors.New("malformed response")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// readLine reads one line ended by CRLF and returns it without the CRLF.
// A bare LF or CR is malformed (RFC 9112 §2.2 lets a recipient accept a
// bare LF, but a conforming sender never sends one).
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		part, err := br.ReadSlice('\n')
		b = append(b, part...)
		if len(b) > maxLine {
			return "", malformed("line longer than %d bytes", maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return string(b), err
		}
		break
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", malformed("line %q not ended by CRLF", b)
	}
	line := string(b[:len(b)-2])
	if strings.ContainsAny(line, "\r\n") {
		return "", malformed("bare CR or LF in line %q", line)
	}
	return line, nil
}

// readFields reads field lines up to the empty line that ends them
// (RFC 9112 §5): a token, a colon straight after it, and a value free of
// control characters; no obs-fold.
func readFields(br *bufio.Reader, budget *int) (http.Header, error) {
	h := http.Header{}
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, noEOF(err)
		}
		if *budget -= len(line) + 2; *budget < 0 {
			return nil, malformed("head larger than %d bytes", maxHead)
		}
		if line == "" {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, malformed("obs-fold in %q", line)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return nil, malformed("field line %q", line)
		}
		value = strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, malformed("field value in %q", line)
		}
		h.Add(name, value)
	}
}

// noEOF turns an EOF in the middle of a head into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readResponse reads one response (interim or final) to a request with the
// given method. An io.EOF error means the server closed the connection
// before sending a byte of it.
func readResponse(br *bufio.Reader, method string) (*response, error) {
	line, err := readLine(br)
	if err != nil {
		if err == io.EOF && line == "" {
			return nil, io.EOF
		}
		return nil, noEOF(err)
	}
	resp := &response{}
	if err := parseStatusLine(line, resp); err != nil {
		return nil, err
	}
	budget := maxHead - len(line)
	if resp.header, err = readFields(br, &budget); err != nil {
		return nil, err
	}
	if err := resp.readBody(br, method); err != nil {
		return resp, err
	}
	return resp, nil
}

// parseStatusLine parses "HTTP/1.1 200 OK" (RFC 9112 §4): the SP after
// the code is required even when the reason phrase is empty.
func parseStatusLine(line string, resp *response) error {
	proto, rest, ok1 := strings.Cut(line, " ")
	code, reason, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || (proto != "HTTP/1.1" && proto != "HTTP/1.0") || len(code) != 3 {
		return malformed("status line %q", line)
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || code[0] == '+' {
		return malformed("status code in %q", line)
	}
	for _, c := range []byte(reason) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return malformed("reason phrase in %q", line)
		}
	}
	resp.proto, resp.status = proto, n
	return nil
}

// readBody reads the body as RFC 9112 §6.3 delimits it.
func (resp *response) readBody(br *bufio.Reader, method string) error {
	te, hasTE := resp.header["Transfer-Encoding"]
	cl, hasCL := resp.header["Content-Length"]
	if hasTE && hasCL {
		return malformed("both Transfer-Encoding and Content-Length (RFC 9112 §6.2)")
	}
	if hasTE && (resp.status < 200 || resp.status == http.StatusNoContent) {
		return malformed("Transfer-Encoding in a %d response (RFC 9112 §6.1)", resp.status)
	}
	if hasCL && (resp.status < 200 || resp.status == http.StatusNoContent) {
		return malformed("Content-Length in a %d response (RFC 9110 §8.6)", resp.status)
	}
	var length int64 = -1
	if hasCL {
		for _, v := range cl {
			n, err := parseLength(v)
			if err != nil || (length >= 0 && n != length) {
				return malformed("Content-Length %q", cl)
			}
			length = n
		}
	}
	switch {
	case method == http.MethodHead || resp.status < 200 ||
		resp.status == http.StatusNoContent || resp.status == http.StatusNotModified:
		resp.framing = noBody
		return nil
	case hasTE:
		codings := strings.Split(strings.Join(te, ","), ",")
		if resp.proto == "HTTP/1.0" {
			return malformed("Transfer-Encoding in an HTTP/1.0 response")
		}
		if !strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked") {
			resp.framing = closeBody
			return resp.readToClose(br)
		}
		if len(codings) > 1 {
			return malformed("Transfer-Encoding %q: this corpus asks for no codings but chunked", te)
		}
		resp.framing = chunkedBody
		return resp.readChunked(br)
	case hasCL:
		resp.framing = lengthBody
		if length > maxBody {
			return malformed("Content-Length %d over this reader's %d", length, maxBody)
		}
		resp.body = make([]byte, length)
		n, err := io.ReadFull(br, resp.body)
		resp.body = resp.body[:n]
		if err != nil {
			return fmt.Errorf("%w after %d of %d bytes: %v", errTruncated, n, length, err)
		}
		return nil
	default:
		resp.framing = closeBody
		return resp.readToClose(br)
	}
}

// parseLength parses a Content-Length: digits only (RFC 9110 §8.6).
func parseLength(v string) (int64, error) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, malformed("Content-Length %q", v)
	}
	return strconv.ParseInt(v, 10, 64)
}

func (resp *response) readToClose(br *bufio.Reader) error {
	b, err := io.ReadAll(io.LimitReader(br, maxBody+1))
	resp.body = b
	if len(b) > maxBody {
		return malformed("close-delimited body over %d bytes", maxBody)
	}
	return err // a reset is not a clean close
}

// readChunked reads a chunked body and its trailer section (RFC 9112 §7.1).
func (resp *response) readChunked(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return fmt.Errorf("%w: chunk size line: %v", errTruncated, err)
		}
		size, ext, _ := strings.Cut(line, ";")
		size = strings.TrimRight(size, " \t") // BWS before a chunk extension
		if size == "" || len(size) > 15 || strings.Trim(size, "0123456789abcdefABCDEF") != "" {
			return malformed("chunk size line %q", line)
		}
		if strings.ContainsFunc(ext, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return malformed("chunk extension in %q", line)
		}
		n, _ := strconv.ParseInt(size, 16, 64)
		if n == 0 {
			budget := maxHead
			resp.trailer, err = readFields(br, &budget)
			if err != nil {
				return fmt.Errorf("%w: trailer section: %v", errTruncated, err)
			}
			return nil
		}
		if int64(len(resp.body))+n > maxBody {
			return malformed("chunked body over %d bytes", maxBody)
		}
		start := len(resp.body)
		resp.body = append(resp.body, make([]byte, n)...)
		if k, err := io.ReadFull(br, resp.body[start:]); err != nil {
			resp.body = resp.body[:start+k]
			return fmt.Errorf("%w: in a chunk: %v", errTruncated, err)
		}
		crlf := make([]byte, 2)
		if _, err := io.ReadFull(br, crlf); err != nil {
			return fmt.Errorf("%w: after a chunk: %v", errTruncated, err)
		}
		if string(crlf) != "\r\n" {
			return malformed("chunk data not followed by CRLF but %q", crlf)
		}
	}
}

// get is the first value of a field, as textproto canonicalises its name.
func (resp *response) get(name string) string {
	return resp.header.Get(textproto.CanonicalMIMEHeaderKey(name))
}

// closes reports whether the response says the connection closes after it.
func (resp *response) closes() bool {
	for _, v := range resp.header["Connection"] {
		for _, o := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(o), "close") {
				return true
			}
		}
	}
	return resp.framing == closeBody
}

func (resp *response) String() string {
	if resp == nil {
		return "no response"
	}
	return fmt.Sprintf("%s %d (%s, %d body bytes)", resp.proto, resp.status, resp.framing, len(resp.body))
}
