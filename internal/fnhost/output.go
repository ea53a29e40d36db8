package fnhost

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// output reads an instance's stdout and stderr into its function's ring and
// knows which invocation each line belongs to.
//
// A runtime writes a line and then posts its response over another socket,
// so the response can arrive before a reader goroutine has got to the line:
// closing the invocation's log at the response then loses the line, and the
// next invocation gets it (issue 13: 61–73 of 200 lines of a Node function
// were missing from LogType Tail). Timing cannot fix that; order can. A
// pipe is FIFO and a write(2) of at most PIPE_BUF bytes is atomic, so every
// write the runtime finished before it sent its request to the Runtime API
// is in the pipe, or already read, when turnout gets the request. So at two
// moments the host drains each pipe itself, reading until it is empty under
// the lock its reader reads under (a line the reader has read is in the
// ring by then):
//
//   - when it hands the runtime an invocation on /next (begin): what is in
//     the pipes is the previous owner's; the lines after it belong to the
//     new invocation. The runtime has written everything of the previous
//     one before it asked for the next.
//   - when the invocation ends (sync): the runtime posted its result, was
//     killed or exited. Then the host writes END and REPORT and takes the
//     tail.
//
// (A write the runtime makes from another thread at the same moment may land
// on either side, as on Lambda.) A partial line (no newline) in the pipe at
// either moment is closed as a line of its own. Neither moment writes into
// the pipes or waits for a reader goroutine: two empty pipes cost one
// poll(2). (Until issue 20 the host wrote a marker line into
// each pipe and waited for both readers to reach it: four writes, four
// reader wake-ups and a wait on every invocation.)
type output struct {
	ring     *logRing
	instance int
	streams  [2]*outStream
}

// outStream is one of an instance's output pipes.
type outStream struct {
	name string // "stdout" or "stderr"
	r    *os.File
	rc   syscall.RawConn
	fd   int // r's descriptor (non-blocking), valid until closed

	mu         sync.Mutex // held while the pipe is read and its lines handled
	cur        string     // the request id of the lines read from now on
	part       []byte     // the start of a line whose newline has not come yet
	discarding bool       // the rest of an over-long line is being skipped
	closed     bool       // r is closed: fd is not to be used
	buf        []byte     // read buffer, readBuffer bytes once used
}

// newOutput makes the pipes of a new instance. The caller passes each
// stream's child end to the process, closes it after the start, and then
// runs read for each stream.
func newOutput(ring *logRing, instance int) (o *output, childOut, childErr *os.File, err error) {
	o = &output{ring: ring, instance: instance}
	var child [2]*os.File
	for i, name := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			o.discard(child[:i])
			return nil, nil, nil, err
		}
		s := &outStream{name: name, r: r, fd: -1}
		if s.rc, err = r.SyscallConn(); err == nil {
			// Control, unlike Fd, leaves the descriptor non-blocking.
			err = s.rc.Control(func(fd uintptr) { s.fd = int(fd) })
		}
		if err != nil {
			r.Close()
			w.Close()
			o.discard(child[:i])
			return nil, nil, nil, err
		}
		child[i] = w
		o.streams[i] = s
	}
	return o, child[0], child[1], nil
}

// discard closes every pipe of an output whose readers never ran, and the
// child ends given.
func (o *output) discard(child []*os.File) {
	for _, s := range o.streams {
		if s != nil {
			s.r.Close()
		}
	}
	for _, f := range child {
		f.Close()
	}
}

// begin attributes the lines written from now on to request id.
func (o *output) begin(id string) {
	o.lock()
	o.drainAll()
	for _, s := range o.streams {
		s.cur = id
	}
	o.unlock()
}

// sync returns once every line written before it was called is in the
// ring (what a runtime writes meanwhile may be too).
func (o *output) sync() {
	o.lock()
	o.drainAll()
	o.unlock()
}

func (o *output) lock() {
	for _, s := range o.streams {
		s.mu.Lock()
	}
}

func (o *output) unlock() {
	for _, s := range o.streams {
		s.mu.Unlock()
	}
}

