//go:build !unix

package origin

import "net"

// peekAlive cannot peek without blocking here; the stale-connection retry
// in Forward covers closed keep-alive connections instead.
func peekAlive(nc net.Conn) bool { return true }
