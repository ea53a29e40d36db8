package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"sync"
)

// body is a request body: Content-Length bytes, or chunked. It reads the
// bytes already buffered after the head first, then the connection.
type body struct {
	c  *conn
	mu sync.Mutex
	n  int64 // bytes left of a Content-Length body; -1 when chunked
	cr io.Reader
	br *bufio.Reader
	// expect is true until "100 Continue" has been written or can no
	// longer be (the response has started).
	expect         bool
	sawEOF, closed bool
	err            error
}

var errTrailer = errors.New("h1: malformed or oversized trailer section in a chunked body")

var brPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}

func (c *conn) newBody(n int64, expect bool) *body {
	b := &body{c: c, n: n, expect: expect}
	if n < 0 {
		b.br = brPool.Get().(*bufio.Reader)
		b.br.Reset(&c.src)
		b.cr = httputil.NewChunkedReader(b.br)
	}
	return b
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.sawEOF {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	c := b.c
	if b.expect {
		b.expect = false
		if !c.resp.headSent && !c.hijacked {
			if _, err := c.nc.Write(continueLine); err != nil {
				b.err = err
				return 0, err
			}
		}
	}
	var n int
	var err error
	if b.n < 0 {
		n, err = b.cr.Read(p)
		if err == io.EOF {
			err = b.endChunked()
		}
	} else {
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err = c.src.Read(p)
		b.n -= int64(n)
		switch {
		case b.n == 0:
			err = io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	switch err {
	case nil:
	case io.EOF:
		b.sawEOF = true
		c.armWatch()
	default:
		b.err = err
	}
	return n, err
}

var continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// maxTrailer bounds the trailer section of a chunked request body.
const maxTrailer = 16 << 10

// ReadTrailer reads the trailer section that ends a chunked body, after
// its last chunk — field lines (a token, a colon, a value without CR or
// NUL), each ended by CRLF, then the empty line — and discards it, as RFC
// 9112 §7.1.2 lets a recipient that removes the chunked coding do. A
// malformed field line, a bare CR or LF, or more than 16 KiB is an error.
func ReadTrailer(br *bufio.Reader) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		total += len(line)
		switch {
		case err == io.EOF:
			return io.ErrUnexpectedEOF
		case err != nil || total > maxTrailer:
			return errTrailer
		case len(line) < 2 || line[len(line)-2] != '\r':
			return errTrailer
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			return nil
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || !isToken(name) || bytes.ContainsAny(line, "\r\x00") {
			return errTrailer
		}
	}
}

// endChunked reads the trailer section that ends a chunked body (turnout
// forwards no request trailers) and gives back what the bufio.Reader read
// beyond it.
func (b *body) endChunked() error {
	br := b.br
	if err := ReadTrailer(br); err != nil {
		return err
	}
	rest, _ := br.Peek(br.Buffered())
	b.c.unread(rest)
	br.Reset(nil)
	brPool.Put(br)
	b.br = nil
	return io.EOF
}

// Close marks the body closed; the rest is drained after the handler, as
// net/http does.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	if !b.sawEOF && b.err == nil {
		b.drainLocked()
	}
	b.closed = true
	return nil
}

// drain reads and discards up to maxPostHandlerRead bytes of what the
// handler left unread, and reports whether the body is then complete.
func (b *body) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.drainLocked()
		b.closed = true
	}
	return b.sawEOF
}

func (b *body) drainLocked() {
	if b.sawEOF || b.err != nil || b.n > maxPostHandlerRead {
		return
	}
	// A body announced with 100-continue and not yet asked for is not
	// coming: the connection closes instead.
	if b.expect {
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	for total := 0; total <= maxPostHandlerRead; {
		n, err := b.readLocked(buf)
		total += n
		if err != nil {
			return
		}
	}
}
