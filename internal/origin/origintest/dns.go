package origintest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a DNS server on loopback UDP for tests of origins named by a host
// name: it answers A and AAAA questions for the names given to Set (an
// empty answer for the family a name has no address of), NXDOMAIN for every
// other name, and counts the questions. Resolver returns a *net.Resolver
// that asks it and nothing else.
type DNS struct {
	pc   net.PacketConn
	done chan struct{}

	mu    sync.Mutex
	names map[string][]netip.Addr // by canonical name (lower case, final dot)
	held  map[string]bool         // questions left unanswered
	asked map[string]int          // A questions by canonical name
	wake  chan struct{}           // closed and replaced when a question arrives
}

// StartDNS starts a DNS server on 127.0.0.1. Close stops it.
func StartDNS() (*DNS, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &DNS{
		pc:    pc,
		done:  make(chan struct{}),
		names: map[string][]netip.Addr{},
		held:  map[string]bool{},
		asked: map[string]int{},
		wake:  make(chan struct{}),
	}
	go d.serve()
	return d, nil
}

// Addr is the server's "ip:port".
func (d *DNS) Addr() string { return d.pc.LocalAddr().String() }

// Close stops the server and waits for it to stop.
func (d *DNS) Close() error {
	err := d.pc.Close()
	<-d.done
	return err
}

// Set makes name resolve to addrs from now on; with no addrs the name
// does not exist (NXDOMAIN).
func (d *DNS) Set(name string, addrs ...netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(addrs) == 0 {
		delete(d.names, canonical(name))
		return
	}
	d.names[canonical(name)] = append([]netip.Addr(nil), addrs...)
}

// Hold leaves the questions about name unanswered while hold is true (a
// server that does not answer: the lookup runs until its deadline).
func (d *DNS) Hold(name string, hold bool) {
	d.mu.Lock()
	d.held[canonical(name)] = hold
	d.mu.Unlock()
}

// Lookups counts the A questions about name so far: one per lookup of
// network "ip" or "ip4" (Go's resolver asks A and AAAA for "ip"), more
// when a resolver asks again after a question went unanswered.
func (d *DNS) Lookups(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[canonical(name)]
}

// Asked returns a channel closed when the next question (about any name)
// arrives.
func (d *DNS) Asked() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wake
}

// Resolver returns a resolver that asks d only (Go's own resolver,
// PreferGo, whatever the system's configuration names). A question a
// lookup abandons (its context ended) is abandoned at once: the
// connection is closed rather than left to its read deadline, so no
// goroutine of Go's resolver outlives a cancelled lookup.
func (d *DNS) Resolver() *net.Resolver {
	addr := d.Addr()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			c, err := dialer.DialContext(ctx, "udp", addr)
			if err != nil {
				return nil, err
			}
			// The resolver ends ctx when it is done with c too: a
			// second Close is harmless.
			context.AfterFunc(ctx, func() { c.Close() })
			return c, nil
		},
	}
}

func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (d *DNS) serve() {
	defer close(d.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			d.pc.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query, nil to leave it unanswered.
func (d *DNS) answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := canonical(q.Name.String())

	d.mu.Lock()
	if q.Type == dnsmessage.TypeA {
		d.asked[name]++
	}
	close(d.wake)
	d.wake = make(chan struct{})
	held := d.held[name]
	addrs, known := d.names[name]
	d.mu.Unlock()
	if held {
		return nil
	}

	rh := dnsmessage.Header{
		ID:                 h.ID,
		Response:           true,
		Authoritative:      true,
		RecursionDesired:   h.RecursionDesired,
		RecursionAvailable: true,
	}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil
	}
	if err := b.Question(q); err != nil {
		return nil
	}
	if err := b.StartAnswers(); err != nil {
		return nil
	}
	for _, a := range addrs {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			err = b.AResource(rr, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			err = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil
		}
	}
	resp, err := b.Finish()
	if err != nil {
		return nil
	}
	return resp
}
