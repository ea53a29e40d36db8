// LEAD STUB: deleted when h/wire merges (a rough stand-in to exercise the loop).
package origin

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"github.com/turnout/turnout/internal/h1"
)

type Wire struct{ in *instance }
type WirePhase int

const (
	WireConnect WirePhase = iota
	WireWrite
	WireResponseHead
)

func (p *Pool) PickWire() (w Wire, ok bool) {
	in := p.pick()
	if in.tls {
		return Wire{}, false
	}
	if _, err := netip.ParseAddrPort(in.addr); err != nil {
		return Wire{}, false
	}
	return Wire{in}, true
}
func (w Wire) Addr() netip.AddrPort                       { a, _ := netip.ParseAddrPort(w.in.addr); return a }
func (w Wire) ID() uintptr                                { return uintptr(unsafe.Pointer(w.in)) }
func (w Wire) ConnectTimeout() time.Duration              { return w.in.pool.dialTimeout }
func (w Wire) ResponseHeaderTimeout() time.Duration       { return w.in.pool.responseHeader }
func (w Wire) OverallTimeout() time.Duration              { return w.in.pool.overall }
func (w Wire) IdleTimeout(ka time.Duration) time.Duration { return 30 * time.Second }
func (w Wire) Connected()                                 { w.in.connected() }
func (w Wire) Failed(p WirePhase, timeout bool, err error) *Error {
	k := KindConnect
	if timeout {
		k = KindTimeout
	} else if p != WireConnect {
		k = KindProtocol
	}
	return &Error{Kind: k, Instance: w.in.url, Err: err}
}
func (w Wire) AppendRequest(dst []byte, req *h1.Request, path string, rawQuery []byte, remote, id string) []byte {
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = append(dst, w.in.prefix...)
	dst = append(dst, path...)
	if len(rawQuery) > 0 {
		dst = append(dst, '?')
		dst = append(dst, rawQuery...)
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, req.Host...)
	dst = append(dst, "\r\n"...)
	for _, f := range req.Fields {
		k := string(f.Name)
		ck := canon(k)
		if isHopByHop(ck) || ownedRequestField(ck) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	host, _ := peerHost(remote)
	dst = append(dst, "X-Forwarded-For: "+host+"\r\nX-Forwarded-Proto: http\r\nX-Request-Id: "+id+"\r\n\r\n"...)
	return dst
}

func canon(k string) string {
	b := []byte(k)
	up := true
	for i, c := range b {
		if up && 'a' <= c && c <= 'z' {
			b[i] = c - 32
		} else if !up && 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
		up = c == '-'
	}
	return string(b)
}

type WireResponse struct {
	Status        int
	ContentLength int64
	Chunked       bool
	Bodyless      bool
	UntilClose    bool
	KeepAlive     bool
	KeepAliveFor  time.Duration
	h             responseHead
}

var ErrIncomplete = errors.New("incomplete")

func ParseWireResponse(r *WireResponse, buf []byte, method string) (n int, err error) {
	for {
		i := bytes.Index(buf[n:], []byte("\r\n\r\n"))
		if i < 0 {
			return 0, ErrIncomplete
		}
		r.h = responseHead{}
		if err := parseHead(string(buf[n:n+i+4]), &r.h); err != nil {
			return 0, err
		}
		n += i + 4
		if r.h.status >= 100 && r.h.status < 200 {
			continue
		}
		break
	}
	h := &r.h
	r.Status, r.ContentLength, r.Chunked, r.KeepAlive, r.KeepAliveFor = h.status, h.contentLength, h.chunked, !h.close, h.keepAlive
	r.Bodyless = !bodyAllowed(method, h.status)
	r.UntilClose = !r.Bodyless && !r.Chunked && r.ContentLength < 0
	if r.UntilClose {
		r.KeepAlive = false
	}
	return n, nil
}
func (r *WireResponse) AppendFields(dst []byte) []byte {
	h := &r.h
	for _, f := range h.fields {
		if isHopByHop(f.key) || (h.connection != "" && hasToken(h.connection, f.key)) {
			continue
		}
		dst = append(dst, f.key+": "+f.value+"\r\n"...)
	}
	return dst
}

type ChunkScanner struct {
	st   int // 0 size line, 1 data, 2 data CRLF, 3 trailer
	left int64
	line []byte
}

func (s *ChunkScanner) Scan(b []byte) (n int, done bool, err error) {
	for n < len(b) {
		switch s.st {
		case 0, 3:
			i := bytes.IndexByte(b[n:], '\n')
			if i < 0 {
				s.line = append(s.line, b[n:]...)
				return len(b), false, nil
			}
			line := append(s.line, b[n:n+i]...)
			s.line = s.line[:0]
			n += i + 1
			line = bytes.TrimSuffix(line, []byte("\r"))
			if s.st == 3 {
				if len(line) == 0 {
					return n, true, nil
				}
				continue
			}
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = line[:j]
			}
			v, perr := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if perr != nil || v < 0 {
				return n, false, errors.New("bad chunk size")
			}
			if v == 0 {
				s.st = 3
			} else {
				s.st, s.left = 1, v
			}
		case 1:
			k := min(int64(len(b)-n), s.left)
			n += int(k)
			s.left -= k
			if s.left == 0 {
				s.st, s.left = 2, 2
			}
		case 2:
			k := min(int64(len(b)-n), s.left)
			n += int(k)
			s.left -= k
			if s.left == 0 {
				s.st = 0
			}
		}
	}
	return n, false, nil
}
