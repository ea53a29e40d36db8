package edge

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// BenchmarkBodyTimeout measures what re-arming the read deadline before
// every body read costs: POSTs of a 64 KiB body over loopback keep-alive
// connections, read in full by the handler, with and without BodyTimeout.
func BenchmarkBodyTimeout(b *testing.B) {
	sink := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	})
	body := bytes.Repeat([]byte("x"), 64<<10)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", sink},
		{"body_timeout", BodyTimeout(sink, 30*time.Second)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &http.Server{Handler: bc.h}
			go srv.Serve(ln)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			url := "http://" + ln.Addr().String() + "/"
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			for b.Loop() {
				resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkTrackState measures what tracking connections for
// max_connections adds to each HTTP/1 request: the ConnState hook's two
// calls (active, then idle) and a read while idle, which marks the
// connection active again.
func BenchmarkTrackState(b *testing.B) {
	c := &conn{Conn: filled{}, l: newConnLimit(listenerHTTP, 10000)}
	p := make([]byte, 512)
	for b.Loop() {
		trackState(c, http.StateActive)
		trackState(c, http.StateIdle)
		c.Read(p)
	}
}

// filled is a connection whose reads always fill the buffer at once.
type filled struct{ net.Conn }

func (filled) Read(p []byte) (int, error) { return len(p), nil }

// BenchmarkIdleScan measures the scan that finds the connections idle the
// longest when a listener is full: 10,000 connections (the default
// max_connections), all idle, in random order. One scan serves
// evictBatch evictions.
func BenchmarkIdleScan(b *testing.B) {
	l := newConnLimit(listenerHTTP, 10000)
	now := mono()
	for i := range l.max {
		c := &conn{l: l, idx: i}
		c.state.Store(stIdle)
		c.proto.Store(protoHTTP1)
		c.idleSince.Store(now - int64((i*7919)%l.max)*int64(time.Millisecond))
		l.open = append(l.open, c)
	}
	for b.Loop() {
		l.ready = l.ready[:0]
		l.scanLocked(now)
	}
	if len(l.ready) != evictBatch || l.ready[0].key != now-int64(l.max-1)*int64(time.Millisecond) {
		b.Fatalf("scan found %d, the first idle since %d", len(l.ready), l.ready[0].key)
	}
}
