package fnhost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// invocation is one request handed to an instance.
type invocation struct {
	id            string
	payload       []byte
	deadline      time.Time
	traceID       string
	clientContext string
	arn           string
	maxResponse   int64

	once sync.Once
	done chan result // buffered 1
}

type result struct {
	payload  []byte
	failed   bool // posted to /error
	tooLarge bool
}

func (inv *invocation) finish(r result) bool {
	ok := false
	inv.once.Do(func() { inv.done <- r; ok = true })
	return ok
}

// instance is one process of a function and its Runtime API listener.
type instance struct {
	fn   *function
	seq  int
	cmd  *exec.Cmd
	pid  int
	addr string
	api  *runtimeAPI

	next      chan *nextWaiter // a /next waiting for an invocation, buffered 1
	ready     chan struct{}    // closed on the first /next
	readyOnce sync.Once
	initErr   chan []byte // body of /runtime/init/error, buffered 1
	exited    chan struct{}
	exitErr   error // set before exited is closed

	mu      sync.Mutex
	cur     *invocation // the invocation the runtime holds
	waiting *nextWaiter // the connection an invocation awaits its result on

	cg     *cgroup     // nil: the process-group fallback (tracked by fn.host's tracker)
	reaped atomic.Bool // the leader has been waited for: in.pid may be reused

	out      *output // its stdout and stderr, read into the ring
	spawned  time.Time
	initDur  time.Duration
	lastUsed time.Time // guarded by fn.mu
	stopping atomic.Bool

	// memMB caches maxMemoryMB for memEvery, so that a busy instance does
	// not read /proc on every invocation (it dominated the warm path).
	memMB atomic.Int64
	memAt atomic.Int64 // unix nanoseconds of the last read
}

const memEvery = time.Second

// spawn starts a process for fn with its own Runtime API listener.
func (fn *function) spawn(seq int) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API listener: %w", err)
	}
	in := &instance{
		fn:      fn,
		seq:     seq,
		addr:    ln.Addr().String(),
		next:    make(chan *nextWaiter, 1),
		ready:   make(chan struct{}),
		initErr: make(chan []byte, 1),
		exited:  make(chan struct{}),
	}
	in.api = newRuntimeAPI(in, ln)

	handler, err := filepath.Abs(fn.cfg.Handler)
	if err != nil {
		ln.Close()
		return nil, err
	}
	// Pipes we own: exec then passes the files straight to the child and
	// Wait does not wait for grandchildren that keep them open.
	out, outW, errW, err := newOutput(fn.ring, seq)
	if err != nil {
		ln.Close()
		return nil, err
	}
	in.out = out
	env := fn.environ(in.addr, seq)
	in.spawned = time.Now()
	cmd, cg, err := fn.host.startIsolated(fn.cfg.Name, func() *exec.Cmd {
		cmd := exec.Command(handler, fn.cfg.Args...)
		cmd.Dir = filepath.Dir(handler)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Stdout, cmd.Stderr = outW, errW
		return cmd
	})
	outW.Close()
	errW.Close()
	if err != nil {
		ln.Close()
		out.discard(nil)
		return nil, fmt.Errorf("start %s: %w", fn.cfg.Handler, err)
	}
	in.cmd = cmd
	in.pid = cmd.Process.Pid
	in.cg = cg
	if cg == nil {
		fn.host.tracker().add(in)
	}

	h := fn.host
	h.wg.Add(4)
	go func() { defer h.wg.Done(); in.api.serve() }()
	go func() { defer h.wg.Done(); out.read(out.streams[0]) }()
	go func() { defer h.wg.Done(); out.read(out.streams[1]) }()
	go func() {
		defer h.wg.Done()
		in.exitErr = cmd.Wait()
		in.reaped.Store(true)
		if in.exitErr == nil {
			in.exitErr = errors.New("exit status 0")
		}
		// The sandbox goes with its leader: whatever it left running
		// (a setsid() or double-forked child) is killed and reaped.
		in.destroySandbox()
		// Whoever sees exited finds everything the process (and what it
		// left running, now killed) wrote in the ring.
		out.exited()
		fn.instanceExited(in)
		close(in.exited)
		in.api.close()
	}()
	return in, nil
}

