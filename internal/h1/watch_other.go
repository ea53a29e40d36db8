//go:build !linux

package h1

import "errors"

// poller is Linux's (watch_linux.go): elsewhere every watch is a goroutine.
type poller struct{}

var errConnClosed = errors.New("h1: the connection is closed")

func newPoller() (*poller, error) { return nil, nil }

func (p *poller) close() {}

type pollWatch struct{}

func newPollWatch(c *conn) *pollWatch { return &pollWatch{} }

func (w *pollWatch) add(p *poller) error     { return errors.New("no poller") }
func (w *pollWatch) current(gen uint32) bool { return false }
func (w *pollWatch) release(hijacked bool)   {}
func (w *pollWatch) peek() int               { return peekNone }
