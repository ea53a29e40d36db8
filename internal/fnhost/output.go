package fnhost

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// output reads an instance's stdout and stderr into its function's ring and
// knows which invocation each line belongs to.
//
// A runtime writes a line and then posts its response over another socket,
// so the response can arrive before the line is read from the pipe: closing
// the invocation's log at the response then loses the line, and the next
// invocation gets it (issue 13: 61–73 of 200 lines of a Node function were
// missing from LogType Tail). Timing cannot fix that; order can. turnout
// keeps its own copy of each pipe's write end and writes a marker line into
// the pipe — a nonce of the instance and a sequence number — at two moments:
//
//   - when it hands the runtime an invocation on /next (begin): the lines
//     after the marker belong to that invocation. The runtime has written
//     everything of the previous one before it asked for the next.
//   - when the invocation ends (sync): the runtime posted its result, was
//     killed or exited. The host waits until both readers have reached the
//     marker, then writes END and REPORT and takes the tail.
//
// A pipe is FIFO and a write(2) of at most PIPE_BUF bytes is atomic, so
// every write the runtime finished before it sent its request to the
// Runtime API is in the pipe ahead of the marker. (A write it makes from
// another thread at the same moment may land on either side, as on Lambda.)
// A partial line (no newline) written before a marker is closed as a line
// of its own. When the process exits, the readers are synced once more and
// turnout's write ends are closed, so a reader ends at EOF as before.
type output struct {
	ring     *logRing
	instance int
	streams  [2]*outStream
}

// outStream is one of an instance's output pipes.
type outStream struct {
	name   string // "stdout" or "stderr"
	r      *os.File
	prefix []byte // "\x00turnout-NONCE " starts a marker

	wmu sync.Mutex // serialises markers: seq order is pipe order
	w   *os.File   // turnout's write end; nil once the process exited
	seq uint64     // the last marker written

	mu       sync.Mutex
	owners   map[uint64]string // marker → the request id of the lines after it
	passed   uint64            // the last marker read
	eof      bool
	progress chan struct{} // closed and replaced when passed or eof change
}

// markerWait bounds a sync. The reader only has to catch up with at most a
// pipe's buffer (64 KiB), so this is never reached unless the ring is
// starved of CPU; the invocation's log may then miss its last lines.
const markerWait = 2 * time.Second

// newOutput makes the pipes of a new instance. The caller passes each
// stream's child end to the process, closes it after the start, and then
// runs read for each stream.
func newOutput(ring *logRing, instance int) (o *output, childOut, childErr *os.File, err error) {
	var nonce [8]byte
	rand.Read(nonce[:])
	prefix := []byte("\x00turnout-" + hex.EncodeToString(nonce[:]) + " ")
	o = &output{ring: ring, instance: instance}
	var child [2]*os.File
	for i, name := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			o.discard(child[:i])
			return nil, nil, nil, err
		}
		// Our own write end is a second descriptor of the pipe, so the
		// child's end can be closed after the start as usual.
		mine, err := dupFile(w)
		if err != nil {
			r.Close()
			w.Close()
			o.discard(child[:i])
			return nil, nil, nil, err
		}
		child[i] = w
		o.streams[i] = &outStream{name: name, r: r, w: mine, prefix: prefix,
			owners: map[uint64]string{}, progress: make(chan struct{})}
	}
	return o, child[0], child[1], nil
}

