package h1

import (
	"net"
	"syscall"
	"testing"
)

// TestNotifyingRawConn: a read through the wrapper reaches the socket,
// calls the hook once it is done (not while it would block), and
// allocates nothing.
func TestNotifyingRawConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	hooks := 0
	rc, err := NotifyingRawConn(server, func() { hooks++ })
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	var got []byte
	calls := 0
	read := func(fd uintptr) bool {
		calls++
		n, err := syscall.Read(int(fd), b[:])
		if err == syscall.EAGAIN {
			return false
		}
		got = append(got, b[:n]...)
		return true
	}
	// Nothing to read yet: the callback meets EAGAIN and waits; the hook
	// runs only after the byte arrives.
	go client.Write([]byte("x"))
	if err := rc.Read(read); err != nil {
		t.Fatal(err)
	}
	if string(got) != "x" || hooks != 1 {
		t.Fatalf("read %q, hooks %d; want \"x\", 1", got, hooks)
	}
	const n = 50
	if _, err := client.Write(make([]byte, n+1)); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 0, n+1) // room for every byte: the test's appends allocate nothing
	rc.Read(read)              // the data has arrived
	if allocs := testing.AllocsPerRun(n-1, func() { rc.Read(read) }); allocs != 0 {
		t.Errorf("a read through the wrapper allocates %v times", allocs)
	}
	if hooks != n+2 {
		t.Errorf("hooks %d after %d reads", hooks, n+2)
	}
}
