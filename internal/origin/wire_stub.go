// PLACEHOLDER: replaced by h/wire's wire.go at merge

package origin

import "strings"

// Wire is one chosen instance of a pool, for a caller that drives the
// connection itself.
type Wire struct {
	p  *Pool
	in *instance
}

// PickWire chooses as RoundTrip does; ok=false when the event-loop path
// cannot reach the chosen instance.
func (p *Pool) PickWire() (w Wire, ok bool) {
	in := p.pick()
	if in.tls || !strings.HasPrefix(in.url, "http://") {
		return Wire{}, false
	}
	return Wire{p: p, in: in}, true
}
