package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/route"
)

// LocalSwitches are the routes switched off on one node only — `turnout
// route off MATCH --local` — without the store: the emergency switch for an
// incident in which the store is what is broken (an etcd cluster without
// quorum refuses every deployment, `route off` included). They are not
// deployments: no other node sees them, the history does not hold them.
// They lie on top of whatever deployment the node serves (Apply), survive a
// restart in a file next to the node's store path, and last until `route on
// MATCH --local` clears them. Every attempt is appended to a local audit
// file beside it.
//
// The file (LocalSwitchFile) is JSON, rewritten whole on each change:
//
//	{"routes": [{"match": "GET /user/{id}", "actor": "ops", "time": "2026-12-06T07:00:00Z", "message": "etcd down"}]}
//
// The audit file is JSON lines, one deploy.AuditEvent each, with action
// "route.off.local" or "route.on.local" and seqs counting from 1.
type LocalSwitches struct {
	path, auditPath string

	mu     sync.Mutex
	routes []LocalSwitch // sorted by match
	seq    uint64        // the last local audit seq
}

// LocalSwitch is one route switched off on this node only.
type LocalSwitch struct {
	// Match is the route's match, canonical (route.Canonical).
	Match   string    `json:"match"`
	Actor   string    `json:"actor"`
	Time    time.Time `json:"time"`
	Message string    `json:"message,omitempty"`
}

// localFile is the content of the switches' file.
type localFile struct {
	Routes []LocalSwitch `json:"routes"`
}

// LocalSwitchFile returns where a node whose store path is storePath keeps
// its local switches, "<store path>.local.json"; their audit file is
// "<store path>.local-audit.jsonl".
func LocalSwitchFile(storePath string) string { return storePath + ".local.json" }

// OpenLocalSwitches reads the local switches kept in path (none when the
// file does not exist yet) and the last seq of their audit file beside it.
// A file that does not parse is an error, not an empty set: a node must not
// start serving a route an operator switched off.
func OpenLocalSwitches(path string) (*LocalSwitches, error) {
	l := &LocalSwitches{path: path, auditPath: strings.TrimSuffix(path, ".json") + "-audit.jsonl"}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("local route switches: %w", err)
	default:
		var f localFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("local route switches %s: %w; fix or remove the file (it lists the routes switched off on this node only)", path, err)
		}
		l.routes = f.Routes
		slices.SortFunc(l.routes, func(a, b LocalSwitch) int { return strings.Compare(a.Match, b.Match) })
	}
	audit, err := os.Open(l.auditPath)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("local route switches: %w", err)
	}
	defer audit.Close()
	sc := bufio.NewScanner(audit)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e AuditEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			l.seq = max(l.seq, e.Seq)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("local route switches: read %s: %w", l.auditPath, err)
	}
	return l, nil
}

// AuditFile returns the path of the local audit file.
func (l *LocalSwitches) AuditFile() string { return l.auditPath }

// List returns the routes switched off on this node only, by match.
func (l *LocalSwitches) List() []LocalSwitch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.routes)
}

// LocalSwitchRequest is one `route off|on MATCH --local`.
type LocalSwitchRequest struct {
	Match string
	// Off switches the route off on this node; false clears the switch.
	Off bool
	// Actor (the admin token's name), Remote (the client's address) and
	// Message go to the local audit.
	Actor, Remote, Message string
}

// Set switches req.Match off on this node (req.Off), or clears that switch,
// writes the file and appends the attempt to the local audit, and returns
// what it did in a sentence. served is the config of deployment id, which
// the node serves: a route is switched off locally only when it exists
// there and `route off` could switch it (the same checks, so the same
// errors: ErrUnknownRoute, ErrConflict); clearing needs only a switch to
// clear. The caller then serves Apply(served) again.
func (l *LocalSwitches) Set(served *config.Config, id uint64, req LocalSwitchRequest) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	detail, err := l.set(served, id, req)
	ev := AuditEvent{Actor: req.Actor, Action: "route.on.local", Remote: req.Remote, Result: "ok", Detail: detail}
	if req.Off {
		ev.Action = "route.off.local"
	}
	if err != nil {
		ev.Result, ev.Detail = "invalid", err.Error()
		if !errors.Is(err, ErrUnknownRoute) && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrInvalid) {
			ev.Result = "error"
		}
	} else if req.Message != "" {
		ev.Detail += ": " + req.Message
	}
	if aerr := l.audit(ev); aerr != nil {
		if err != nil {
			return "", err
		}
		return "", fmt.Errorf("%s, but the local audit %s could not be written: %w", detail, l.auditPath, aerr)
	}
	return detail, err
}

