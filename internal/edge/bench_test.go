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
