package invoke

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/turnout/turnout/internal/config"
)

// Hosted is the hosted-function pool as the Router sees it (fnhost.Host).
type Hosted interface {
	Invoker
	// Configure makes the hosted functions exactly fns (those with a Handler).
	Configure(fns []config.Function) error
	// Configurations describes the hosted functions (ListFunctions).
	Configurations() []FunctionConfiguration
}

// Router sends each invocation to where its function runs: the hosted pool
// for functions with a handler, AWS Lambda for functions with aws:. It is
// reconfigured with every deployment.
type Router struct {
	Hosted Hosted
	// NewAWS builds the AWS invoker for the aws: functions; nil means NewAWS.
	NewAWS func(ctx context.Context, fns []config.Function) (Invoker, error)

	mu        sync.RWMutex
	hosted    map[string]bool
	aws       map[string]bool
	awsInv    Invoker
	awsConfig []FunctionConfiguration
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
	var awsConfig []FunctionConfiguration
	now := time.Now().UTC().Format(LastModifiedLayout)
	for _, f := range remote {
		a[f.Name] = true
		awsConfig = append(awsConfig, awsConfiguration(f, now))
	}
	r.mu.Lock()
	r.hosted, r.aws, r.awsInv, r.awsConfig = h, a, awsInv, awsConfig
	r.mu.Unlock()
	return nil
}

// awsConfiguration describes an aws: function as far as turnout knows it:
// its own name and ARN here, and where it runs in Description. Runtime,
// handler and memory are AWS's, which turnout does not ask for.
func awsConfiguration(f config.Function, lastModified string) FunctionConfiguration {
	region := f.AWS.Region
	if region == "" {
		region = arnRegion(f.AWS.Function)
	}
	if region == "" {
		region = "us-east-1"
	}
	return FunctionConfiguration{
		FunctionName:     f.Name,
		FunctionArn:      FunctionARN(region, f.Name),
		Description:      "invoked on AWS Lambda: " + f.AWS.Function,
		Timeout:          int((f.Timeout.D() + time.Second - 1) / time.Second),
		LastModified:     lastModified,
		Version:          "$LATEST",
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
	}
}

// Configurations describes every configured function, sorted by name: the
// hosted ones as the hosted pool reports them, the aws: ones as far as
// turnout knows them. The Invoke API answers ListFunctions and GetFunction
// with it.
func (r *Router) Configurations() []FunctionConfiguration {
	var out []FunctionConfiguration
	if r.Hosted != nil {
		out = r.Hosted.Configurations()
	}
	r.mu.RLock()
	out = append(out, r.awsConfig...)
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b FunctionConfiguration) int { return strings.Compare(a.FunctionName, b.FunctionName) })
	return out
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
