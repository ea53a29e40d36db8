// Package origintest holds stand-in legacy origins that misbehave the way
// real ones do, shared by the origin package's tests and the benchmarks that
// measure turnout against them.
package origintest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ClosingConn serves one connection the way legacy servers with a request
// limit or a short idle timeout do: it closes the connection without a word
// (no Connection: close) after perConn answers (0 = no limit), or once it has
// sat idle for idle (0 = never). Each request is answered 200 with the body
// answer returns for it.
func ClosingConn(perConn int, idle time.Duration, answer func(req *http.Request, body []byte) []byte) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for n := 0; perConn == 0 || n < perConn; n++ {
			if idle > 0 {
				c.SetReadDeadline(time.Now().Add(idle))
			}
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Time{})
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			b := answer(req, body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		}
	}
}
