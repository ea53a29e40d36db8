package config

import (
	"fmt"
	"runtime"
	"strconv"

	"go.yaml.in/yaml/v3"
)

var (
	functionKeys = []string{"handler", "args", "env", "timeout", "memory_mb", "concurrency", "min_instances",
		"idle_timeout", "init_timeout", "queue_size", "queue_timeout", "max_request_bytes", "max_response_bytes", "aws"}
	awsKeys = []string{"function", "region", "endpoint"}
)

// Function defaults, applied by WithDefaults.
const (
	defaultFunctionTimeout   = Duration(29e9)
	defaultMemoryMB          = 128
	minDefaultConcurrency    = 10
	defaultConcurrencyPerCPU = 4
	defaultQueueTimeout      = Duration(1e9)
	defaultConcurrencyText   = "omit it for the default, 4 per CPU and at least 10"
	defaultFunctionIdle      = Duration(300e9)
	defaultInitTimeout       = Duration(10e9)
	defaultMaxPayloadBytes   = 6 << 20 // 6 MiB, Lambda's synchronous payload limit
	defaultFunctionPayload   = "2.0"
	defaultFunctionRegion    = "us-east-1"
	maxFunctionConcurrency   = 10000
	functionExampleHosted    = `functions: {users: {handler: ./bin/users}}`
	functionExampleOnAWS     = `functions: {users: {aws: {function: users-prod, region: eu-west-1}}}`
	functionNeedsOneTarget   = "set handler: (an executable speaking the Lambda Runtime API, hosted by turnout) or aws: (a function on AWS Lambda), not both"
	functionPayloadVersions  = `payload must be "1.0" (REST API proxy format) or "2.0" (HTTP API format, the default)`
)

func (d *decoder) functions(v *yaml.Node) []Function {
	return named(d, v, "functions", "function", functionExampleHosted, d.function)
}

func (d *decoder) function(k, v *yaml.Node) Function {
	f := Function{Name: k.Value, Pos: d.pos(k)}
	what := "functions." + f.Name
	d.checkName(k, "function")
	v = deref(v)
	if isNull(v) || v.Kind != yaml.MappingNode {
		d.errorf(k, "%s needs settings: %s; like %s or %s", what, functionNeedsOneTarget, functionExampleHosted, functionExampleOnAWS)
		return f
	}
	var minPos *yaml.Node
	d.fields(v, what, functionKeys, func(key string, _, v *yaml.Node) {
		w := what + "." + key
		switch key {
		case "handler":
			f.Handler, _ = d.name(v, w)
		case "args":
			items, _ := d.list(v, w, `["--flag", "value"]`)
			for i, it := range items {
				if s, ok := d.str(it, w+"["+strconv.Itoa(i)+"]"); ok {
					f.Args = append(f.Args, s)
				}
			}
		case "env":
			es, ok := d.entries(v, w, "variable")
			if !ok {
				return
			}
			f.Env = make(map[string]string, len(es))
			for _, e := range es {
				if !isEnvName(e.k.Value) {
					d.errorf(e.k, "%s: %q is not an environment variable name: use letters, digits and '_', not starting with a digit", w, e.k.Value)
					continue
				}
				if s, ok := d.str(e.v, w+"."+e.k.Value); ok {
					f.Env[e.k.Value] = s
				}
			}
		case "timeout":
			d.duration(v, w, &f.Timeout, "the default 29s")
		case "memory_mb":
			d.intField(v, w, &f.MemoryMB, 1, "omit it for the default 128")
		case "concurrency":
			d.intField(v, w, &f.Concurrency, 1, defaultConcurrencyText)
			if f.Concurrency > maxFunctionConcurrency {
				d.errorf(v, "%s %d is more than %d instances on one machine: use an aws: function beyond that", w, f.Concurrency, maxFunctionConcurrency)
			}
		case "min_instances":
			minPos = v
			d.intField(v, w, &f.MinInstances, 0, "use 0 for none")
		case "idle_timeout":
			d.duration(v, w, &f.IdleTimeout, "the default 5m")
		case "init_timeout":
			d.duration(v, w, &f.InitTimeout, "the default 10s")
		case "queue_size":
			var n int
			d.intField(v, w, &n, 0, "use 0 to throttle at once, or omit it for as many as concurrency")
			if n > maxFunctionConcurrency {
				d.errorf(v, "%s %d is more than %d waiting invocations: lower it, or raise concurrency", w, n, maxFunctionConcurrency)
			}
			f.QueueSize = &n
		case "queue_timeout":
			d.duration(v, w, &f.QueueTimeout, "the default 1s, or set queue_size: 0 to throttle at once")
		case "max_request_bytes":
			if n, ok := d.integer(v, w, 64, 1, "omit it for the default 6 MiB"); ok {
				f.MaxRequestBytes = n
			}
		case "max_response_bytes":
			if n, ok := d.integer(v, w, 64, 1, "omit it for the default 6 MiB"); ok {
				f.MaxResponseBytes = n
			}
		case "aws":
			f.AWS = &AWSFunction{}
			fnGiven := false
			d.fields(v, w, awsKeys, func(key string, _, v *yaml.Node) {
				switch key {
				case "function":
					fnGiven = true
					f.AWS.Function, _ = d.name(v, w+".function")
				case "region":
					f.AWS.Region, _ = d.name(v, w+".region")
				case "endpoint":
					if s, ok := d.str(v, w+".endpoint"); ok && d.checkURL(v, w+".endpoint", s) {
						f.AWS.Endpoint = s
					}
				}
			})
			if !fnGiven {
				d.errorf(v, "%s has no function: name the Lambda function (name or ARN, optionally :qualifier), like %s", w, functionExampleOnAWS)
			}
		}
	})
	switch {
	case f.Handler == "" && f.AWS == nil:
		d.errorf(k, "%s has no target: %s", what, functionNeedsOneTarget)
	case f.Handler != "" && f.AWS != nil:
		d.errorf(k, "%s: %s", what, functionNeedsOneTarget)
	}
	if minPos != nil && f.MinInstances > orDefault(f.Concurrency, DefaultConcurrency()) {
		d.errorf(minPos, "%s.min_instances %d is more than its concurrency %d: lower it or raise concurrency", what, f.MinInstances, orDefault(f.Concurrency, DefaultConcurrency()))
	}
	return f
}

