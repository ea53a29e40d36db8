package fnhost

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Isolation says how the processes of one instance are kept together, so
// that a timeout, an exit or a shutdown kills every one of them, as Lambda
// tears down a whole sandbox. A process group alone is not enough: a child
// that calls setsid(), or is double-forked, leaves it.
type Isolation string

const (
	// IsolationCgroup runs each instance in its own cgroup v2, created
	// under the cgroup turnout runs in and entered at clone time
	// (CLONE_INTO_CGROUP, so not even the first instruction runs
	// outside it); the instance is killed with cgroup.kill, which no
	// process in it can escape. Needs Linux 5.14 or later and a writable
	// cgroup2 file system (root, or a delegated cgroup).
	IsolationCgroup Isolation = "cgroup"
	// IsolationProcessGroup is the fallback: each instance leads its own
	// process group, turnout is a child subreaper (PR_SET_CHILD_SUBREAPER),
	// so that orphaned descendants are re-parented to it rather than to
	// init, and it tracks each instance's descendants in /proc to kill
	// them with it and reap them.
	IsolationProcessGroup Isolation = "process-group"
)

// The cgroup path.
//
// Layout: <turnout's own cgroup>/turnout-<pid>-<n>/<function>-<m>, one
// directory per Host and one per instance under it. cgroup v2's "no
// internal processes" rule forbids a cgroup that has processes from
// enabling domain controllers (memory, cpu, io) for its children, so
// turnout cannot enable them where it lives. It needs none: cgroup.kill,
// cgroup.procs and cgroup.events are core files of every cgroup, with or
// without controllers. So turnout stays where it was started (moving
// itself into a leaf would change what systemd or a container runtime sees
// as the service's cgroup) and creates its sub-hierarchy beside itself.
// Per-instance memory limits would need controllers, and so turnout in a
// leaf cgroup of its own first; that is not done.

// cgroupTree is a Host's cgroup directory.
type cgroupTree struct {
	dir string
	seq atomic.Int64 // names instance cgroups
}

var cgroupHosts atomic.Int64

// CgroupAvailable returns nil when hosted function instances can run in
// cgroups of their own on this machine, or says why not.
func CgroupAvailable() error {
	t, err := newCgroupTree()
	if err != nil {
		return err
	}
	return t.remove()
}

// ownCgroupDir returns the directory of the cgroup v2 turnout runs in.
func ownCgroupDir() (string, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("cgroup v2: %w", err)
	}
	var root, mnt string
	for line := range strings.SplitSeq(string(mi), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(post); !ok || len(f) == 0 || f[0] != "cgroup2" {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 {
			root, mnt = unescapeMount(f[3]), unescapeMount(f[4])
			break
		}
	}
	if mnt == "" {
		return "", errors.New("cgroup v2: no cgroup2 file system is mounted")
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroup v2: %w", err)
	}
	own := ""
	for line := range strings.SplitSeq(string(cg), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			own = p
		}
	}
	if own == "" {
		return "", errors.New("cgroup v2: turnout is in no cgroup v2 (/proc/self/cgroup has no 0:: line)")
	}
	rel := own
	if root != "/" {
		switch {
		case own == root:
			rel = "/"
		case strings.HasPrefix(own, root+"/"):
			rel = own[len(root):]
		default:
			return "", fmt.Errorf("cgroup v2: turnout's cgroup %s is outside the mounted %s", own, root)
		}
	}
	return filepath.Join(mnt, rel), nil
}

var mountEscapes = strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)

func unescapeMount(s string) string { return mountEscapes.Replace(s) }

