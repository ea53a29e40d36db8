//go:build !linux

package origin

import "net"

// wrapRawIO is a no-op off Linux: connections use net.Conn's own I/O.
func wrapRawIO(nc net.Conn) net.Conn { return nc }
