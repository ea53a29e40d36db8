package origin

import (
	"net/http"
	"net/netip"
	"strings"
)

// Header policy, shared by the fast HTTP/1.1 path and the https slow path.
//
// Request side, in this order:
//  1. drop the client's hop-by-hop fields (RFC 9110 section 7.6.1) and every
//     field its Connection header names;
//  2. drop the fields turnout owns (Host, Content-Length, X-Forwarded-*,
//     X-Request-Id) — they are written fresh below;
//  3. write turnout's own: X-Request-Id (always kept, even if the client's
//     Connection named it), X-Forwarded-For/-Proto/-Host.
//
// Because step 3 comes after step 1, a client sending
// "Connection: X-Forwarded-For" cannot strip what turnout sets. Response side:
// the origin's hop-by-hop fields and those its Connection names are dropped.

// isHopByHop reports whether canonical key is a hop-by-hop field.
func isHopByHop(key string) bool {
	switch key {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// ownedRequestField reports whether turnout writes canonical key itself.
func ownedRequestField(key string) bool {
	switch key {
	case "Host", "Content-Length", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Forwarded-Host", "X-Request-Id":
		return true
	}
	return false
}

// hasToken reports whether the comma-separated list s contains token,
// compared case-insensitively, without allocating.
func hasToken(s, token string) bool {
	for s != "" {
		var t string
		t, s, _ = strings.Cut(s, ",")
		if strings.EqualFold(trimOWS(t), token) {
			return true
		}
	}
	return false
}

// listsToken reports whether any of the values lists token.
func listsToken(values []string, token string) bool {
	for _, v := range values {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}

// headerOut receives the forwarded request fields: appended to the head
// being built on the fast path (and on the event-loop path, see Wire), into
// an http.Header on the slow path.
type headerOut struct {
	b []byte
	h http.Header
}

func (o *headerOut) add(key, value string) {
	if o.h != nil {
		o.h[key] = append(o.h[key], value)
		return
	}
	o.b = appendField(o.b, key, value)
}

// addList writes key with the values of prior joined by ", ", then last.
func (o *headerOut) addList(key string, prior []string, last string) {
	if len(prior) == 0 {
		o.add(key, last)
		return
	}
	if o.h != nil {
		o.h[key] = []string{strings.Join(prior, ", ") + ", " + last}
		return
	}
	o.b = append(o.b, key...)
	o.b = append(o.b, ": "...)
	for _, v := range prior {
		o.b = append(o.b, v...)
		o.b = append(o.b, ", "...)
	}
	o.b = append(o.b, last...)
	o.b = append(o.b, "\r\n"...)
}

// appendField appends one "key: value" line.
func appendField(dst []byte, key, value string) []byte {
	dst = append(dst, key...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// forwardedRequestField reports whether a request field of canonical name
// key is passed on as the client sent it (step 1 and 2 of the policy, but
// for the fields Connection names, which the caller checks).
func forwardedRequestField(key string) bool {
	return !isHopByHop(key) && !ownedRequestField(key) && validToken(key)
}

// writeRequestFields writes every forwarded request field except Host and the
// body framing fields, following the policy above. upgrade, when not empty,
// is the WebSocket upgrade being proxied.
func (p *Pool) writeRequestFields(o *headerOut, r *http.Request, upgrade string) {
	conn := r.Header["Connection"]
	for key, values := range r.Header {
		if !forwardedRequestField(key) {
			continue
		}
		if len(conn) > 0 && listsToken(conn, key) {
			continue
		}
		for _, v := range values {
			if validValue(v) {
				o.add(key, v)
			}
		}
	}
	if upgrade != "" {
		o.add("Connection", "Upgrade")
		o.add("Upgrade", upgrade)
	}
	for _, v := range r.Header["X-Request-Id"] {
		if validValue(v) {
			o.add("X-Request-Id", v)
		}
	}

	// X-Forwarded-*: believe the client's only from a trusted peer, and never
	// what its own Connection header asked to drop.
	peer, ok, trusted := p.peer(r.RemoteAddr)
	kept := func(key string) []string {
		if !trusted {
			return nil
		}
		vs := r.Header[key]
		if len(vs) == 0 || (len(conn) > 0 && listsToken(conn, key)) {
			return nil
		}
		for _, v := range vs {
			if !validValue(v) {
				return nil
			}
		}
		return vs
	}
	if ok {
		o.addList("X-Forwarded-For", kept("X-Forwarded-For"), peer)
	}
	var fw forwardedKept
	if vs := kept("X-Forwarded-Proto"); len(vs) > 0 {
		fw.proto, fw.hasProto = vs[0], true
	}
	if vs := kept("X-Forwarded-Host"); len(vs) > 0 {
		fw.host, fw.hasHost = vs[0], true
	}
	fw.add(o, r.TLS != nil, r.Host)
}

// forwardedKept holds the first X-Forwarded-Proto and -Host values of a
// trusted peer, when kept.
type forwardedKept struct {
	proto, host       string
	hasProto, hasHost bool
}

// add writes X-Forwarded-Proto and -Host: the kept values, else what
// turnout saw (the scheme, the request's host).
func (fw *forwardedKept) add(o *headerOut, tls bool, host string) {
	switch {
	case fw.hasProto:
		o.add("X-Forwarded-Proto", fw.proto)
	case tls:
		o.add("X-Forwarded-Proto", "https")
	default:
		o.add("X-Forwarded-Proto", "http")
	}
	if fw.hasHost {
		o.add("X-Forwarded-Host", fw.host)
	} else if host != "" && validValue(host) {
		o.add("X-Forwarded-Host", host)
	}
}

// peer returns the client's address from a RemoteAddr, whether there is
// one, and whether it is a trusted proxy whose X-Forwarded-* are believed.
func (p *Pool) peer(remote string) (host string, ok, trusted bool) {
	host, ok = peerHost(remote)
	return host, ok, ok && len(p.trusted) > 0 && p.isTrusted(host)
}

// peerHost returns the host part of a RemoteAddr ("1.2.3.4:5", "[::1]:5").
func peerHost(remote string) (string, bool) {
	i := strings.LastIndexByte(remote, ':')
	if i <= 0 {
		return "", false
	}
	host := remote[:i]
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, validValue(host) && !strings.ContainsAny(host, " ,")
}

func (p *Pool) isTrusted(host string) bool {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, pfx := range p.trusted {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// forwarded reports whether the response field of canonical name key is
// passed on to the client: it is not hop-by-hop, and the origin's
// Connection does not name it.
func (h *responseHead) forwarded(key string) bool {
	return !isHopByHop(key) && (h.connection == "" || !hasToken(h.connection, key))
}

// copyResponseFields adds the origin's end-to-end fields to dst. One
// allocation holds the value slices of all fields.
func copyResponseFields(dst http.Header, h *responseHead) {
	vals := make([]string, len(h.fields))
	for i, f := range h.fields {
		if !h.forwarded(f.key) {
			continue
		}
		if old, ok := dst[f.key]; ok {
			dst[f.key] = append(old, f.value)
			continue
		}
		vals[i] = f.value
		dst[f.key] = vals[i : i+1 : i+1]
	}
}

// websocketUpgrade returns the Upgrade value when r asks for a WebSocket
// upgrade ("Connection: upgrade" and "Upgrade: websocket"), else "".
// Any other upgrade (h2c, TLS) is not forwarded: the Upgrade field is
// hop-by-hop and dropped, and r is proxied as a plain request.
func websocketUpgrade(r *http.Request) string {
	up := r.Header["Upgrade"]
	if len(up) == 0 || r.Method != http.MethodGet || !listsToken(r.Header["Connection"], "upgrade") {
		return ""
	}
	if !listsToken(up, "websocket") {
		return ""
	}
	return "websocket"
}
