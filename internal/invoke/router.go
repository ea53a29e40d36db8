package invoke

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/turnout/turnout/internal/config"
)

// Hosted is the hosted-function pool as the Router sees it (fnhost.Host).
type Hosted interface {
	Invoker
	// Configure makes the hosted functions exactly fns (those with a Handler).
	Configure(fns []config.Function) error
}

// Router sends each invocation to where its function runs: the hosted pool
// for functions with a handler, AWS Lambda for functions with aws:. It is
// reconfigured with every deployment.
type Router struct {
	Hosted Hosted
	// NewAWS builds the AWS invoker for the aws: functions; nil means NewAWS.
	NewAWS func(ctx context.Context, fns []config.Function) (Invoker, error)

	mu     sync.RWMutex
	hosted map[string]bool
	aws    map[string]bool
	awsInv Invoker
}

// Configure applies a deployment's functions.
func (r *Router) Configure(ctx context.Context, fns []config.Function) error {
	var hosted, remote []config.Function
	for _, f := range fns {
		if f.AWS != nil {
			remote = append(remote, f)
		} else {
			hosted = append(hosted, f)
		}
	}
	var awsInv Invoker
	if len(remote) > 0 {
		newAWS := r.NewAWS
		if newAWS == nil {
			newAWS = func(ctx context.Context, fns []config.Function) (Invoker, error) { return NewAWS(ctx, fns) }
		}
		var err error
		if awsInv, err = newAWS(ctx, remote); err != nil {
			return fmt.Errorf("aws functions: %w", err)
		}
	}
	if len(hosted) > 0 && r.Hosted == nil {
		return fmt.Errorf("function %q needs the hosted-function pool, which this node does not run", hosted[0].Name)
	}
	if r.Hosted != nil {
		if err := r.Hosted.Configure(hosted); err != nil {
			return err
		}
	}
	h, a := map[string]bool{}, map[string]bool{}
	for _, f := range hosted {
		h[f.Name] = true
	}
	for _, f := range remote {
		a[f.Name] = true
	}
	r.mu.Lock()
	r.hosted, r.aws, r.awsInv = h, a, awsInv
	r.mu.Unlock()
	return nil
}

// Invoke runs req on the function's invoker.
func (r *Router) Invoke(ctx context.Context, req Request) (Response, error) {
	r.mu.RLock()
	hosted, remote, awsInv := r.hosted[req.Function], r.aws[req.Function], r.awsInv
	r.mu.RUnlock()
	switch {
	case hosted:
		return r.Hosted.Invoke(ctx, req)
	case remote:
		return awsInv.Invoke(ctx, req)
	}
	return Response{}, &Error{Kind: KindNotFound, Msg: fmt.Sprintf("Function not found: %s", req.Function)}
}

// Functions lists the configured function names, sorted.
func (r *Router) Functions() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for n := range r.hosted {
		out = append(out, n)
	}
	for n := range r.aws {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
