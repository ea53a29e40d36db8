package origin

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Host names for the event-loop path.
//
// The loops connect to an address; an instance named by a host name
// (http://legacy.internal:8080) gets one from a lookup made here, so that
// named origins are served by the loops as those at IP addresses are. The
// rules, each chosen so that the loop path never behaves otherwise than the
// goroutine path would:
//
//   - One resolver for both paths: the pool's (Options.Resolver,
//     net.DefaultResolver when nil). The goroutine path's dialers
//     (transport.go, std.go, health.go) look names up with it too, so both
//     see the same answers for the same name.
//   - PickWire never blocks and never resolves on the caller's goroutine.
//     Lookups run on a goroutine of their own, at most one at a time per
//     instance, bounded by the dial timeout, with a context that Close
//     cancels; Close waits for them. NewPool starts the first one, so the
//     address is usually there before the first request. An instance with
//     no usable address yet answers ok=false: the goroutine path serves the request, as it
//     did before names were resolved here, and a later pick uses the
//     result. (The loops hand such a request's client connection to the
//     goroutine server for good: a keep-alive client that came before the
//     first answer stays there until it reconnects.)
//   - Only a name that resolves to exactly one address (after Unmap; the
//     same address twice is one) goes to the loops. Several addresses, none,
//     a failed lookup or an address with a zone keep the instance on the
//     goroutine path: Go's dialer tries each address in turn when a
//     connect fails, and the loop makes one connect, so a name with several
//     addresses would get a different rulebook from the loop.
//   - A result is used for resolveEvery (10 s) after its lookup ended;
//     the first pick after that starts a refresh and goes on with the
//     address it has (stale-while-revalidate: no request leaves the loops
//     because the address aged). A refresh that finds no usable address
//     takes the instance off the loops until a later one finds one; a
//     failed lookup is tried again no sooner than resolveEvery later. DNS
//     TTLs are not consulted (net.Resolver does not report them), so a
//     changed address reaches the loops within about resolveEvery. The
//     goroutine path looks the name up on every dial, as it always has.
//   - The loops key their idle origin connections by Wire.Addr: when the
//     address changes, the connections to the old one are not reused and
//     close at their idle timeout.
//
// Go's resolver may finish an exchange abandoned by a cancelled lookup in
// the background, up to its own timeout (resolv.conf's, 5 s by default);
// that goroutine is Go's, not the pool's, and Close does not wait for it.

// resolveEvery is how long a lookup's result is used before a refresh.
const resolveEvery = 10 * time.Second

// wireDest is where the event-loop path connects to an instance, as last
// found: fixed for an IP literal or "localhost", a lookup's result for a
// name. It is never changed once published; a new result replaces it.
type wireDest struct {
	ap  netip.AddrPort
	ok  bool          // ap is usable (false: the lookup found no single address)
	at  time.Duration // when the lookup ended (Pool.since); 0 for a fixed address
	why string        // for the log, when !ok
}

// wireTarget returns where the event-loop path connects for addr
// ("host:port"): the address itself when the host is an IP literal or
// "localhost" (127.0.0.1; the goroutine path's resolver may also try ::1);
// else the host name to look up (name != "", ap holds the port); ok false
// when the loop cannot reach it at all (an address with a zone, a bad
// port).
func wireTarget(addr string) (ap netip.AddrPort, name string, ok bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return netip.AddrPort{}, "", false
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, "", false
	}
	if strings.EqualFold(host, "localhost") {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(pn)), "", true
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err == nil && ip.Zone() != "":
		return netip.AddrPort{}, "", false
	case err == nil:
		return netip.AddrPortFrom(ip.Unmap(), uint16(pn)), "", true
	case strings.Contains(host, "%"):
		return netip.AddrPort{}, "", false // a zone on something else
	}
	return netip.AddrPortFrom(netip.Addr{}, uint16(pn)), host, true
}

// since is the time since the pool was made, on the monotonic clock.
func (p *Pool) since() time.Duration { return time.Since(p.epoch) }

// wireDest returns where the event-loop path connects to in now, nil when
// it cannot. For a named instance it starts a lookup when there is no
// result yet or the result is resolveEvery old, and answers with the
// result it has meanwhile.
func (in *instance) wireDest() *wireDest {
	d := in.wire.Load()
	if in.name == "" {
		return d
	}
	if d == nil || in.pool.since()-d.at >= in.pool.resolveEvery {
		in.resolve()
	}
	if d == nil || !d.ok {
		return nil
	}
	return d
}

// resolve starts a lookup of in's name unless one is running or the pool
// is closed.
func (in *instance) resolve() {
	if !in.resolving.CompareAndSwap(false, true) {
		return
	}
	p := in.pool
	p.resolveMu.Lock()
	if p.resolveClosed {
		// in.resolving stays set: a closed pool looks nothing up, and
		// its picks stop trying at the CompareAndSwap.
		p.resolveMu.Unlock()
		return
	}
	p.resolveWG.Add(1)
	p.resolveMu.Unlock()
	go func() {
		defer p.resolveWG.Done()
		in.lookup()
	}()
}

// lookup looks in's name up and publishes the result.
func (in *instance) lookup() {
	p := in.pool
	ctx, cancel := context.WithTimeout(p.resolveCtx, p.dialTimeout)
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", in.name)
	cancel()
	if p.resolveCtx.Err() != nil {
		return // closed; in.resolving stays set
	}
	d := &wireDest{at: p.since()}
	if err != nil {
		d.why = err.Error()
	} else if ip, why := oneAddr(addrs); why != "" {
		d.why = why
	} else {
		d.ap, d.ok = netip.AddrPortFrom(ip, in.wirePort), true
	}
	old := in.wire.Swap(d)
	in.resolving.Store(false)
	switch {
	case d.ok && (old == nil || !old.ok || old.ap != d.ap):
		p.log.Info("origin instance resolved: the event loops connect to it", "instance", in.url, "addr", d.ap)
	case !d.ok && (old == nil || old.ok):
		p.log.Info("origin instance not served by the event loops", "instance", in.url, "reason", d.why)
	}
}

// oneAddr returns the one address of a lookup's answer (unmapped), or why
// there is none: no address, several, or a zone.
func oneAddr(addrs []netip.Addr) (netip.Addr, string) {
	var one netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case a.Zone() != "":
			return netip.Addr{}, fmt.Sprintf("resolves to %s, with a zone", a)
		case one.IsValid() && a != one:
			return netip.Addr{}, fmt.Sprintf("resolves to %d addresses (the goroutine path tries each in turn)", len(addrs))
		}
		one = a
	}
	if !one.IsValid() {
		return netip.Addr{}, "resolves to no address"
	}
	return one, ""
}

// stopResolving cancels the lookups and waits for them (Close).
func (p *Pool) stopResolving() {
	p.resolveMu.Lock()
	p.resolveClosed = true
	p.resolveMu.Unlock()
	p.resolveStop()
	p.resolveWG.Wait()
}
