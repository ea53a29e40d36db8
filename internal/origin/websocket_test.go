package origin

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/testkit"
)

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsEchoOrigin completes a WebSocket handshake by hijacking, then echoes
// every byte back (no framing is needed to test a byte splice).
func wsEchoOrigin(t *testing.T) string {
	return origin(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
			!strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "not an upgrade: "+r.Header.Get("Connection")+"/"+r.Header.Get("Upgrade"), http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+wsAccept(r.Header.Get("Sec-WebSocket-Key"))+"\r\nX-Origin: ws\r\n\r\n")
		io.Copy(c, brw.Reader)
	}).URL
}

func TestWebSocketEcho(t *testing.T) {
	p := newTestPool(t, config.Origin{Timeouts: config.OriginTimeouts{Overall: dur(100 * time.Millisecond)}}, Options{}, wsEchoOrigin(t))
	f := front(t, p)

	c := testkit.Dial(t, f.Listener.Addr().String(), 5*time.Second)
	defer c.Close()
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	// The first message rides in the same write as the handshake: it is
	// buffered by the gateway's server and must still reach the origin.
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: api.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+key+"\r\n\r\nearly|")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || resp.Header.Get("X-Origin") != "ws" {
		t.Fatalf("handshake answer %d %v", resp.StatusCode, resp.Header)
	}
	// Longer than the overall timeout: it must not apply after the upgrade.
	time.Sleep(200 * time.Millisecond)
	io.WriteString(c, "hello")
	buf := make([]byte, len("early|hello"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "early|hello" {
		t.Fatalf("echo %q, %v", buf, err)
	}
}

func TestWebSocketRefused(t *testing.T) {
	// An origin that answers the upgrade with a plain response: proxied as is.
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	})
	p := newTestPool(t, config.Origin{}, Options{}, o.URL)
	f := front(t, p)
	resp, body := rawExchange(t, f.Listener.Addr().String(), "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"+
		"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "no websockets") {
		t.Fatalf("got %d %q, want the origin's 403", resp.StatusCode, body)
	}
}