func (fn *function) environ(api string, seq int) []string {
	c := &fn.cfg
	handler := c.Handler
	abs, _ := filepath.Abs(handler)
	env := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          api,
		"AWS_LAMBDA_FUNCTION_NAME":        c.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(c.MemoryMB),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"_HANDLER":                        filepath.Base(handler),
		"AWS_REGION":                      fn.host.region,
		"AWS_DEFAULT_REGION":              fn.host.region,
		"LAMBDA_TASK_ROOT":                filepath.Dir(abs),
		"LAMBDA_RUNTIME_DIR":              filepath.Dir(abs),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + c.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      fmt.Sprintf("%s/[$LATEST]turnout-%d-%d", time.Now().UTC().Format("2006/01/02"), os.Getpid(), seq),
		"AWS_EXECUTION_ENV":               "AWS_Lambda_provided.al2023",
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"PATH":                            os.Getenv("PATH"),
	}
	if env["PATH"] == "" {
		env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	// Lambda gives a function one vCPU per 1,769 MB of memory. Sizing the
	// Go scheduler the same way keeps an instance that serves one
	// invocation at a time from waking threads it cannot use: on the 2-core
	// benchmark machine it took the warm function path's p50 from about
	// 650 µs to 420 µs. A GOMAXPROCS in the function's env wins.
	env["GOMAXPROCS"] = strconv.Itoa((c.MemoryMB + 1768) / 1769)
	for k, v := range c.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// kill SIGKILLs the instance: its whole cgroup, or its process group
// (what left the group dies once the leader is reaped: destroySandbox).
func (in *instance) kill() {
	in.stopping.Store(true)
	in.signal(syscall.SIGKILL)
}

func (in *instance) signal(sig syscall.Signal) {
	if in.cg != nil && sig == syscall.SIGKILL {
		if err := in.cg.kill(); err == nil {
			return
		}
	}
	// Once the leader is reaped, its pid (and so its group id) may be
	// reused; what is left is destroySandbox's to kill.
	if !in.reaped.Load() {
		syscall.Kill(-in.pid, sig)
	}
}

// destroySandbox kills and reaps whatever the instance left running once
// its leader has exited, and removes its cgroup.
func (in *instance) destroySandbox() {
	if in.cg != nil {
		if err := in.cg.destroy(in.pid); err != nil {
			in.fn.host.log.Warn("function instance cgroup not removed", "function", in.fn.cfg.Name, "pid", in.pid, "error", err)
		}
		return
	}
	in.fn.host.tracker().release(in)
}

// stop asks the process group to exit (SIGTERM), SIGKILLs the instance
// after grace, and waits for it to be reaped with everything it started.
func (in *instance) stop(grace time.Duration) {
	in.stopping.Store(true)
	in.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-in.exited:
	case <-t.C:
	}
	// The leader may be gone while the group lives on.
	in.signal(syscall.SIGKILL)
	<-in.exited
}

func (in *instance) alive() bool {
	select {
	case <-in.exited:
		return false
	default:
		return !in.stopping.Load()
	}
}

// maxMemoryMB reads the process's peak resident set (VmHWM).
func (in *instance) maxMemoryMB() int {
	now := time.Now().UnixNano()
	if at := in.memAt.Load(); at != 0 && now-at < int64(memEvery) {
		return int(in.memMB.Load())
	}
	mb := in.readMaxMemoryMB()
	in.memMB.Store(int64(mb))
	in.memAt.Store(now)
	return mb
}

// readMaxMemoryMB reads the process's peak resident set (VmHWM).
func (in *instance) readMaxMemoryMB() int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(in.pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return (kb + 1023) / 1024
		}
	}
	return 0
}

// The Runtime API, as one instance sees it (served by runtimeAPI).

const apiPrefix = "/2018-06-01/runtime/"

func errorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}{msg, typ})
	return b
}

// errorDocument makes sure an error body is a JSON error document.
func errorDocument(body []byte, typ, defaultType string) []byte {
	if json.Valid(body) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return body
	}
	if typ == "" {
		typ = defaultType
	}
	return errorJSON(typ, string(body))
}
