package fnhost

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/invoke"
)

// Options configure a Host.
type Options struct {
	// Logger receives the host's own events (instance starts, exits,
	// kills). Default slog.Default().
	Logger *slog.Logger
	// Region is reported to functions (AWS_REGION) and in ARNs. Default "us-east-1".
	Region string
	// LogRingBytes bounds each function's captured log. Default 1 MiB.
	LogRingBytes int
	// Isolation chooses how an instance's processes are kept together and
	// killed together. "" (the default) picks IsolationCgroup where the
	// machine allows it, else IsolationProcessGroup; IsolationCgroup makes
	// New fail where it is not available. See Isolation.
	Isolation Isolation
	// OnInit, when set, is told of every instance that started, with its
	// init duration (turnout serve feeds a metrics histogram). It runs on
	// the invocation's goroutine, so it must be quick.
	OnInit func(function string, d time.Duration)
}

// FunctionStats is a snapshot of one hosted function.
type FunctionStats struct {
	Function         string        `json:"function"`
	Instances        int           `json:"instances"` // running processes (busy + idle + starting)
	Busy             int           `json:"busy"`
	Idle             int           `json:"idle"`
	Concurrency      int           `json:"concurrency"` // the limit
	InUse            int           `json:"inUse"`       // invocations holding a slot
	QueueSize        int           `json:"queueSize"`   // invocations that may wait for a slot
	Queued           int           `json:"queued"`      // invocations waiting for a slot
	Invocations      uint64        `json:"invocations"`
	Errors           uint64        `json:"errors"` // FunctionError set, init failures, too-large responses
	Timeouts         uint64        `json:"timeouts"`
	Throttles        uint64        `json:"throttles"`
	ColdStarts       uint64        `json:"coldStarts"`
	LastInitDuration time.Duration `json:"lastInitDuration"`
	Isolation        Isolation     `json:"isolation"` // how its instances are kept whole and killed whole
	LogBytes         int           `json:"logBytes"`
	LogDropped       uint64        `json:"logDropped"` // lines a Follow consumer missed
}

// Host runs hosted functions. It implements invoke.Invoker.
type Host struct {
	log     *slog.Logger
	region  string
	ringMax int
	onInit  func(string, time.Duration)

	mu     sync.RWMutex
	fns    map[string]*function
	closed bool

	cgTree    *cgroupTree // nil without cgroup isolation
	useCgroup atomic.Bool // false once clone into a cgroup failed
	autoIso   bool        // Options.Isolation was "": may fall back
	trackOnce sync.Once
	tr        *tracker

	wg sync.WaitGroup // every goroutine the host starts
}

var _ invoke.Invoker = (*Host)(nil)

// New returns a Host with no functions; Configure adds them.
func New(opts Options) (*Host, error) {
	h := &Host{log: opts.Logger, region: opts.Region, ringMax: opts.LogRingBytes, onInit: opts.OnInit, fns: map[string]*function{}}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.region == "" {
		h.region = "us-east-1"
	}
	if h.ringMax <= 0 {
		h.ringMax = 1 << 20
	}
	switch opts.Isolation {
	case "", IsolationCgroup:
		h.autoIso = opts.Isolation == ""
		t, err := newCgroupTree()
		if err != nil && !h.autoIso {
			return nil, fmt.Errorf("fnhost: cgroup isolation unavailable: %w", err)
		}
		if err != nil {
			h.log.Info("hosted functions: each instance in its own process group, turnout a child subreaper (cgroup v2 unavailable)",
				"isolation", IsolationProcessGroup, "reason", err)
			break
		}
		h.cgTree = t
		h.useCgroup.Store(true)
		sweepStale(h.log)
		h.log.Info("hosted functions: each instance in its own cgroup, killed whole with cgroup.kill",
			"isolation", IsolationCgroup, "cgroup", t.dir)
	case IsolationProcessGroup:
		h.log.Info("hosted functions: each instance in its own process group, turnout a child subreaper",
			"isolation", IsolationProcessGroup)
	default:
		return nil, fmt.Errorf("fnhost: unknown isolation %q: use %q or %q", opts.Isolation, IsolationCgroup, IsolationProcessGroup)
	}
	return h, nil
}

// Isolation says how the host keeps each instance's processes together.
func (h *Host) Isolation() Isolation {
	if h.useCgroup.Load() {
		return IsolationCgroup
	}
	return IsolationProcessGroup
}

