package origin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The https slow path: requests to https instances go through net/http's
// Transport, which brings TLS session reuse and certificate checks at the
// price of its per-connection goroutines (roughly half the throughput of the
// fast path). The header policy is the same as the fast path's; 1xx interim
// responses other than 100 Continue are not forwarded on this path.

func (p *Pool) newStdTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never the environment's HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: p.dialTimeout, Resolver: p.resolver}).DialContext,
		TLSClientConfig:       p.tlsConfig,
		TLSHandshakeTimeout:   p.dialTimeout,
		ResponseHeaderTimeout: p.responseHeader,
		MaxIdleConnsPerHost:   p.maxIdle,
		IdleConnTimeout:       idleTimeout,
		DisableCompression:    true, // pass Accept-Encoding and bodies through untouched
	}
}

// clientTLS is the TLS config for dialling in (WebSocket path).
func (p *Pool) clientTLS(in *instance) *tls.Config {
	cfg := &tls.Config{}
	if p.tlsConfig != nil {
		cfg = p.tlsConfig.Clone()
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(in.addr)
		if err != nil {
			host = in.addr
		}
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

func (p *Pool) roundTripStd(r *http.Request, in *instance) (*Response, error) {
	ctx := r.Context()
	deadline, _ := p.deadlines(ctx, time.Now())
	ctx, cancel := context.WithDeadline(ctx, deadline)

	var target strings.Builder
	target.WriteString(in.prefix)
	path := r.URL.EscapedPath()
	if path == "" || path == "*" {
		path = "/"
	}
	target.WriteString(path)
	out := &http.Request{
		Method:     r.Method,
		URL:        &url.URL{Scheme: "https", Host: in.host, Opaque: target.String(), RawQuery: r.URL.RawQuery, ForceQuery: r.URL.ForceQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, len(r.Header)+3),
		Host:       r.Host,
	}
	if p.hostFromOrigin || r.Host == "" {
		out.Host = in.host
	}
	if mode := requestBodyMode(r); mode != bodyNone {
		out.Body = r.Body
		out.ContentLength = r.ContentLength
		out.Trailer = r.Trailer
	} else if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		out.Body = http.NoBody
	}
	o := headerOut{h: out.Header}
	p.writeRequestFields(&o, r, "")
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // no Go-http-client default
	}
	out = out.WithContext(ctx)

	sr, err := p.std.RoundTrip(out)
	if err != nil {
		cancel()
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, p.dialError(in, r.Context(), deadline, err)
		}
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			return nil, &Error{Kind: KindTimeout, Instance: in.url, Err: fmt.Errorf("round trip: overall timeout: %w", err)}
		}
		return nil, p.exchangeError(in, r.Context().Err(), "round trip", err)
	}
	in.connected()

	resp := newResponse(p, in, nil, r)
	resp.std, resp.stdCancel = sr, cancel
	resp.Status = sr.StatusCode
	dst := resp.Header
	conn := strings.Join(sr.Header["Connection"], ", ")
	for k, vs := range sr.Header {
		if isHopByHop(k) || (conn != "" && hasToken(conn, k)) {
			continue
		}
		for _, v := range vs {
			if validValue(v) {
				dst[k] = append(dst[k], v)
			}
		}
	}
	resp.hasBody = bodyAllowed(r.Method, sr.StatusCode)
	if _, ok := sr.Header["Content-Type"]; !ok && resp.hasBody {
		dst["Content-Type"] = nil
	}
	return resp, nil
}

// sendStd writes a slow-path response to w.
func (resp *Response) sendStd(w http.ResponseWriter) error {
	sr, in := resp.std, resp.in
	defer resp.stdCancel()
	defer sr.Body.Close()
	resp.writeHeader(w)
	if !resp.hasBody {
		return nil
	}
	dst := w.Header()
	streaming := sr.ContentLength < 0 || strings.HasPrefix(sr.Header.Get("Content-Type"), "text/event-stream")
	f := flusher{w: w}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, rerr := sr.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return abortResponse(w, in, &clientWriteError{err})
			}
			if streaming {
				if err := f.flush(); err != nil {
					return abortResponse(w, in, &clientWriteError{err})
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return abortResponse(w, in, readBodyError(rerr))
		}
	}
	for k, vs := range sr.Trailer {
		dst[http.TrailerPrefix+k] = append(dst[http.TrailerPrefix+k], vs...)
	}
	return nil
}