func (l *LocalSwitches) set(served *config.Config, id uint64, req LocalSwitchRequest) (string, error) {
	want := route.Canonical(req.Match)
	if want == "" {
		return "", errorf(ErrInvalid, "empty match; give the route's match as written in the config, e.g. \"GET /user/{id}\"")
	}
	i := slices.IndexFunc(l.routes, func(s LocalSwitch) bool { return s.Match == want })
	routes := slices.Clone(l.routes)
	var detail string
	if req.Off {
		if i >= 0 {
			return "", errorf(ErrConflict, "route %q is already off on this node (local switch by %s at %s)", want, l.routes[i].Actor, l.routes[i].Time.Format(time.RFC3339))
		}
		if _, err := switchable(served, id, req.Match, true); err != nil {
			return "", err
		}
		routes = append(routes, LocalSwitch{Match: want, Actor: req.Actor, Time: time.Now().UTC(), Message: req.Message})
		slices.SortFunc(routes, func(a, b LocalSwitch) int { return strings.Compare(a.Match, b.Match) })
		detail = fmt.Sprintf("route %q is off on this node only, over deployment %d; `turnout route on %q --local` clears it", want, id, want)
	} else {
		if i < 0 {
			return "", errorf(ErrConflict, "route %q is not switched off on this node: nothing to clear (`turnout status` lists the local switches)", want)
		}
		routes = slices.Delete(routes, i, i+1)
		detail = fmt.Sprintf("route %q is no longer switched off on this node: it is served as deployment %d says", want, id)
	}
	if err := l.write(routes); err != nil {
		return "", err
	}
	l.routes = routes
	return detail, nil
}

// write replaces the file with routes: written beside it, synced, renamed
// over it, so a crash leaves the old list or the new one.
func (l *LocalSwitches) write(routes []LocalSwitch) error {
	data, err := json.MarshalIndent(localFile{Routes: routes}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.path), filepath.Base(l.path)+".*")
	if err != nil {
		return fmt.Errorf("local route switches: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), l.path)
	}
	if err != nil {
		return fmt.Errorf("local route switches: write %s: %w", l.path, err)
	}
	return nil
}

// audit appends e, with the next local seq and the time, to the audit file.
func (l *LocalSwitches) audit(e AuditEvent) error {
	e.Seq, e.Time = l.seq+1, time.Now().UTC()
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(l.auditPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		l.seq = e.Seq
	}
	return err
}

// AuditLog returns up to limit events of the local audit, newest first (a
// limit of 0 or less: all).
func (l *LocalSwitches) AuditLog(limit int) ([]AuditEvent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	data, err := os.ReadFile(l.auditPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []AuditEvent
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e AuditEvent
		if len(line) > 0 && json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
	}
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Apply returns cfg with the routes switched off on this node set off, for
// the node to compile: every activation of a deployment goes through it.
// cfg itself is not changed (the caller may keep it); when no local switch
// applies, Apply returns cfg. A switch whose route cfg does not have, or
// has with nowhere else to go, is left out (and kept: a later deployment
// may have the route again); Stale lists those.
func (l *LocalSwitches) Apply(cfg *config.Config) *config.Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.routes) == 0 {
		return cfg
	}
	var out *config.Config
	legacy := cfg.LegacyOrigin()
	for i, r := range cfg.Routes {
		if r.Off || !l.has(route.Canonical(r.Match)) || !r.CanSwitchOff(legacy) {
			continue
		}
		if out == nil {
			c := *cfg
			c.Routes = slices.Clone(cfg.Routes)
			out = &c
		}
		out.Routes[i].Off = true
	}
	if out == nil {
		return cfg
	}
	return out
}

// Stale returns the local switches that Apply leaves out of cfg: their
// route is not in it, or has nowhere else to go there.
func (l *LocalSwitches) Stale(cfg *config.Config) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	legacy := cfg.LegacyOrigin()
	var out []string
	for _, s := range l.routes {
		i := slices.IndexFunc(cfg.Routes, func(r config.Route) bool { return route.Canonical(r.Match) == s.Match })
		if i < 0 || !cfg.Routes[i].CanSwitchOff(legacy) {
			out = append(out, s.Match)
		}
	}
	return out
}

// Mark sets Local on the routes of a status that are switched off on this
// node only, for `turnout status` and the dashboard.
func (l *LocalSwitches) Mark(routes []turnout.RouteStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range routes {
		if routes[i].Off && l.has(route.Canonical(routes[i].Match)) {
			routes[i].Local = true
		}
	}
}

func (l *LocalSwitches) has(match string) bool {
	return slices.ContainsFunc(l.routes, func(s LocalSwitch) bool { return s.Match == match })
}
