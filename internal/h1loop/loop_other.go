//go:build !linux

package h1loop

import "net"

// Supported reports whether event loops are built here (Linux only).
const Supported = false

// Serve returns ErrUnsupported: use h1.Server.
func (s *Server) Serve(net.Listener) error { return ErrUnsupported }

func (s *Server) wakeAll() {}

func (s *Server) freed() {}

type loop struct{}
