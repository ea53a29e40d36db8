//go:build unix

package origin

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// peekAlive reports whether nc is still open with nothing to read, using a
// non-blocking MSG_PEEK recv: EAGAIN means alive; EOF, data or an error mean
// the connection must not carry another request. (A read with a deadline in
// the past would not do: Go returns the timeout before trying the socket.)
func peekAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	nc.SetReadDeadline(time.Time{}) // an expired deadline would fail RawConn.Read
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(rerr, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return err == nil && alive
}
