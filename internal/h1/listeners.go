package h1

import (
	"net"
	"sync"
)

// Listeners is the set of listeners a server's Serve calls accept on, so
// that its Shutdown and Close can close them. Once closed it takes no
// more: a Serve that starts after Close is refused.
type Listeners struct {
	mu     sync.Mutex
	set    map[net.Listener]struct{}
	closed bool
}

// Add adds l; it reports false, leaving l alone, once Close has run.
func (ls *Listeners) Add(l net.Listener) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return false
	}
	if ls.set == nil {
		ls.set = make(map[net.Listener]struct{})
	}
	ls.set[l] = struct{}{}
	return true
}

// Remove forgets l.
func (ls *Listeners) Remove(l net.Listener) {
	ls.mu.Lock()
	delete(ls.set, l)
	ls.mu.Unlock()
}

// Close closes every listener added and refuses those added later. It
// returns the first error a listener's Close returned.
func (ls *Listeners) Close() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.closed = true
	var err error
	for l := range ls.set {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}
