package main

import "net"

// listen opens every listening socket turnout serves on: public HTTP and
// HTTPS, admin and Invoke API. It is the one place sockets come from, so
// that a zero-downtime upgrade can hand inherited sockets over here instead
// of binding new ones: name ("public", "admin", …) tells apart sockets
// whose address is the same string, see handoff.go.
func listen(name, network, addr string) (net.Listener, error) {
	return handoverListen(name, network, addr)
}
