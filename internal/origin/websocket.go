package origin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// roundTripUpgrade sends a WebSocket handshake on a fresh connection and
// reads the origin's answer. When it is 101, Send hijacks the client
// connection and splices bytes both ways until either side closes. The
// response-header timeout bounds the handshake; the overall timeout does not
// apply once the upgrade is done (a WebSocket lives as long as its peers
// want). An origin that refuses the upgrade has its response proxied as is.
// Inbound HTTP/2 cannot be hijacked (RFC 8441 WebSockets over HTTP/2 are not
// supported): such a request gets a KindProtocol error.
func (p *Pool) roundTripUpgrade(w http.ResponseWriter, r *http.Request, in *instance, upgrade string) (*Response, error) {
	ctx := r.Context()
	if err := ctx.Err(); err != nil {
		return nil, &Error{Kind: KindTimeout, Instance: in.url, Err: err}
	}
	if r.ProtoMajor != 1 {
		return nil, &Error{Kind: KindProtocol, Instance: in.url, Err: fmt.Errorf("websocket upgrade over HTTP/%d is not supported", r.ProtoMajor)}
	}
	now := time.Now()
	deadline, headDeadline := p.deadlines(ctx, now)
	cc, err := in.dial(ctx, deadline)
	if err != nil {
		return nil, p.dialError(in, ctx, deadline, err)
	}
	in.connected()
	stop := context.AfterFunc(ctx, cc.abort)
	fail := func(kind Kind, err error) error {
		stop()
		cc.close()
		if kind == 0 {
			return p.exchangeError(in, ctx.Err(), "websocket handshake", err)
		}
		return &Error{Kind: kind, Instance: in.url, Err: err}
	}
	cc.nc.SetDeadline(headDeadline)
	cc.bw.Write(p.appendHead(cc.bw.AvailableBuffer(), r, in, bodyNone, upgrade))
	if err := cc.bw.Flush(); err != nil {
		return nil, fail(0, err)
	}
	h := &cc.head
	for {
		if err := readHead(cc.br, h); err != nil {
			return nil, fail(0, err)
		}
		if h.status >= 200 || h.status == http.StatusSwitchingProtocols {
			break
		}
	}

	if h.status != http.StatusSwitchingProtocols {
		// Refused: Send proxies the answer, then drops the connection,
		// which asked for an upgrade and so cannot be reused.
		cc.nc.SetReadDeadline(deadline)
		resp := newResponse(p, in, w, r)
		resp.cc, resp.stop, resp.upgrade = cc, stop, upgrade
		resp.hasBody = bodyAllowed(r.Method, h.status)
		resp.setHead(h)
		return resp, nil
	}
	if !strings.EqualFold(h.upgrade, upgrade) || !hasToken(h.connection, "upgrade") {
		return nil, fail(KindProtocol, malformed("101 response upgrades to %q, want %q", h.upgrade, upgrade))
	}
	if !stop() {
		cc.close()
		return nil, &Error{Kind: KindTimeout, Instance: in.url, Err: fmt.Errorf("websocket handshake: %w", context.Cause(ctx))}
	}
	cc.nc.SetDeadline(time.Time{})
	resp := newResponse(p, in, w, r)
	resp.cc, resp.upgrade, resp.accepted = cc, upgrade, true
	resp.Status = h.status
	copyResponseFields(resp.Header, h)
	return resp, nil
}

// splice hands an accepted upgrade over: it hijacks w, writes the 101 and
// copies bytes both ways until either side closes.
func (resp *Response) splice(w http.ResponseWriter) error {
	in, cc, h := resp.in, resp.cc, &resp.cc.head
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		cc.close()
		return &Error{Kind: KindProtocol, Instance: in.url, Err: fmt.Errorf("hijack client connection: %w", err)}
	}
	client.SetDeadline(time.Time{})

	dst := w.Header()
	for k, vs := range resp.Header {
		dst[k] = append(dst[k], vs...)
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	dst.Write(brw)
	brw.WriteString("Connection: Upgrade\r\nUpgrade: ")
	brw.WriteString(h.upgrade)
	brw.WriteString("\r\n\r\n")
	if err := brw.Flush(); err != nil {
		client.Close()
		cc.close()
		return fmt.Errorf("origin %s: write 101 to client: %w", in.url, err)
	}

	// Splice. Either direction ending closes both connections, which ends
	// the other; both copies start with the bytes already buffered.
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(cc.nc, brw.Reader)
		client.Close()
		cc.close()
		done <- err
	}()
	_, err = io.Copy(client, cc.br)
	client.Close()
	cc.close()
	<-done
	_ = err // a closed connection is how a WebSocket normally ends
	return nil
}