// discard closes every pipe of an output whose readers never ran, and the
// child ends given.
func (o *output) discard(child []*os.File) {
	o.close()
	for _, s := range o.streams {
		if s != nil {
			s.r.Close()
		}
	}
	for _, f := range child {
		f.Close()
	}
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// close closes turnout's write ends.
func (o *output) close() {
	for _, s := range o.streams {
		if s == nil {
			continue
		}
		s.wmu.Lock()
		if s.w != nil {
			s.w.Close()
			s.w = nil
		}
		s.wmu.Unlock()
	}
}

// begin attributes the lines written from now on to request id.
func (o *output) begin(id string) {
	for _, s := range o.streams {
		s.mark(id, true)
	}
}

// sync returns once every line written before it was called is in the
// ring (or after markerWait).
func (o *output) sync() {
	var seqs [2]uint64
	for i, s := range o.streams {
		seqs[i] = s.mark("", false)
	}
	deadline := time.Now().Add(markerWait)
	for i, s := range o.streams {
		if seqs[i] != 0 {
			s.wait(seqs[i], deadline)
		}
	}
}

// exited syncs the readers a last time and closes turnout's write ends, so
// the readers end when the process's descendants let go of the pipes.
func (o *output) exited() {
	o.sync()
	o.close()
}

// mark writes a marker; when owned, the lines after it belong to id. It
// returns the marker's seq, or 0 when none could be written.
func (s *outStream) mark(id string, owned bool) uint64 {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.w == nil {
		return 0
	}
	s.seq++
	seq := s.seq
	if owned {
		s.mu.Lock()
		s.owners[seq] = id
		s.mu.Unlock()
	}
	line := strconv.AppendUint(append(make([]byte, 0, len(s.prefix)+21), s.prefix...), seq, 10)
	line = append(line, '\n')
	deadline := time.Now().Add(markerWait)
	for {
		_, err := s.w.Write(line)
		// A runtime may make its end of the pipe non-blocking (Node does),
		// which makes ours so too: wait for the reader to make room.
		if errors.Is(err, syscall.EAGAIN) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			return 0
		}
		return seq
	}
}

// wait returns once the reader has passed marker seq or reached EOF, or at
// deadline.
func (s *outStream) wait(seq uint64, deadline time.Time) {
	var t *time.Timer
	for {
		s.mu.Lock()
		done, ch := s.passed >= seq || s.eof, s.progress
		s.mu.Unlock()
		if done {
			return
		}
		if t == nil {
			t = time.NewTimer(time.Until(deadline))
			defer t.Stop()
		}
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

// read copies the stream into the ring line by line until EOF. Lines over
// 16 KiB are truncated with a marker (the rest is discarded).
func (o *output) read(s *outStream) {
	defer s.r.Close()
	br := bufio.NewReaderSize(s.r, maxLineBytes)
	cur := "" // init output has no request id
	emit := func(text string) {
		o.ring.add(LogLine{Time: time.Now(), RequestID: cur, Stream: s.name, Text: text, instance: o.instance})
	}
	// While the rest of an over-long line is discarded, its last bytes are
	// kept: a marker written after a partial line ends it.
	var discarding bool
	var last []byte
	for {
		b, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		switch {
		case discarding:
			last = keepLast(last, b, 2*len(s.prefix))
			if !full {
				discarding = false
				if i := bytes.Index(last, s.prefix); i >= 0 {
					s.reached(last[i+len(s.prefix):], &cur)
				}
				last = last[:0]
			}
		case full:
			emit(string(b) + truncateMarker)
			discarding = true
			last = keepLast(last[:0], b, 2*len(s.prefix))
		case len(b) > 0:
			line := trimEOL(b)
			if i := bytes.Index(line, s.prefix); i >= 0 {
				if i > 0 {
					emit(string(line[:i]))
				}
				s.reached(line[i+len(s.prefix):], &cur)
			} else {
				emit(string(line))
			}
		}
		if err != nil && !full {
			s.mu.Lock()
			s.eof = true
			close(s.progress)
			s.progress = make(chan struct{})
			s.mu.Unlock()
			return
		}
	}
}

// reached records that the reader reached the marker whose seq is in rest,
// and switches cur to the marker's owner.
func (s *outStream) reached(rest []byte, cur *string) {
	seq, err := strconv.ParseUint(string(trimEOL(rest)), 10, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Owners of markers lost in a discarded over-long line are applied too.
	best := uint64(0)
	for k, id := range s.owners {
		if k <= seq {
			if k >= best {
				best, *cur = k, id
			}
			delete(s.owners, k)
		}
	}
	if seq > s.passed {
		s.passed = seq
	}
	close(s.progress)
	s.progress = make(chan struct{})
}

// keepLast appends b to buf and keeps its last n bytes.
func keepLast(buf, b []byte, n int) []byte {
	buf = append(buf, b...)
	if d := len(buf) - n; d > 0 {
		buf = append(buf[:0], buf[d:]...)
	}
	return buf
}