// validateFunctionRoutes checks that routes name declared functions, and that
// payload is only set, and valid, on function routes.
func (d *decoder) validateFunctionRoutes(c *Config) {
	fns := make(map[string]bool, len(c.Functions))
	names := make([]string, 0, len(c.Functions))
	for _, f := range c.Functions {
		fns[f.Name] = true
		names = append(names, f.Name)
	}
	for i, r := range c.Routes {
		rp := d.routes[i]
		what := "routes[" + strconv.Itoa(i) + "]"
		if r.Function != "" && !fns[r.Function] {
			if len(names) == 0 {
				d.errorAt(rp.function, fmt.Sprintf("%s.function: unknown function %q: no functions are declared; add it under functions:, like %s", what, r.Function, functionExampleHosted))
			} else {
				d.errorAt(rp.function, fmt.Sprintf("%s.function: unknown function %q: declared functions are %s", what, r.Function, nameList(names)))
			}
		}
		if rp.payload != (Pos{}) {
			switch {
			case r.Function == "" && (r.Canary == nil || r.Canary.Function == ""):
				d.errorAt(rp.payload, what+".payload applies to function routes (or a function canary) only: remove it, or route to a function")
			case r.Payload != "1.0" && r.Payload != "2.0":
				d.errorAt(rp.payload, fmt.Sprintf("%s.%s, got %q", what, functionPayloadVersions, r.Payload))
			}
		}
	}
}

// DefaultConcurrency is a hosted function's concurrency when none is set:
// 4 per CPU of this machine, and at least 10.
//
// Why: an instance serves one invocation at a time, and an API handler
// spends most of its time waiting on a database or another service, not
// on a CPU. One instance per CPU would leave the cores idle while every
// instance waits; 4 per CPU keeps them busy when handlers wait up to
// three quarters of the time, and bounds the processes (each tens of MB
// for Go, more for Node) a machine runs for one function. The floor of 10
// is the limit turnout had before, so no machine gets less than it did.
// Bursts above the limit wait in the queue (QueueSize, QueueTimeout)
// rather than get a 429 at once.
func DefaultConcurrency() int {
	return max(minDefaultConcurrency, defaultConcurrencyPerCPU*runtime.NumCPU())
}

// WithDefaults returns f with every documented default filled in. f is
// not changed and the copy shares nothing with it.
func (f Function) WithDefaults() Function {
	functionDefaults(&f)
	return f
}

// functionDefaults fills in a function's documented defaults.
func functionDefaults(f *Function) {
	f.Args = append([]string(nil), f.Args...)
	if f.Env != nil {
		env := make(map[string]string, len(f.Env))
		for k, v := range f.Env {
			env[k] = v
		}
		f.Env = env
	}
	if f.AWS != nil {
		a := *f.AWS
		a.Region = orDefault(a.Region, defaultFunctionRegion)
		f.AWS = &a
	}
	f.Timeout = orDefault(f.Timeout, defaultFunctionTimeout)
	f.MemoryMB = orDefault(f.MemoryMB, defaultMemoryMB)
	f.Concurrency = orDefault(f.Concurrency, DefaultConcurrency())
	queue := f.Concurrency
	if f.QueueSize != nil {
		queue = *f.QueueSize
	}
	f.QueueSize = &queue
	f.QueueTimeout = orDefault(f.QueueTimeout, defaultQueueTimeout)
	f.IdleTimeout = orDefault(f.IdleTimeout, defaultFunctionIdle)
	f.InitTimeout = orDefault(f.InitTimeout, defaultInitTimeout)
	f.MaxRequestBytes = orDefault(f.MaxRequestBytes, defaultMaxPayloadBytes)
	f.MaxResponseBytes = orDefault(f.MaxResponseBytes, defaultMaxPayloadBytes)
}