// drainAll drains both pipes and closes a partial line in each; every
// s.mu is held. One poll(2) asks both
// whether they hold anything, so that a runtime that wrote nothing costs
// one system call at each edge of an invocation, not an ioctl per pipe.
func (o *output) drainAll() {
	var fds [2]unix.PollFd
	var polled [2]*outStream
	n := 0
	for _, s := range o.streams {
		if !s.closed {
			fds[n] = unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN}
			polled[n] = s
			n++
		}
	}
	if n > 0 {
		if _, err := unix.Poll(fds[:n], 0); err != nil {
			for i := range fds[:n] {
				fds[i].Revents = unix.POLLIN // cannot tell: look in each
			}
		}
	}
	for i, s := range polled[:n] {
		if fds[i].Revents != 0 {
			o.drain(s)
		}
	}
	for _, s := range o.streams {
		o.endLine(s)
	}
}

// exited syncs the readers a last time. They end when the process's
// descendants let go of the pipes.
func (o *output) exited() { o.sync() }

// drain reads what the pipe holds now into the ring (no more: a runtime
// that keeps writing cannot hold the host here); s.mu is held and the
// pipe is open.
func (o *output) drain(s *outStream) {
	n, err := unix.IoctlGetInt(s.fd, unix.TIOCINQ) // FIONREAD: the bytes in the pipe
	for err == nil && n > 0 {
		var m int
		m, err = syscall.Read(s.fd, s.buffer()[:min(n, readBuffer)])
		if m > 0 {
			o.consume(s, s.buf[:m])
			n -= m
		} else if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
}

// readBuffer is the most read at once, and what a reader reads before it
// lets a drain in.
const readBuffer = 32 << 10

func (s *outStream) buffer() []byte {
	if s.buf == nil {
		s.buf = make([]byte, readBuffer)
	}
	return s.buf
}

// readSome reads the pipe once; s.mu is held. It reports whether the
// pipe was empty (then the reader waits on the poller) or at its end or
// failing.
func (o *output) readSome(s *outStream) (empty, eof bool) {
	for {
		n, err := syscall.Read(s.fd, s.buffer())
		if n > 0 {
			o.consume(s, s.buf[:n])
			return false, false
		}
		switch {
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN):
			return true, false
		default:
			return false, true
		}
	}
}

// read copies the stream into the ring line by line until EOF, waiting on
// the runtime's poller while the pipe is empty. Lines over 16 KiB are
// truncated with a marker (the rest is discarded).
func (o *output) read(s *outStream) {
	eof := false
	for !eof {
		// The callback runs at once and again after each readiness
		// signal until it returns true: after one read, so that a drain
		// waits for at most one buffer's worth of lines.
		err := s.rc.Read(func(uintptr) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			var empty bool
			empty, eof = o.readSome(s)
			return !empty
		})
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	o.endLine(s)
	s.closed = true
	s.r.Close()
	s.mu.Unlock()
}

// consume splits b into lines for the ring; s.mu is held.
func (o *output) consume(s *outStream, b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if s.discarding {
			if i < 0 {
				return
			}
			s.discarding = false
			b = b[i+1:]
			continue
		}
		if i < 0 {
			if room := maxLineBytes - len(s.part); len(b) >= room {
				s.part = append(s.part, b[:room]...)
				o.emit(s, string(s.part)+truncateMarker)
				s.part, s.discarding = s.part[:0], true
				return
			}
			s.part = append(s.part, b...)
			return
		}
		line := b[:i+1]
		b = b[i+1:]
		if len(s.part) > 0 {
			s.part = append(s.part, line...)
			line = s.part
		}
		if len(line)-1 >= maxLineBytes {
			o.emit(s, string(line[:maxLineBytes])+truncateMarker)
		} else {
			o.emit(s, string(trimEOL(line)))
		}
		s.part = s.part[:0]
	}
}

// endLine closes a partial line as a line of its own, and ends the
// skipping of an over-long one; s.mu is held.
func (o *output) endLine(s *outStream) {
	if len(s.part) > 0 {
		o.emit(s, string(s.part))
		s.part = s.part[:0]
	}
	s.discarding = false
}

func (o *output) emit(s *outStream, text string) {
	o.ring.add(LogLine{Time: time.Now(), RequestID: s.cur, Stream: s.name, Text: text, instance: o.instance})
}
