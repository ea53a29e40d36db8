package origin

// The HTTP/1.1 upstream client. net/http's Transport hands every exchange to
// a readLoop and a writeLoop goroutine per connection; at 10–20k requests a
// second on two cores those hand-offs, plus the http.Request/Response values
// it allocates, cost more than the proxying itself. Here the handler's
// goroutine does everything: take a keep-alive connection, write the request
// head straight into the connection's bufio.Writer, read and parse the
// response head from its bufio.Reader, stream the body, put the connection
// back. Only a request body is written from a second goroutine, so an origin
// that answers before reading the whole upload cannot deadlock the exchange.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	readBufferSize  = 8 << 10
	writeBufferSize = 4 << 10
	copyBufferSize  = 32 << 10
	// idleTimeout closes pooled connections unused for this long.
	idleTimeout = 90 * time.Second
)

// probeIdleAfter is how long a keep-alive connection may sit idle before it
// is checked for a close from the origin when taken from the pool (Pool has a
// copy so tests can change it).
const probeIdleAfter = time.Second

// copyBuffers holds 32 KiB buffers for body copies.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// afterFunc is context.AfterFunc, minus its own context and its entry in
// the parent's map of children when ctx schedules callbacks itself (the
// AfterFunc method context.AfterFunc looks for, which the HTTP/1.1
// server's request contexts have): the exchange's abort-on-cancel then
// costs one small allocation instead of four.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// aLongTimeAgo is a deadline that has passed: setting it unblocks any I/O.
var aLongTimeAgo = time.Unix(1, 0)

// upConn is one keep-alive connection to an instance, with its buffers and
// parse state, owned by one exchange at a time.
type upConn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	inst     *instance
	lastUsed time.Time
	expires  time.Time // from the origin's Keep-Alive timeout; zero = ours
	uses     int64     // requests it carried to the end
	// idleBefore is how long it sat idle before its current request.
	idleBefore time.Duration
	head       responseHead
	abort      func() // unblocks I/O; allocated once, handed to context.AfterFunc

	// rd and wd are the read and write deadlines last set on nc; zero when
	// unknown. They let setDeadlines skip most updates (see there).
	rd, wd time.Time
}

// setDeadlines gives nc the read and write deadlines, but leaves a deadline
// in place when it is at most slack earlier than asked. Under load a
// connection is reused every few milliseconds and its deadline, set one
// request ago, is nearly right; moving it costs a runtime timer update per
// request. The price is that a timeout may fire up to slack early; callers
// pass 1/64 of the timeout.
func (cc *upConn) setDeadlines(read, write time.Time, slack time.Duration) {
	okR := deadlineNear(cc.rd, read, slack)
	okW := deadlineNear(cc.wd, write, slack)
	switch {
	case okR && okW:
	case !okR && !okW && read.Equal(write):
		cc.nc.SetDeadline(read)
		cc.rd, cc.wd = read, write
	default:
		if !okR {
			cc.nc.SetReadDeadline(read)
			cc.rd = read
		}
		if !okW {
			cc.nc.SetWriteDeadline(write)
			cc.wd = write
		}
	}
}

// deadlineNear reports whether the deadline in place, have, fires no later
// than want and at most slack before it.
func deadlineNear(have, want time.Time, slack time.Duration) bool {
	return !have.IsZero() && !have.After(want) && want.Sub(have) <= slack
}

func newUpConn(in *instance, nc net.Conn) *upConn {
	cc := &upConn{
		nc:   nc,
		br:   bufio.NewReaderSize(nc, readBufferSize),
		bw:   bufio.NewWriterSize(nc, writeBufferSize),
		inst: in,
	}
	cc.abort = func() { cc.nc.SetDeadline(aLongTimeAgo) }
	return cc
}

func (cc *upConn) close() { cc.nc.Close() }

// get returns a pooled connection (reused = true) or dials a new one.
// fresh skips the pool. A connection is reused only while the origin's
// Keep-Alive timeout allows it, and only after a liveness probe when it sat
// idle past probeIdleAfter or when the request cannot be replayed
// (replayable false). Such a request also takes only a connection whose
// last response ended settleTime ago or more, so that an origin which
// closes after answering has had the time to say so (see the package doc).
func (in *instance) get(ctx context.Context, now, deadline time.Time, fresh, replayable bool) (cc *upConn, reused bool, err error) {
	for !fresh {
		if cc = in.take(now, replayable); cc == nil {
			break
		}
		if cc.expires.IsZero() || now.Before(cc.expires) {
			cc.idleBefore = now.Sub(cc.lastUsed)
			if replayable && cc.idleBefore < in.pool.probeIdleAfter {
				return cc, true, nil
			}
			if cc.alive() {
				return cc, true, nil
			}
			in.closedSilently(cc, now)
		}
		cc.close()
	}
	cc, err = in.dial(ctx, deadline)
	return cc, false, err
}

// take removes an idle connection from the pool and returns it, nil when
// there is none to take: the most recently used one, or for a request that
// cannot be replayed the most recently used one that is not at risk of a
// close (see silentCloses.risky).
func (in *instance) take(now time.Time, replayable bool) *upConn {
	in.idleMu.Lock()
	defer in.idleMu.Unlock()
	i := len(in.idle) - 1
	if !replayable {
		in.closes.forget(now)
		for i >= 0 && in.closes.risky(in.idle[i], now, in.pool) {
			i--
		}
	}
	if i < 0 {
		return nil
	}
	cc := in.idle[i]
	copy(in.idle[i:], in.idle[i+1:])
	in.idle[len(in.idle)-1] = nil
	in.idle = in.idle[:len(in.idle)-1]
	return cc
}

// alive checks a pooled connection for a close from the origin: an origin
// that closed it (after its answer, or at its idle timeout) has left an EOF
// to read. The check is one non-blocking peek (see peekAlive); a connection
// that passes can still race with a close that is on its way, which the
// stale-connection retry in Forward covers for replayable requests.
func (cc *upConn) alive() bool {
	if cc.br.Buffered() > 0 {
		return false // bytes nobody asked for: the stream is out of step
	}
	cc.rd = time.Time{} // peekAlive clears the read deadline
	return peekAlive(cc.nc)
}

// put returns a connection to the pool, or closes it when the pool is full
// or closed. It also closes the oldest idle connection if it has expired.
// keepAlive is the timeout the origin announced in its last response's
// Keep-Alive field, 0 if none.
func (in *instance) put(cc *upConn, keepAlive time.Duration) {
	now := time.Now() // when the response ended: the origin's idle clock starts
	cc.lastUsed = now
	cc.uses++
	cc.expires = time.Time{}
	if keepAlive > 0 {
		cc.expires = now.Add(reuseWindow(keepAlive))
	}
	p := in.pool
	in.idleMu.Lock()
	in.closes.survived(cc)
	cc.idleBefore = 0
	if p.closed.Load() || len(in.idle) >= p.maxIdle {
		in.idleMu.Unlock()
		cc.close()
		return
	}
	var expired *upConn
	if len(in.idle) > 0 && now.Sub(in.idle[0].lastUsed) > idleTimeout {
		expired = in.idle[0]
		copy(in.idle, in.idle[1:])
		in.idle[len(in.idle)-1] = nil
		in.idle = in.idle[:len(in.idle)-1]
	}
	in.idle = append(in.idle, cc)
	in.idleMu.Unlock()
	if expired != nil {
		expired.close()
	}
}

func (in *instance) closeIdle() {
	in.idleMu.Lock()
	idle := in.idle
	in.idle = nil
	in.idleMu.Unlock()
	for _, cc := range idle {
		cc.close()
	}
}

// dial connects to the instance within the dial timeout (and deadline). For
// https instances (WebSocket only; plain requests use the slow path) it also
// completes the TLS handshake.
func (in *instance) dial(ctx context.Context, deadline time.Time) (*upConn, error) {
	p := in.pool
	d := net.Dialer{Timeout: p.dialTimeout, Deadline: deadline, Resolver: p.resolver}
	nc, err := d.DialContext(ctx, "tcp", in.addr)
	if err != nil {
		return nil, err
	}
	if !in.tls {
		nc = wrapRawIO(nc)
	} else {
		cfg := p.clientTLS(in)
		tc := tls.Client(nc, cfg)
		hctx, cancel := context.WithTimeout(ctx, p.dialTimeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return newUpConn(in, nc), nil
}

// bodyMode says how the request body is framed upstream.
type bodyMode uint8

const (
	bodyNone bodyMode = iota
	bodyLength
	bodyChunked
)

func requestBodyMode(r *http.Request) bodyMode {
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		return bodyNone
	case r.ContentLength > 0:
		return bodyLength
	default:
		return bodyChunked
	}
}

// appendHead appends the request line and header to dst.
func (p *Pool) appendHead(dst []byte, r *http.Request, in *instance, mode bodyMode, upgrade string) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = appendTarget(dst, in.prefix, r.URL.EscapedPath(), r.URL.RawQuery, r.URL.RawQuery != "" || r.URL.ForceQuery)
	dst = append(dst, " HTTP/1.1\r\n"...)
	dst = p.appendHost(dst, in, r.Host)
	o := headerOut{b: dst}
	p.writeRequestFields(&o, r, upgrade)
	return appendBodyFraming(o.b, r.Method, mode, r.ContentLength)
}

// appendHost appends the Host field: the client's host, or the instance's
// for host_header: origin and when the client's is missing or unusable.
func (p *Pool) appendHost(dst []byte, in *instance, host string) []byte {
	dst = append(dst, "Host: "...)
	if p.hostFromOrigin || host == "" || !validValue(host) {
		dst = append(dst, in.host...)
	} else {
		dst = append(dst, host...)
	}
	return append(dst, "\r\n"...)
}

// appendBodyFraming appends the body's framing field and the empty line
// that ends the head.
func appendBodyFraming(dst []byte, method string, mode bodyMode, contentLength int64) []byte {
	switch mode {
	case bodyLength:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, contentLength, 10)
		dst = append(dst, "\r\n"...)
	case bodyChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	default:
		switch method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			// Many servers want a length on these even when it is zero.
			dst = append(dst, "Content-Length: 0\r\n"...)
		}
	}
	return append(dst, "\r\n"...)
}

