package h1

import (
	"context"
	"sync"
)

// reqCtx is a request's context: cancelled when the handler returns, when
// the client hangs up while it runs, or when the server closes the
// connection, as net/http cancels a request's. It is one allocation where
// context.WithCancel is two, and it schedules AfterFunc callbacks itself:
// context.AfterFunc and every context derived from it (WithTimeout,
// WithCancel) use that method when the parent has it, so the origin call's
// "abort on cancel" and a route's timeout register a callback here instead
// of a child in a cancelCtx's map, and Done's channel is made only for
// whoever asks for it.
type reqCtx struct {
	context.Context // the connection's: values only, never cancelled

	mu   sync.Mutex
	done chan struct{} // made by the first Done
	err  error
	fns  []func() // AfterFunc callbacks; nil where stopped
	fns0 [2]func()
}

func newReqCtx(parent context.Context) *reqCtx {
	c := &reqCtx{Context: parent}
	c.fns = c.fns0[:0]
	return c
}

// closedChan is Done's channel for a context cancelled before anyone asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc arranges to call f in its own goroutine once the request is
// cancelled (at once if it is); stop reports whether it kept f from
// running. context.AfterFunc's contract.
func (c *reqCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	i := len(c.fns)
	c.fns = append(c.fns, f)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil || c.fns[i] == nil {
			return false
		}
		c.fns[i] = nil
		return true
	}
}

// cancel ends the context with context.Canceled; later calls do nothing.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for _, f := range fns {
		if f != nil {
			go f()
		}
	}
}

func (c *reqCtx) String() string { return "h1.requestContext" }