// newCgroupTree creates a Host's cgroup directory beside turnout's own
// cgroup, and checks it offers what instances need.
func newCgroupTree() (*cgroupTree, error) {
	parent, err := ownCgroupDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, fmt.Sprintf("turnout-%d-%d", os.Getpid(), cgroupHosts.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup v2: create %s: %w", dir, err)
	}
	t := &cgroupTree{dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		t.remove()
		return nil, fmt.Errorf("cgroup v2: %s has no cgroup.kill (Linux 5.14 or later needed): %w", dir, err)
	}
	if typ, err := os.ReadFile(filepath.Join(dir, "cgroup.type")); err != nil || strings.TrimSpace(string(typ)) != "domain" {
		t.remove()
		return nil, fmt.Errorf("cgroup v2: %s is a %q cgroup, not a domain: %v", dir, strings.TrimSpace(string(typ)), err)
	}
	return t, nil
}

// create makes an instance's cgroup and opens it for CLONE_INTO_CGROUP.
func (t *cgroupTree) create(function string) (*cgroup, error) {
	name := fmt.Sprintf("%s-%d", function, t.seq.Add(1))
	dir := filepath.Join(t.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("cgroup v2: open %s: %w", dir, err)
	}
	return &cgroup{dir: dir, id: "/" + filepath.Base(t.dir) + "/" + name, fd: fd}, nil
}

// remove kills whatever is left in the Host's cgroups and removes them.
func (t *cgroupTree) remove() error {
	return removeCgroupTree(t.dir)
}

func removeCgroupTree(dir string) error {
	os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	waitEmpty(dir, 5*time.Second)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			rmdirCgroup(filepath.Join(dir, e.Name()))
		}
	}
	return rmdirCgroup(dir)
}

var staleTree = regexp.MustCompile(`^turnout-(\d+)-\d+$`)

// sweepStale removes the cgroups of turnout processes that are gone (a
// crash, a SIGKILL), killing the function processes they left running.
func sweepStale(log *slog.Logger) {
	parent, err := ownCgroupDir()
	if err != nil {
		return
	}
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		m := staleTree.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		left := countProcs(dir)
		err := removeCgroupTree(dir)
		log.Warn("removed the function cgroups of a turnout that is gone", "cgroup", dir, "pid", pid, "killed", left, "error", err)
	}
}

func countProcs(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			n += len(readPids(p))
		}
		return nil
	})
	return n
}

// cgroup is one instance's cgroup.
type cgroup struct {
	dir string
	id  string // "/turnout-<pid>-<n>/<function>-<m>", the end of its path in /proc/<pid>/cgroup
	fd  int    // for SysProcAttr.CgroupFD; closed once the process started
}

func (c *cgroup) closeFD() {
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}

// kill SIGKILLs every process in the cgroup, at once and for good.
func (c *cgroup) kill() error {
	return os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
}

// destroy kills what is left in the cgroup once its leader exited, reaps
// the orphans that were re-parented to turnout, and removes the cgroup.
func (c *cgroup) destroy(leader int) error {
	c.closeFD()
	c.kill()
	if err := waitEmpty(c.dir, 5*time.Second); err != nil {
		return err
	}
	c.reapAdopted(leader)
	return rmdirCgroup(c.dir)
}

