package h1

import (
	"errors"
	"net"
	"sync"
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
	r := &notifyingRawConn{RawConn: rc, hook: hook}
	r.cb = r.call
	return r, nil
}

// notifyingRawConn's Read passes one callback bound at creation (cb), not
// a closure per read: a read allocates nothing. Reads are serialised, as
// the socket's own RawConn serialises them.
type notifyingRawConn struct {
	syscall.RawConn
	hook func()

	mu sync.Mutex
	f  func(fd uintptr) bool // the current Read's callback, under mu
	cb func(fd uintptr) bool // r.call
}

func (r *notifyingRawConn) Read(f func(fd uintptr) bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f = f
	err := r.RawConn.Read(r.cb)
	r.f = nil
	return err
}

func (r *notifyingRawConn) call(fd uintptr) bool {
	if !r.f(fd) {
		return false
	}
	r.hook()
	return true
}
