package h1

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type ctxKey struct{}

// reqCtx keeps context.Context's contract, with the standard library's own
// functions as the judge: cancellation reaches Done, Err, AfterFunc
// callbacks and derived contexts; a stopped callback never runs.
func TestReqCtx(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	c := newReqCtx(parent)
	if c.Value(ctxKey{}) != "v" {
		t.Error("values of the connection's context are lost")
	}
	if _, ok := c.Deadline(); ok {
		t.Error("a request context has no deadline")
	}
	if c.Err() != nil {
		t.Fatal("Err before cancel")
	}

	var ran atomic.Int32
	var wg sync.WaitGroup
	wg.Add(2)
	context.AfterFunc(c, func() { ran.Add(1); wg.Done() })
	stopped := context.AfterFunc(c, func() { ran.Add(100) })
	c.AfterFunc(func() { ran.Add(1); wg.Done() })
	if !stopped() {
		t.Error("stop before cancel should report that it stopped the call")
	}
	if stopped() {
		t.Error("a second stop should report false")
	}
	child, cancelChild := context.WithTimeout(c, time.Hour)
	defer cancelChild()
	early := c.Done()
	select {
	case <-early:
		t.Fatal("Done closed before cancel")
	default:
	}

	c.cancel()
	c.cancel() // idempotent
	<-early
	<-child.Done() // a derived context is cancelled with it
	if !errors.Is(child.Err(), context.Canceled) || !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err = %v, child %v", c.Err(), child.Err())
	}
	wg.Wait()
	if got := ran.Load(); got != 2 {
		t.Errorf("callbacks ran %d (want the two unstopped ones once each)", got)
	}

	// After cancellation: Done is closed, AfterFunc runs at once and its
	// stop reports false.
	late := make(chan struct{})
	stop := c.AfterFunc(func() { close(late) })
	<-late
	if stop() {
		t.Error("stop after the call ran should report false")
	}
	fresh := newReqCtx(parent)
	fresh.cancel()
	<-fresh.Done()
}

// Many goroutines register, stop and cancel at once (run with -race).
func TestReqCtxConcurrent(t *testing.T) {
	for range 200 {
		c := newReqCtx(context.Background())
		var calls atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stop := c.AfterFunc(func() { calls.Add(1) })
				if i%2 == 0 {
					stop()
				}
				<-c.Done()
			}()
		}
		c.cancel()
		wg.Wait()
		if calls.Load() > 8 {
			t.Fatalf("%d calls from 8 callbacks", calls.Load())
		}
	}
}