// reapAdopted waits for the processes of the cgroup (except the leader,
// which its exec.Cmd waits for) that died as children of turnout: orphans
// re-parented to it because it is a subreaper or PID 1. Nobody else would
// reap them. A zombie's /proc/<pid>/cgroup still names its cgroup, so they
// are found after cgroup.kill, when cgroup.procs no longer lists them.
func (c *cgroup) reapAdopted(leader int) {
	self := os.Getpid()
	kids := childrenOf(self)
	if !childrenFiles {
		kids = allPids() // readProcStat checks the parent below
	}
	for _, pid := range kids {
		if pid == leader {
			continue
		}
		if st, err := readProcStat(pid); err != nil || st.ppid != self || st.state != 'Z' {
			continue
		}
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		for line := range strings.SplitSeq(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok && strings.HasSuffix(p, c.id) {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
		}
	}
}

func readPids(path string) []int {
	b, _ := os.ReadFile(path)
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitEmpty waits until no process is left in the cgroup (cgroup.events
// says "populated 0"); SIGKILLed processes take a moment to exit.
func waitEmpty(dir string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for pause := time.Millisecond; ; pause = min(2*pause, 20*time.Millisecond) {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if err != nil || strings.Contains(string(b), "populated 0") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still has processes %v after cgroup.kill", dir, readPids(filepath.Join(dir, "cgroup.procs")))
		}
		time.Sleep(pause)
	}
}

func rmdirCgroup(dir string) error {
	var err error
	for range 50 {
		if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// The process-group path.

var (
	subreaperOnce sync.Once
	subreaperErr  error
)

// tracker follows the descendants of a Host's instances in /proc, so that
// those that left the instance's process group die and are reaped with it.
//
// A descendant is attributed to an instance when it is found under the
// instance's process (by parent pid), or, once orphaned and re-parented to
// turnout, by its process group (the instance's pid) or by its environment
// (the instance's own AWS_LAMBDA_RUNTIME_API address, inherited). Every
// attributed process is recorded with its start time, so it stays known
// after its parent dies and a reused pid is never mistaken for it. The
// tree is scanned every second (which also reaps), and before every kill.
// (Not on SIGCHLD: os/signal would keep a goroutine for the process's life.) Only recorded processes are killed and
// reaped: turnout never waits for children it cannot attribute, which may
// belong to someone else (an upgrade's new process, another library's
// exec.Cmd). A process that clears its environment, leaves its group and is
// orphaned within a second of its birth escapes; a cgroup has no such gap.
type tracker struct {
	self  int
	log   *slog.Logger
	mu    sync.Mutex
	insts map[*instance]map[int]uint64 // recorded descendants: pid → start time
	stop  chan struct{}
	done  chan struct{}
}

const trackEvery = time.Second

func newTracker(log *slog.Logger) *tracker {
	subreaperOnce.Do(func() { subreaperErr = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
	if subreaperErr != nil {
		log.Warn("cannot make turnout a child subreaper; orphaned function processes go to init, still tracked and killed", "error", subreaperErr)
	}
	t := &tracker{self: os.Getpid(), log: log, insts: map[*instance]map[int]uint64{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go t.loop()
	return t
}

func (t *tracker) loop() {
	defer close(t.done)
	tick := time.NewTicker(trackEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		if len(t.insts) > 0 {
			t.scan()
		}
		t.mu.Unlock()
	}
}

func (t *tracker) close() {
	close(t.stop)
	<-t.done
}

func (t *tracker) add(in *instance) {
	t.mu.Lock()
	t.insts[in] = map[int]uint64{}
	t.mu.Unlock()
}

// scan walks the process tree from turnout and from every tracked
// instance: it records new descendants and reaps those that died as
// children of turnout. t.mu is held.
//
// It reads only that tree, through /proc/<pid>/task/<tid>/children, not
// every process on the machine: reading /proc/<pid>/stat costs the kernel
// about 0.25 ms a process on the loaded 2-core test machine, so a full
// scan of 157 processes took 13 ms of CPU, and would grow with the host.
// Where the kernel lacks the children files (CONFIG_PROC_CHILDREN), it
// falls back to reading every process.
func (t *tracker) scan() {
	stats := map[int]procStat{}
	stat := func(pid int) (procStat, bool) {
		if st, ok := stats[pid]; ok {
			return st, true
		}
		st, err := readProcStat(pid)
		if err != nil {
			return procStat{}, false
		}
		stats[pid] = st
		return st, true
	}
	kidsOf := childrenOf
	if !childrenFiles {
		kids := map[int][]int{}
		for _, pid := range allPids() {
			if st, ok := stat(pid); ok {
				kids[st.ppid] = append(kids[st.ppid], pid)
			}
		}
		kidsOf = func(pid int) []int { return kids[pid] }
	}
	leaders := map[int]*instance{} // live leaders: their children are theirs
	groups := map[int]*instance{}  // process groups: a pgid is not reused while a member lives
	addrs := map[string]*instance{}
	owner := map[int]*instance{}
	for in, rec := range t.insts {
		if !in.reaped.Load() {
			leaders[in.pid] = in
		}
		groups[in.pid] = in
		addrs[in.addr] = in
		for pid, start := range rec {
			if st, ok := stat(pid); ok && st.start == start {
				owner[pid] = in
			} else {
				delete(rec, pid)
			}
		}
	}
	// Orphans re-parented to turnout that are not yet attributed.
	for _, pid := range kidsOf(t.self) {
		st, ok := stat(pid)
		if !ok || st.ppid != t.self || owner[pid] != nil || leaders[pid] != nil {
			continue
		}
		in := groups[st.pgrp]
		if in == nil && st.state != 'Z' {
			in = addrs[runtimeAPIOf(pid)]
		}
		if in != nil {
			owner[pid] = in
			t.insts[in][pid] = st.start
		}
	}
	// Everything below a live leader or an attributed process.
	type item struct {
		pid int
		in  *instance
	}
	var queue []item
	for pid, in := range leaders {
		for _, k := range kidsOf(pid) {
			queue = append(queue, item{k, in})
		}
	}
	for pid, in := range owner {
		for _, k := range kidsOf(pid) {
			queue = append(queue, item{k, in})
		}
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if owner[it.pid] != nil || leaders[it.pid] != nil {
			continue
		}
		st, ok := stat(it.pid)
		if !ok {
			continue
		}
		owner[it.pid] = it.in
		t.insts[it.in][it.pid] = st.start
		for _, k := range kidsOf(it.pid) {
			queue = append(queue, item{k, it.in})
		}
	}
	// Reap the attributed ones that died as turnout's children.
	for pid, in := range owner {
		if st := stats[pid]; st.ppid == t.self && st.state == 'Z' {
			var ws unix.WaitStatus
			if n, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); n == pid {
				delete(t.insts[in], pid)
			}
		}
	}
}

// childrenFiles is whether the kernel lists a task's children in
// /proc/<pid>/task/<tid>/children.
var childrenFiles = func() bool {
	_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d/children", os.Getpid()))
	return err == nil
}()

// childrenOf lists pid's children: those of each of its threads.
func childrenOf(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	tids, _ := d.Readdirnames(-1)
	d.Close()
	var kids []int
	for _, tid := range tids {
		kids = append(kids, readPids(dir+"/"+tid+"/children")...)
	}
	return kids
}

func allPids() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat is what the tracker reads of /proc/<pid>/stat (proc(5)).
type procStat struct {
	state      byte
	ppid, pgrp int
	start      uint64 // clock ticks after boot: with the pid, names one process
}

// readProcStat reads /proc/<pid>/stat (four fields of 52, by hand).
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state(3) ppid(4) pgrp(5) ... starttime(22).
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var st procStat
	st.state = f[0][0]
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.start, err = strconv.ParseUint(f[19], 10, 64)
	return st, err
}

// runtimeAPIOf returns the AWS_LAMBDA_RUNTIME_API in pid's environment.
func runtimeAPIOf(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, "AWS_LAMBDA_RUNTIME_API="); ok {
			return v
		}
	}
	return ""
}

// release kills every recorded descendant of in, whose leader has been
// reaped, reaps them, and stops tracking in.
func (t *tracker) release(in *instance) {
	deadline := time.Now().Add(5 * time.Second)
	for pause := time.Millisecond; ; pause = min(2*pause, 20*time.Millisecond) {
		t.mu.Lock()
		t.scan()
		var live []int
		for pid := range t.insts[in] {
			live = append(live, pid)
		}
		t.mu.Unlock()
		if len(live) == 0 {
			break
		}
		for _, pid := range live {
			// Recorded with its start time by the scan just now.
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			t.log.Warn("function processes outlived their instance", "pids", live)
			break
		}
		time.Sleep(pause)
	}
	t.mu.Lock()
	delete(t.insts, in)
	t.mu.Unlock()
}
