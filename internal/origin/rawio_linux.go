package origin

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO does a plain-TCP upstream connection's reads and writes with raw
// syscalls inside syscall.RawConn callbacks. The socket is non-blocking, so
// a read or write never sleeps in the kernel: it moves bytes or returns
// EAGAIN, and then RawConn parks the goroutine on the netpoller exactly as
// net.Conn would (deadlines included). What it saves is Go's syscall
// bookkeeping around every call — entersyscall/exitsyscall, and sysmon
// retaking the P from a "long" syscall and waking another thread to run it,
// which on a loopback-heavy two-core box is several percent of the CPU.
type rawIO struct {
	net.Conn
	rc syscall.RawConn

	rbuf   []byte
	rn     int
	rerrno syscall.Errno
	readFn func(uintptr) bool

	wbuf    []byte
	wn      int
	werrno  syscall.Errno
	writeFn func(uintptr) bool
}

// wrapRawIO returns nc with raw-syscall I/O when it is a TCP connection.
func wrapRawIO(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	c := &rawIO{Conn: nc, rc: rc}
	c.readFn = c.doRead
	c.writeFn = c.doWrite
	return c
}

func (c *rawIO) doRead(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // park until readable
		}
		c.rn, c.rerrno = int(r), e
		return true
	}
}

func (c *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf = p
	err := c.rc.Read(c.readFn)
	c.rbuf = nil
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if c.rerrno != 0 {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", c.rerrno)}
	}
	if c.rn == 0 {
		return 0, io.EOF
	}
	return c.rn, nil
}

func (c *rawIO) doWrite(fd uintptr) bool {
	for len(c.wbuf) > 0 {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&c.wbuf[0])), uintptr(len(c.wbuf)))
		switch e {
		case 0:
			c.wn += int(r)
			c.wbuf = c.wbuf[r:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // park until writable, then go on
		default:
			c.werrno = e
			return true
		}
	}
	return true
}

func (c *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wbuf, c.wn, c.werrno = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n := c.wn
	c.wbuf = nil
	if err == nil && c.werrno != 0 {
		err = os.NewSyscallError("write", c.werrno)
	}
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return n, nil
}

// SyscallConn exposes the socket (peekAlive uses it).
func (c *rawIO) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }
