package origin

import (
	"bufio"
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

// headerOut receives the forwarded request fields: straight into the
// upstream connection's bufio.Writer on the fast path, into an http.Header
// on the slow path.
type headerOut struct {
	bw *bufio.Writer
	h  http.Header
}

func (o *headerOut) add(key, value string) {
	if o.bw == nil {
		o.h[key] = append(o.h[key], value)
		return
	}
	o.bw.WriteString(key)
	o.bw.WriteString(": ")
	o.bw.WriteString(value)
	o.bw.WriteString("\r\n")
}

// addList writes key with the values of prior joined by ", ", then last.
func (o *headerOut) addList(key string, prior []string, last string) {
	if len(prior) == 0 {
		o.add(key, last)
		return
	}
	if o.bw == nil {
		o.h[key] = []string{strings.Join(prior, ", ") + ", " + last}
		return
	}
	o.bw.WriteString(key)
	o.bw.WriteString(": ")
	for _, v := range prior {
		o.bw.WriteString(v)
		o.bw.WriteString(", ")
	}
	o.bw.WriteString(last)
	o.bw.WriteString("\r\n")
}

// writeRequestFields writes every forwarded request field except Host and the
// body framing fields, following the policy above. upgrade, when not empty,
// is the WebSocket upgrade being proxied.
func (p *Pool) writeRequestFields(o *headerOut, r *http.Request, upgrade string) {
	conn := r.Header["Connection"]
	for key, values := range r.Header {
		if isHopByHop(key) || ownedRequestField(key) || !validToken(key) {
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
	peer, ok := peerHost(r.RemoteAddr)
	trusted := ok && len(p.trusted) > 0 && p.isTrusted(peer)
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
	if vs := kept("X-Forwarded-Proto"); len(vs) > 0 {
		o.add("X-Forwarded-Proto", vs[0])
	} else if r.TLS != nil {
		o.add("X-Forwarded-Proto", "https")
	} else {
		o.add("X-Forwarded-Proto", "http")
	}
	if vs := kept("X-Forwarded-Host"); len(vs) > 0 {
		o.add("X-Forwarded-Host", vs[0])
	} else if r.Host != "" && validValue(r.Host) {
		o.add("X-Forwarded-Host", r.Host)
	}
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

// copyResponseFields adds the origin's end-to-end fields to dst. One
// allocation holds the value slices of all fields.
func copyResponseFields(dst http.Header, h *responseHead) {
	vals := make([]string, len(h.fields))
	for i, f := range h.fields {
		if isHopByHop(f.key) || (h.connection != "" && hasToken(h.connection, f.key)) {
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
