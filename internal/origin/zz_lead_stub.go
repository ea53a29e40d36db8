// LEAD STUB: deleted when h/wire merges.
package origin

import (
	"net/netip"
	"time"

	"github.com/turnout/turnout/internal/h1"
)

type Wire struct{ in *instance }
type WirePhase int

const (
	WireConnect WirePhase = iota
	WireWrite
	WireResponseHead
)

func (p *Pool) PickWire() (w Wire, ok bool)                { return }
func (w Wire) Addr() netip.AddrPort                         { return netip.AddrPort{} }
func (w Wire) ID() uintptr                                  { return 0 }
func (w Wire) ConnectTimeout() time.Duration                { return 0 }
func (w Wire) ResponseHeaderTimeout() time.Duration         { return 0 }
func (w Wire) OverallTimeout() time.Duration                { return 0 }
func (w Wire) IdleTimeout(ka time.Duration) time.Duration   { return 0 }
func (w Wire) Connected()                                   {}
func (w Wire) Failed(p WirePhase, timeout bool, err error) *Error { return nil }
func (w Wire) AppendRequest(dst []byte, req *h1.Request, path string, rawQuery []byte, remote, id string) []byte {
	return dst
}

type WireResponse struct {
	Status        int
	ContentLength int64
	Chunked       bool
	Bodyless      bool
	UntilClose    bool
	KeepAlive     bool
	KeepAliveFor  time.Duration
}

var ErrIncomplete error

func ParseWireResponse(r *WireResponse, buf []byte, method string) (n int, err error) { return }
func (r *WireResponse) AppendFields(dst []byte) []byte                                 { return dst }

type ChunkScanner struct{}

func (s *ChunkScanner) Scan(b []byte) (n int, done bool, err error) { return }