// appendTarget appends the request target: the instance's path prefix,
// then the path exactly as escaped (the gateway normalised it; it is never
// re-cleaned here), then "?" and the raw query byte for byte when the
// client's target had one. Space and control bytes, which would break the
// request line, are percent-encoded.
func appendTarget(dst []byte, prefix, path, rawQuery string, hasQuery bool) []byte {
	switch {
	case path == "*" && prefix == "":
		dst = append(dst, '*')
	case path == "" || path == "*":
		dst = append(dst, prefix...)
		dst = append(dst, '/')
	default:
		dst = append(dst, prefix...)
		dst = appendURIPart(dst, path)
	}
	if hasQuery {
		dst = append(dst, '?')
		dst = appendURIPart(dst, rawQuery)
	}
	return dst
}

func appendURIPart(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			start = i + 1
		}
	}
	return append(dst, s[start:]...)
}

// bodyCopy streams r's body to the origin from its own goroutine.
type bodyCopy struct {
	done    chan error
	readEOF atomic.Bool // the client's body has been read to its end (or all of its Content-Length)
	// forced is set by finish before it cuts the copy short; own is set by
	// the copy when it failed before that, on its own (a broken client
	// body, an origin that stopped reading).
	forced, own atomic.Bool
}

func startBodyCopy(cc *upConn, r *http.Request, mode bodyMode) *bodyCopy {
	bc := &bodyCopy{done: make(chan error, 1)}
	go func() { bc.done <- bc.copy(cc, r, mode) }()
	return bc
}

// copy sends the body. On failure it closes the upstream connection: the
// origin must not take a truncated body for a complete one, and the response
// read in Forward must not wait for an answer that cannot come.
func (bc *bodyCopy) copy(cc *upConn, r *http.Request, mode bodyMode) error {
	err := bc.send(cc, r, mode)
	if err != nil {
		if !bc.forced.Load() {
			bc.own.Store(true)
		}
		cc.close()
	}
	return err
}

func (bc *bodyCopy) send(cc *upConn, r *http.Request, mode bodyMode) error {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	bw := cc.bw
	var sent int64
	for {
		n, rerr := r.Body.Read(buf)
		if n > 0 {
			sent += int64(n)
			if mode == bodyLength && sent >= r.ContentLength {
				if sent > r.ContentLength {
					return &clientBodyError{fmt.Errorf("request body longer than its Content-Length %d", r.ContentLength)}
				}
				// All of it is read, before the origin can have it
				// all: finish must not take the origin's answer for
				// an early one.
				bc.readEOF.Store(true)
			}
			if mode == bodyChunked {
				var b [20]byte
				bw.Write(strconv.AppendUint(b[:0], uint64(n), 16))
				bw.WriteString("\r\n")
			}
			bw.Write(buf[:n])
			if mode == bodyChunked {
				bw.WriteString("\r\n")
			}
			// Flush every read: the body streams at the client's pace.
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("write request body: %w", err)
			}
		}
		if rerr == io.EOF {
			bc.readEOF.Store(true)
			break
		}
		if rerr != nil {
			return &clientBodyError{rerr}
		}
	}
	if mode == bodyLength && sent != r.ContentLength {
		return &clientBodyError{fmt.Errorf("request body of %d bytes, Content-Length %d: %w", sent, r.ContentLength, io.ErrUnexpectedEOF)}
	}
	if mode == bodyChunked {
		bw.WriteString("0\r\n")
		for k, vs := range r.Trailer {
			if isHopByHop(k) || !validToken(k) {
				continue
			}
			for _, v := range vs {
				if validValue(v) {
					bw.WriteString(k)
					bw.WriteString(": ")
					bw.WriteString(v)
					bw.WriteString("\r\n")
				}
			}
		}
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write request body: %w", err)
	}
	return nil
}

// finish waits for the body goroutine. When the response ended before the
// client's body did (the origin answered early), it first unblocks both
// sides: the upstream conn is closed and the client's read deadline is set
// in the past, so the handler never returns while the goroutine still reads
// r.Body. It returns the goroutine's error and whether the conn survived;
// bc.own tells whether an error is the copy's own or finish's doing.
// markClose also tells the client, with Connection: close on w's header,
// when its connection is spent before the response was sent; Discard,
// which sends no response, passes false.
func (bc *bodyCopy) finish(cc *upConn, w http.ResponseWriter, responseDone, markClose bool) (error, bool) {
	if bc == nil {
		return nil, true
	}
	if !responseDone || !bc.readEOF.Load() {
		select {
		case err := <-bc.done:
			return err, true
		default:
		}
		bc.forced.Store(true)
		cc.close()
		// The client connection cannot carry another request after
		// this: its read deadline is spent and its body unread.
		if !responseDone && markClose {
			w.Header().Set("Connection", "close")
		}
		http.NewResponseController(w).SetReadDeadline(aLongTimeAgo)
		return <-bc.done, false
	}
	return <-bc.done, true
}
