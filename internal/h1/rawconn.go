package h1

import (
	"errors"
	"net"
	"syscall"
)

// NotifyingRawConn is for connection wrappers that learn what a connection
// is doing from its Read (a listener's cap, an upgrade's quiesce): Server
// reads an idle connection through its syscall.RawConn, around Read. A
// wrapper's SyscallConn returns NotifyingRawConn(inner, hook): inner's raw
// connection, whose Read calls hook after each callback that is done (it
// read bytes, or met the end or an error), as a Read that returned.
func NotifyingRawConn(inner net.Conn, hook func()) (syscall.RawConn, error) {
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return nil, errors.New("h1: the connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return notifyingRawConn{rc, hook}, nil
}

type notifyingRawConn struct {
	syscall.RawConn
	hook func()
}

func (r notifyingRawConn) Read(f func(fd uintptr) bool) error {
	return r.RawConn.Read(func(fd uintptr) bool {
		if !f(fd) {
			return false
		}
		r.hook()
		return true
	})
}