// cgroupDir is the host's cgroup directory, "" without one.
func (h *Host) cgroupDir() string {
	if h.cgTree == nil {
		return ""
	}
	return h.cgTree.dir
}

func (h *Host) tracker() *tracker {
	h.trackOnce.Do(func() { h.tr = newTracker(h.log) })
	return h.tr
}

// cgroupRefusal is whether a failed start may be the kernel refusing
// clone3 or CLONE_INTO_CGROUP (rather than, say, a missing handler or a
// passing shortage of memory or pids, which must not switch isolation).
func cgroupRefusal(err error) bool {
	for _, e := range []syscall.Errno{syscall.ENOSYS, syscall.EPERM, syscall.EINVAL, syscall.EOPNOTSUPP, syscall.EACCES, syscall.EBUSY} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// startIsolated starts the command newCmd makes in a cgroup of its own, or
// in the process-group fallback (then cg is nil). If the kernel refuses to
// start a process in a cgroup (clone3 blocked by a seccomp filter, say)
// while it starts it without one, the host falls back for good.
func (h *Host) startIsolated(function string, newCmd func() *exec.Cmd) (cmd *exec.Cmd, cg *cgroup, err error) {
	if !h.useCgroup.Load() {
		cmd = newCmd()
		return cmd, nil, cmd.Start()
	}
	cg, err = h.cgTree.create(function)
	if err != nil {
		return nil, nil, err
	}
	cmd = newCmd()
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = cg.fd
	err = cmd.Start()
	cg.closeFD()
	if err == nil {
		return cmd, cg, nil
	}
	rmdirCgroup(cg.dir)
	if !h.autoIso || !cgroupRefusal(err) {
		return nil, nil, err
	}
	cmd = newCmd()
	if err2 := cmd.Start(); err2 != nil {
		return nil, nil, err // not the cgroup's fault
	}
	if h.useCgroup.CompareAndSwap(true, false) {
		h.log.Warn("hosted functions: cannot start a process in a cgroup; falling back to a process group and a child subreaper",
			"isolation", IsolationProcessGroup, "error", err)
	}
	return cmd, nil, nil
}

// function is one configured function and its pool of instances.
type function struct {
	host  *Host
	cfg   config.Function // defaults applied
	arn   string
	ring  *logRing
	slots chan struct{} // one token per invocation in flight
	quit  chan struct{} // closed when drained

	configured time.Time // when this configuration was applied (LastModified)

	mu       sync.Mutex
	idle     []*instance // LIFO: the last one is the hottest
	all      map[*instance]struct{}
	starting int // warm-up spawns in flight
	seq      int
	draining bool

	queued atomic.Int64 // invocations waiting in acquire

	invocations, errors, timeouts, throttles, coldStarts atomic.Uint64
	lastInit                                             atomic.Int64
}

// withDefaults applies config's documented defaults, then guards against
// values a caller that bypassed config.Parse may have set.
func withDefaults(c config.Function) config.Function {
	c.Pos = config.Pos{}
	for _, p := range []*config.Duration{&c.Timeout, &c.IdleTimeout, &c.InitTimeout, &c.QueueTimeout} {
		*p = max(*p, 0)
	}
	c.MemoryMB = max(c.MemoryMB, 0)
	c.Concurrency = max(c.Concurrency, 0)
	c.MaxRequestBytes = max(c.MaxRequestBytes, 0)
	c.MaxResponseBytes = max(c.MaxResponseBytes, 0)
	c = c.WithDefaults()
	if *c.QueueSize < 0 {
		*c.QueueSize = 0
	}
	if c.MinInstances < 0 {
		c.MinInstances = 0
	}
	if c.MinInstances > c.Concurrency {
		c.MinInstances = c.Concurrency
	}
	return c
}

// Configure makes the hosted functions (those with a Handler) exactly fns.
// Unchanged functions keep their warm instances; changed ones get a new
// pool (the old one is drained: idle instances stop now, busy ones when
// their invocation ends); removed ones are drained. Each new pool starts
// its min_instances in the background. Logs carry over to a changed function.
func (h *Host) Configure(fns []config.Function) error {
	want := map[string]config.Function{}
	for _, f := range fns {
		if f.Handler == "" || f.AWS != nil {
			continue
		}
		if f.Name == "" {
			return errors.New("fnhost: function with a handler but no name")
		}
		if _, dup := want[f.Name]; dup {
			return fmt.Errorf("fnhost: function %q configured twice", f.Name)
		}
		want[f.Name] = withDefaults(f)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("fnhost: host is closed")
	}
	var drain, start []*function
	for name, old := range h.fns {
		c, ok := want[name]
		if ok && reflect.DeepEqual(c, old.cfg) {
			continue
		}
		drain = append(drain, old)
		delete(h.fns, name)
	}
	for name, c := range want {
		if _, ok := h.fns[name]; ok {
			continue
		}
		var ring *logRing
		for _, old := range drain {
			if old.cfg.Name == name {
				ring = old.ring
			}
		}
		if ring == nil {
			ring = newLogRing(h.ringMax)
		}
		fn := &function{
			host:  h,
			cfg:   c,
			arn:   invoke.FunctionARN(h.region, name),
			ring:  ring,
			slots: make(chan struct{}, c.Concurrency),
			quit:  make(chan struct{}),
			all:   map[*instance]struct{}{},
		}
		fn.configured = time.Now()
		h.fns[name] = fn
		start = append(start, fn)
	}
	h.mu.Unlock()
	for _, fn := range drain {
		fn.drain()
	}
	for _, fn := range start {
		h.wg.Add(1)
		go func() { defer h.wg.Done(); fn.janitor() }()
		fn.warm()
	}
	return nil
}

func (h *Host) function(name string) (*function, error) {
	h.mu.RLock()
	fn := h.fns[name]
	h.mu.RUnlock()
	if fn == nil {
		return nil, &invoke.Error{Kind: invoke.KindNotFound, Msg: "Function not found: " + name}
	}
	return fn, nil
}

// Invoke runs one invocation on an instance of req.Function.
func (h *Host) Invoke(ctx context.Context, req invoke.Request) (invoke.Response, error) {
	fn, err := h.function(req.Function)
	if err != nil {
		return invoke.Response{}, err
	}
	if q := req.Qualifier; q != "" && q != "$LATEST" {
		return invoke.Response{}, &invoke.Error{Kind: invoke.KindNotFound,
			Msg: fmt.Sprintf("Function not found: %s:%s (hosted functions have only $LATEST)", req.Function, q)}
	}
	if int64(len(req.Payload)) > fn.cfg.MaxRequestBytes {
		return invoke.Response{}, &invoke.Error{Kind: invoke.KindTooLarge,
			Msg: fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", fn.cfg.MaxRequestBytes)}
	}
	if len(req.Payload) > 0 && !req.PayloadChecked && !json.Valid(req.Payload) {
		return invoke.Response{}, &invoke.Error{Kind: invoke.KindInvalidRequest,
			Msg: "Could not parse request body into json: the payload is not valid JSON"}
	}
	if err := fn.acquire(ctx); err != nil {
		return invoke.Response{}, err
	}
	id := req.RequestID
	if id == "" {
		id = invoke.NewRequestID()
	}
	payload := req.Payload
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	inv := &invocation{
		id:            id,
		payload:       payload,
		traceID:       req.TraceID,
		clientContext: req.ClientContext,
		arn:           fn.arn,
		maxResponse:   fn.cfg.MaxResponseBytes,
		done:          make(chan result, 1),
	}
	// The invocation runs to completion even if ctx ends (see the package
	// doc). A warm one runs on the caller's goroutine, which leaves the rest
	// to a goroutine of its own only if ctx ends first (a goroutine per
	// invocation was one more hand-off on every request); a cold start
	// runs on a goroutine of its own from the start.
	if ctx.Done() == nil {
		resp, err := fn.run(ctx, nil, inv, req.LogTail)
		fn.release()
		return resp, err
	}
	if in := fn.idleInstance(); in != nil {
		resp, err := fn.run(ctx, in, inv, req.LogTail)
		if errors.Is(err, errDetached) {
			return invoke.Response{}, ctx.Err()
		}
		fn.release()
		return resp, err
	}
	type outcome struct {
		resp invoke.Response
		err  error
	}
	out := make(chan outcome, 1)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		resp, err := fn.run(context.Background(), nil, inv, req.LogTail)
		fn.release()
		out <- outcome{resp, err}
	}()
	select {
	case o := <-out:
		return o.resp, o.err
	case <-ctx.Done():
		return invoke.Response{}, ctx.Err()
	}
}

// errDetached is run's answer when ctx ended first: the invocation goes
// on without its caller, on a goroutine that releases its slot at the end.
var errDetached = errors.New("fnhost: the caller left; the invocation goes on")

// acquire takes a concurrency slot. At the limit it waits in the queue,
// if there is room (queue_size), for up to queue_timeout; a waiter whose
// ctx ends (the client went away) leaves the queue at once.
//
// The queue is the slots channel's own queue of blocked senders, which the
// runtime serves first come, first served: a freed slot goes straight to
// the longest waiter, so a newcomer cannot take it ahead of the queue.
func (fn *function) acquire(ctx context.Context) error {
	select {
	case fn.slots <- struct{}{}:
		return nil
	default:
	}
	size := *fn.cfg.QueueSize
	if fn.queued.Add(1) > int64(size) {
		fn.queued.Add(-1)
		fn.throttles.Add(1)
		msg := fmt.Sprintf("Rate Exceeded: function %s is at its concurrency limit (%d) and its queue (queue_size %d) is full", fn.cfg.Name, fn.cfg.Concurrency, size)
		if size == 0 {
			msg = fmt.Sprintf("Rate Exceeded: function %s is at its concurrency limit (%d)", fn.cfg.Name, fn.cfg.Concurrency)
		}
		return &invoke.Error{Kind: invoke.KindThrottled, Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", Msg: msg}
	}
	defer fn.queued.Add(-1)
	wait := fn.cfg.QueueTimeout.D()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case fn.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	fn.throttles.Add(1)
	return &invoke.Error{Kind: invoke.KindThrottled, Reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
		Msg: fmt.Sprintf("Rate Exceeded: function %s is at its concurrency limit (%d); no instance was free within queue_timeout %s",
			fn.cfg.Name, fn.cfg.Concurrency, wait)}
}

func (fn *function) release() { <-fn.slots }

// run executes inv on first, or an idle instance, or a new one. The caller
// holds a slot. When ctx ends before the result is in, run returns
// errDetached and the rest goes on without the caller, which then no
// longer holds the slot.
func (fn *function) run(ctx context.Context, first *instance, inv *invocation, wantTail bool) (invoke.Response, error) {
	fn.invocations.Add(1)
	return fn.attempt(ctx, first, inv, wantTail, 0)
}

// attempt runs inv from its nth try on (an instance may die before it
// takes the invocation: then up to two more).
func (fn *function) attempt(ctx context.Context, in *instance, inv *invocation, wantTail bool, n int) (invoke.Response, error) {
	for ; ; n++ {
		cold, initDur := false, time.Duration(0)
		if in == nil {
			var err error
			in, cold, initDur, err = fn.instance()
			if err != nil {
				fn.errors.Add(1)
				var f *initFailure
				if errors.As(err, &f) {
					return fn.initFailed(inv, f, wantTail), nil
				}
				return invoke.Response{}, err
			}
		}
		timeout := fn.cfg.Timeout.D()
		st := &running{in: in, inv: inv, cold: cold, initDur: initDur, wantTail: wantTail, attempt: n,
			start: time.Now(), timer: time.NewTimer(timeout)}
		inv.deadline = st.start.Add(timeout)
		resp, err, dispatched := fn.runOn(ctx, st, false)
		in = nil
		if errors.Is(err, errDetached) {
			return resp, err
		}
		if !dispatched && n < 2 {
			continue // the instance died before taking the invocation
		}
		if err != nil || resp.FunctionError != "" {
			fn.errors.Add(1)
		}
		return resp, err
	}
}

// idleInstance returns the most recently used idle instance, or nil.
func (fn *function) idleInstance() *instance {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	for len(fn.idle) > 0 {
		in := fn.idle[len(fn.idle)-1]
		fn.idle = fn.idle[:len(fn.idle)-1]
		if in.alive() {
			return in
		}
	}
	return nil
}

// instance returns an idle instance, or starts one (a cold start).
func (fn *function) instance() (in *instance, cold bool, initDur time.Duration, err error) {
	if in := fn.idleInstance(); in != nil {
		return in, false, 0, nil
	}
	fn.mu.Lock()
	fn.seq++
	seq := fn.seq
	fn.mu.Unlock()
	fn.coldStarts.Add(1)
	in, err = fn.start(seq)
	if err != nil {
		return nil, true, 0, err
	}
	return in, true, in.initDur, nil
}

// start spawns an instance and waits for its first /next. When the
// instance fails its init the error is an *initFailure.
func (fn *function) start(seq int) (*instance, error) {
	in, err := fn.spawn(seq)
	if err != nil {
		fn.host.log.Warn("function init failed", "function", fn.cfg.Name, "error", err)
		return nil, &initFailure{errorType: "Runtime.InvalidEntrypoint", msg: err.Error()}
	}
	fn.mu.Lock()
	fn.all[in] = struct{}{}
	draining := fn.draining
	fn.mu.Unlock()
	if draining {
		in.stop(0)
	}
	t := time.NewTimer(fn.cfg.InitTimeout.D())
	defer t.Stop()
	f := &initFailure{instance: in.seq}
	select {
	case <-in.ready:
		in.initDur = time.Since(in.spawned)
		fn.lastInit.Store(int64(in.initDur))
		if fn.host.onInit != nil {
			fn.host.onInit(fn.cfg.Name, in.initDur)
		}
		return in, nil
	case body := <-in.initErr:
		f.doc = body
	case <-in.exited:
		// A runtime that reports its init error exits right after.
		select {
		case body := <-in.initErr:
			f.doc = body
		default:
			f.errorType, f.msg = "Runtime.ExitError", "Runtime exited with error: "+in.exitErr.Error()
		}
	case <-t.C:
		f.errorType = "Sandbox.Timedout"
		f.msg = fmt.Sprintf("init timed out after %.2f seconds", fn.cfg.InitTimeout.D().Seconds())
	}
	in.kill()
	<-in.exited // and so its output is all in the ring
	if f.doc != nil {
		var d struct{ ErrorType string }
		json.Unmarshal(f.doc, &d)
		f.errorType, f.msg = cmp.Or(d.ErrorType, "Runtime.InitError"), string(f.doc)
	}
	fn.ring.add(LogLine{Time: time.Now(), Stream: "platform", instance: in.seq, Text: "INIT_REPORT Init Duration: " +
		fmtMS(time.Since(in.spawned)) + " Phase: init Status: error Error Type: " + f.errorType})
	f.output = fn.ring.instanceLines(in.seq)
	fn.host.log.Warn("function init failed", "function", fn.cfg.Name, "error", f.msg, "output", lastOutput(f.output, 10))
	return nil, f
}

// initFailure is an instance that did not start. Lambda reports a failed
// init to the invocation that waited for it as a function error, not as an
// API error: 200, X-Amz-Function-Error: Unhandled and, as the payload, the
// error document the runtime posted to /runtime/init/error, or one of
// Lambda's own (Runtime.ExitError, Sandbox.Timedout, Runtime.InvalidEntrypoint).
type initFailure struct {
	instance  int       // the instance's seq; 0 when it never ran
	errorType string    // the document's errorType
	doc       []byte    // the runtime's error document, if it posted one
	msg       string    // what went wrong, for Lambda's own documents and the host's log
	output    []LogLine // the instance's init output and INIT_REPORT
}

func (f *initFailure) Error() string { return f.errorType + ": " + f.msg }

// document is the invocation's payload: the runtime's document, or
// Lambda's own, which names the request ("RequestId: ... Error: ...").
func (f *initFailure) document(requestID string) []byte {
	if f.doc != nil {
		return f.doc
	}
	return errorJSON(f.errorType, "RequestId: "+requestID+" Error: "+f.msg)
}

// initFailed answers inv for an instance that failed its init, and logs
// the invocation's platform lines, as Lambda does.
func (fn *function) initFailed(inv *invocation, f *initFailure, wantTail bool) invoke.Response {
	id := inv.id
	now := time.Now()
	payload := f.document(id)
	fn.ring.add(LogLine{Time: now, RequestID: id, Stream: "platform", Text: "START RequestId: " + id + " Version: $LATEST"})
	if f.doc == nil {
		fn.ring.add(LogLine{Time: now, RequestID: id, Stream: "platform", Text: "RequestId: " + id + " Error: " + f.msg})
	}
	fn.ring.add(LogLine{Time: now, RequestID: id, Stream: "platform", Text: "END RequestId: " + id})
	fn.ring.add(LogLine{Time: now, RequestID: id, Stream: "platform", Text: fmt.Sprintf(
		"REPORT RequestId: %s\tDuration: 0.00 ms\tBilled Duration: 0 ms\tMemory Size: %d MB\tMax Memory Used: 0 MB\tStatus: error\tError Type: %s",
		id, fn.cfg.MemoryMB, f.errorType)})
	resp := invoke.Response{FunctionError: "Unhandled", ExecutedVersion: "$LATEST", Payload: payload}
	if wantTail {
		// The instance's own output first, then the invocation's lines.
		var b strings.Builder
		for _, l := range f.output {
			b.WriteString(l.Text)
			b.WriteByte('\n')
		}
		b.WriteString(fn.ring.tail(id))
		tail := b.String()
		if len(tail) > logTailBytes {
			tail = tail[len(tail)-logTailBytes:]
		}
		resp.LogTail = tail
	}
	return resp
}

// lastOutput formats the last n lines of output for the host's log.
func lastOutput(lines []LogLine, n int) string {
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if lines[i].Stream != "platform" {
			out = append(out, lines[i].Text)
		}
	}
	slices.Reverse(out)
	return strings.Join(out, "\n")
}

// running is one attempt of an invocation on an instance.
type running struct {
	in       *instance
	inv      *invocation
	cold     bool
	initDur  time.Duration
	wantTail bool
	attempt  int
	start    time.Time
	timer    *time.Timer // the function's timeout, from start
}

// runOn hands st's invocation to its instance (unless dispatched) and
// waits for its result. dispatched is false when the instance died before
// taking it (then it is gone and nothing was logged). When ctx ends
// first, runOn returns errDetached and detach finishes the attempt.
func (fn *function) runOn(ctx context.Context, st *running, dispatched bool) (resp invoke.Response, err error, _ bool) {
	cancel := ctx.Done()
	detached := false
	defer func() {
		if !detached {
			st.timer.Stop()
		}
	}()
	in, inv, start, wantTail, timer := st.in, st.inv, st.start, st.wantTail, st.timer
	id := inv.id
	if !dispatched {
		select {
		case w := <-in.next:
			in.deliver(w, inv)
			// The result most likely comes on the same connection: read
			// it here rather than wake its goroutine to read it and then
			// be woken by it.
			in.api.await(ctx, w, inv)
		case <-in.exited:
			return invoke.Response{}, nil, false
		case <-timer.C:
			// The runtime never came back for work: treat as a timeout.
			return fn.timedOut(in, inv, start, wantTail), nil, true
		case <-cancel:
			detached = true
			fn.detach(st, false)
			return invoke.Response{}, errDetached, false
		}
	}
	var r result
	select {
	case r = <-inv.done:
	case <-timer.C:
		select {
		case r = <-inv.done: // answered just in time
		default:
			return fn.timedOut(in, inv, start, wantTail), nil, true
		}
	case <-in.exited:
		select {
		case r = <-inv.done:
		default:
			inv.finish(result{})
			msg := fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %v", id, in.exitErr)
			fn.ring.add(LogLine{Time: time.Now(), RequestID: id, Stream: "platform", Text: msg})
			fn.report(in, id, start, st.cold, st.initDur)
			resp = invoke.Response{FunctionError: "Unhandled", ExecutedVersion: "$LATEST",
				Payload: errorJSON("Runtime.ExitError", msg)}
			if wantTail {
				resp.LogTail = fn.ring.tail(id)
			}
			return resp, nil, true
		}
	case <-cancel:
		detached = true
		fn.detach(st, true)
		return invoke.Response{}, errDetached, true
	}
	cold, initDur := st.cold, st.initDur
	// The runtime posted its result: what it wrote before is inv's.
	in.out.sync()
	fn.report(in, id, start, cold, initDur)
	fn.putIdle(in)
	if r.tooLarge {
		return invoke.Response{}, &invoke.Error{Kind: invoke.KindResponseTooLarge,
			Msg: fmt.Sprintf("function %s: response payload over %d bytes", fn.cfg.Name, fn.cfg.MaxResponseBytes)}, true
	}
	resp = invoke.Response{Payload: r.payload, ExecutedVersion: "$LATEST"}
	if cold {
		resp.InitDuration = max(initDur, time.Nanosecond)
	}
	if r.failed {
		resp.FunctionError = "Unhandled"
	}
	if wantTail {
		resp.LogTail = fn.ring.tail(id)
	}
	return resp, nil, true
}

// detach finishes an attempt whose caller left, on a goroutine of its own:
// the invocation runs to completion (or its timeout), is counted as usual,
// and its slot is released; its result goes nowhere.
func (fn *function) detach(st *running, dispatched bool) {
	fn.host.wg.Add(1)
	go func() {
		defer fn.host.wg.Done()
		resp, err, ok := fn.runOn(context.Background(), st, dispatched)
		switch {
		case !ok && st.attempt < 2:
			fn.attempt(context.Background(), nil, st.inv, st.wantTail, st.attempt+1)
		case err != nil || resp.FunctionError != "":
			fn.errors.Add(1)
		}
		fn.release()
	}()
}

func (fn *function) timedOut(in *instance, inv *invocation, start time.Time, wantTail bool) invoke.Response {
	inv.finish(result{})
	in.kill()
	in.out.sync()
	fn.timeouts.Add(1)
	now := time.Now().UTC()
	msg := fmt.Sprintf("%s %s Task timed out after %.2f seconds", now.Format("2006-01-02T15:04:05.000Z"), inv.id, fn.cfg.Timeout.D().Seconds())
	fn.ring.add(LogLine{Time: now, RequestID: inv.id, Stream: "platform", Text: msg})
	fn.report(in, inv.id, start, false, 0)
	fn.host.log.Warn("function timed out; instance killed", "function", fn.cfg.Name, "request_id", inv.id, "pid", in.pid)
	resp := invoke.Response{FunctionError: "Unhandled", TimedOut: true, ExecutedVersion: "$LATEST",
		Payload: errorJSON("Sandbox.Timedout", msg)}
	if wantTail {
		resp.LogTail = fn.ring.tail(inv.id)
	}
	return resp
}

// report writes END and REPORT lines.
func (fn *function) report(in *instance, id string, start time.Time, cold bool, initDur time.Duration) {
	d := time.Since(start)
	billed := (d + time.Millisecond - 1) / time.Millisecond
	now := time.Now()
	fn.ring.add(LogLine{Time: now, RequestID: id, Stream: "platform", Text: "END RequestId: " + id})
	// Appended rather than formatted: it is written on every invocation.
	b := make([]byte, 0, 160)
	b = append(b, "REPORT RequestId: "...)
	b = append(b, id...)
	b = append(b, "\tDuration: "...)
	b = appendMS(b, d)
	b = append(b, "\tBilled Duration: "...)
	b = strconv.AppendInt(b, int64(billed), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(fn.cfg.MemoryMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendInt(b, int64(in.maxMemoryMB()), 10)
	b = append(b, " MB"...)
	if cold {
		b = append(b, "\tInit Duration: "...)
		b = appendMS(b, initDur)
	}
	fn.ring.add(LogLine{Time: now, RequestID: id, Stream: "platform", Text: string(b)})
}

// appendMS appends d as fmtMS writes it.
func appendMS(b []byte, d time.Duration) []byte {
	b = strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 2, 64)
	return append(b, " ms"...)
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// putIdle returns a healthy instance to the pool, or stops it when the
// function is draining.
func (fn *function) putIdle(in *instance) {
	fn.mu.Lock()
	if fn.draining || !in.alive() {
		fn.mu.Unlock()
		fn.stopAsync(in)
		return
	}
	in.lastUsed = time.Now()
	fn.idle = append(fn.idle, in)
	fn.mu.Unlock()
}

func (fn *function) stopAsync(in *instance) {
	fn.host.wg.Add(1)
	go func() { defer fn.host.wg.Done(); in.stop(2 * time.Second) }()
}

// instanceExited forgets an instance whose process is gone.
func (fn *function) instanceExited(in *instance) {
	fn.mu.Lock()
	delete(fn.all, in)
	if i := slices.Index(fn.idle, in); i >= 0 {
		fn.idle = slices.Delete(fn.idle, i, i+1)
	}
	fn.mu.Unlock()
	if !in.stopping.Load() {
		fn.host.log.Info("function instance exited", "function", fn.cfg.Name, "pid", in.pid, "status", in.exitErr)
	}
}

// warm starts instances up to min_instances in the background.
func (fn *function) warm() {
	fn.mu.Lock()
	n := fn.cfg.MinInstances - len(fn.all) - fn.starting
	if fn.draining || n <= 0 {
		fn.mu.Unlock()
		return
	}
	fn.starting += n
	seqs := make([]int, n)
	for i := range seqs {
		fn.seq++
		seqs[i] = fn.seq
	}
	fn.mu.Unlock()
	for _, seq := range seqs {
		fn.host.wg.Add(1)
		go func() {
			defer fn.host.wg.Done()
			in, err := fn.start(seq)
			fn.mu.Lock()
			fn.starting--
			fn.mu.Unlock()
			if err != nil {
				return
			}
			fn.putIdle(in)
		}()
	}
}

// janitor stops instances idle past idle_timeout (above min_instances) and
// replaces warm instances that died.
func (fn *function) janitor() {
	idle := fn.cfg.IdleTimeout.D()
	every := min(max(idle/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-fn.quit:
			return
		case <-t.C:
		}
		var stop []*instance
		fn.mu.Lock()
		// Oldest first: idle[0] is the least recently used.
		for len(fn.idle) > 0 && len(fn.all) > fn.cfg.MinInstances+len(stop) &&
			time.Since(fn.idle[0].lastUsed) >= idle {
			stop = append(stop, fn.idle[0])
			fn.idle = fn.idle[1:]
		}
		fn.mu.Unlock()
		for _, in := range stop {
			fn.stopAsync(in)
		}
		fn.warm()
	}
}

// drain stops idle instances now; busy ones stop when their invocation ends.
func (fn *function) drain() {
	fn.mu.Lock()
	if fn.draining {
		fn.mu.Unlock()
		return
	}
	fn.draining = true
	idle := fn.idle
	fn.idle = nil
	fn.mu.Unlock()
	close(fn.quit)
	for _, in := range idle {
		fn.stopAsync(in)
	}
}

func (fn *function) stats() FunctionStats {
	fn.mu.Lock()
	s := FunctionStats{
		Function:    fn.cfg.Name,
		Instances:   len(fn.all),
		Idle:        len(fn.idle),
		Concurrency: fn.cfg.Concurrency,
		QueueSize:   *fn.cfg.QueueSize,
	}
	fn.mu.Unlock()
	s.InUse = len(fn.slots)
	s.Queued = int(fn.queued.Load())
	s.Busy = max(s.Instances-s.Idle, 0)
	s.Invocations = fn.invocations.Load()
	s.Errors = fn.errors.Load()
	s.Timeouts = fn.timeouts.Load()
	s.Throttles = fn.throttles.Load()
	s.ColdStarts = fn.coldStarts.Load()
	s.LastInitDuration = time.Duration(fn.lastInit.Load())
	s.Isolation = fn.host.Isolation()
	s.LogBytes = fn.ring.size()
	s.LogDropped = fn.ring.dropped.Load()
	return s
}

// Stats returns a snapshot per hosted function, sorted by name.
func (h *Host) Stats() []FunctionStats {
	h.mu.RLock()
	out := make([]FunctionStats, 0, len(h.fns))
	for _, fn := range h.fns {
		out = append(out, fn.stats())
	}
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b FunctionStats) int { return strings.Compare(a.Function, b.Function) })
	return out
}

// Logs returns the function's captured lines still in its ring, all of
// them or those of one request.
func (h *Host) Logs(function, requestID string) ([]LogLine, error) {
	fn, err := h.function(function)
	if err != nil {
		return nil, err
	}
	return fn.ring.snapshot(requestID), nil
}

// Follow streams the function's new lines until ctx ends or the host
// closes. A consumer that falls behind misses lines (FunctionStats.LogDropped).
func (h *Host) Follow(ctx context.Context, function string) (<-chan LogLine, error) {
	fn, err := h.function(function)
	if err != nil {
		return nil, err
	}
	return fn.ring.follow(ctx, fn.quit), nil
}

// Close stops every instance (SIGTERM to each process group, SIGKILL after
// 2 s) and waits for them and for the host's goroutines.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	fns := h.fns
	h.fns = map[string]*function{}
	h.mu.Unlock()
	var all []*instance
	for _, fn := range fns {
		fn.drain()
		fn.mu.Lock()
		for in := range fn.all {
			all = append(all, in)
		}
		fn.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, in := range all {
		wg.Add(1)
		go func() { defer wg.Done(); in.stop(2 * time.Second) }()
	}
	wg.Wait()
	h.wg.Wait()
	h.trackOnce.Do(func() {}) // h.tr is set, or never will be
	if h.tr != nil {
		h.tr.close()
	}
	if h.cgTree != nil {
		if err := h.cgTree.remove(); err != nil {
			h.log.Warn("function cgroups not removed", "cgroup", h.cgTree.dir, "error", err)
		}
	}
	return nil
}
