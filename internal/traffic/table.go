// Package traffic counts requests by route and by a template inferred from
// each raw path (/user/42/orders → /user/{id}/orders), with the figures a
// team needs to pick what to migrate next and to spot function-readiness
// risks. The live gateway and `turnout analyze` both feed it
// turnout.Observations.
package traffic

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout"
)

// Options configure a Table.
type Options struct {
	// MaxTemplates is the number of distinct (host, template) rows kept;
	// default 10000. Past it, observations of new templates count in one
	// overflow row, Host "" and Template "{other}", so a flood of paths
	// that defeat inference costs bounded memory.
	MaxTemplates int
}

// DefaultMaxTemplates is Options.MaxTemplates when it is zero.
const DefaultMaxTemplates = 10000

// OverflowTemplate is the template of the row that counts observations of
// templates past Options.MaxTemplates, and of hosts or templates too long
// to keep (over maxHostLen or maxTemplateLen bytes).
const OverflowTemplate = "{other}"

const (
	maxHostLen     = 255  // a DNS name's limit; longer hosts are not hosts
	maxTemplateLen = 2048 // longer templates fold into the overflow row
	maxRowStrings  = 8    // routes and targets kept per row
	numShards      = 64
)

// methods a row counts one by one; any other method counts as "OTHER".
var knownMethods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

const methodOther = len(knownMethods) - 1

func methodIndex(m string) int {
	for i, k := range knownMethods[:methodOther] {
		if m == k {
			return i
		}
	}
	return methodOther
}

// Table counts observations by (host, template). It is safe for
// concurrent use: rows are found through sharded read locks and updated
// under their own mutex, so concurrent requests for different templates
// rarely touch the same lock.
type Table struct {
	max      int64
	seed     maphash.Seed
	rows     atomic.Int64 // rows in the shards
	total    atomic.Int64
	shards   [numShards]shard
	overflow row
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*row
	_  [64]byte // keep shards on separate cache lines
}

// NewTable returns an empty table.
func NewTable(opts Options) *Table {
	t := &Table{max: int64(opts.MaxTemplates), seed: maphash.MakeSeed()}
	if t.max <= 0 {
		t.max = DefaultMaxTemplates
	}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*row)
	}
	t.overflow.template = OverflowTemplate
	return t
}

// row holds one (host, template)'s figures; mu guards everything but the
// immutable host and template.
type row struct {
	host, template string

	mu                              sync.Mutex
	routes, targets                 []string
	methods                         [len(knownMethods)]int64
	calls, errors, fallbacks, thrtl int64
	dur, size                       hist // nanoseconds, bytes
	first, last                     int64
	risks                           [numRisks]riskStat
}

type riskStat struct {
	count   int64
	example string
}

// Observe counts o in its (host, template) row. It is safe for concurrent
// use and does not retain o; for a template already in the table it does
// not allocate, unless o brings a new route, target or risk to the row.
func (t *Table) Observe(o *turnout.Observation) {
	if o == nil {
		return
	}
	rk := risksOf(o)
	var buf [256]byte
	host := hostOf(o.Host)
	key := binary.AppendUvarint(buf[:0], uint64(len(host)))
	key = appendLower(key, host)
	tmplAt := len(key)
	key = appendRouteTemplate(key, o.Route, o.Path)

	s := &t.shards[maphash.Bytes(t.seed, key)%numShards]
	s.mu.RLock()
	r := s.m[string(key)]
	s.mu.RUnlock()
	if r == nil {
		r = t.insert(s, key, len(host), tmplAt)
	}
	t.total.Add(1)

	now := o.Time.UnixNano()
	if o.Time.IsZero() {
		now = time.Now().UnixNano()
	}
	r.mu.Lock()
	r.add(o, rk, now)
	r.mu.Unlock()
}

// hostOf is the host a row is kept under: the Host header without its port
// or a trailing dot (lowercased as it is appended to the key), so that
// api.example.com, API.example.com:443 and api.example.com. are one row.
func hostOf(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i:], ']') < 0 {
		if j := strings.IndexByte(h, ':'); j == i || strings.HasPrefix(h, "[") {
			h = h[:i] // a port; an IPv6 address without brackets has more colons
		}
	}
	return strings.TrimSuffix(h, ".")
}

// appendLower appends s to dst in lower case (ASCII).
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// insert returns the row for key, creating it when the table has room,
// else the overflow row.
func (t *Table) insert(s *shard, key []byte, hostLen, tmplAt int) *row {
	if hostLen > maxHostLen || len(key)-tmplAt > maxTemplateLen {
		return &t.overflow
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.m[string(key)]; r != nil {
		return r
	}
	for {
		n := t.rows.Load()
		if n >= t.max {
			return &t.overflow
		}
		if t.rows.CompareAndSwap(n, n+1) {
			break
		}
	}
	k := string(key)
	r := &row{host: k[tmplAt-hostLen : tmplAt], template: k[tmplAt:]}
	s.m[k] = r
	return r
}

func (r *row) add(o *turnout.Observation, rk risks, now int64) {
	r.calls++
	r.methods[methodIndex(o.Method)]++
	if o.Status >= 500 || o.Outcome == turnout.Error {
		r.errors++
	}
	switch o.Outcome {
	case turnout.Fallback:
		r.fallbacks++
	case turnout.Throttled:
		r.thrtl++
	}
	r.dur.add(int64(o.Duration))
	r.size.add(o.Bytes)
	if r.calls == 1 {
		r.first, r.last = now, now
	} else {
		r.first, r.last = min(r.first, now), max(r.last, now)
	}
	r.routes = addBounded(r.routes, o.Route)
	r.targets = addBounded(r.targets, o.Target)
	for i := range numRisks {
		if rk&(1<<i) == 0 {
			continue
		}
		rs := &r.risks[i]
		if rs.count == 0 {
			rs.example = riskExample(o, i)
		}
		rs.count++
	}
}

// addBounded adds a copy of s to list unless it is empty, already there,
// or the list is full.
func addBounded(list []string, s string) []string {
	if s == "" || len(list) >= maxRowStrings || slices.Contains(list, s) {
		return list
	}
	return append(list, strings.Clone(s))
}

// Sort orders for Query.Sort.
const (
	SortCalls    = "calls"     // most calls first (default)
	SortErrors   = "errors"    // most errors first, then most calls
	SortP99      = "p99"       // slowest p99 first
	SortLastSeen = "last_seen" // least recently seen first
	SortTemplate = "template"  // by template, then host
)

// SortOrders lists the valid Query.Sort values.
var SortOrders = []string{SortCalls, SortErrors, SortP99, SortLastSeen, SortTemplate}

// Query selects and orders a Report's rows.
type Query struct {
	Sort      string        // "calls" (default), "errors", "p99", "last_seen", "template"
	Limit     int           // rows kept after sorting; 0: all
	UnusedFor time.Duration // >0: only rows whose LastSeen is older than Now-UnusedFor ("unused endpoints")
	Now       time.Time     // default time.Now()
	Risky     bool          // only rows with at least one risk
}

// Validate reports a Query that Report would not honour as written: an
// unknown sort order, or a negative limit or duration. Report itself
// falls back to the defaults.
func (q Query) Validate() error {
	if q.Sort != "" && !slices.Contains(SortOrders, q.Sort) {
		return fmt.Errorf("unknown sort order %q: use one of %s", q.Sort, strings.Join(SortOrders, ", "))
	}
	if q.Limit < 0 {
		return fmt.Errorf("limit %d is negative: use 0 for all rows", q.Limit)
	}
	if q.UnusedFor < 0 {
		return fmt.Errorf("unused-for %s is negative", q.UnusedFor)
	}
	return nil
}

// Report is a snapshot of a Table.
type Report struct {
	Rows      []Row `json:"rows"`
	Total     int64 `json:"total"`     // observations counted
	Templates int   `json:"templates"` // rows in the table, not counting the overflow row
	Overflow  int64 `json:"overflow"`  // observations that fell in the overflow row
}

// Row is one (host, template)'s figures.
type Row struct {
	Host     string           `json:"host"`
	Template string           `json:"template"`
	Routes   []string         `json:"routes"`  // route patterns that served it, first 8
	Targets  []string         `json:"targets"` // backends that served it, first 8
	Methods  map[string]int64 `json:"methods"` // calls by method; unusual methods count as "OTHER"
	Calls    int64            `json:"calls"`
	// Errors counts responses with status ≥ 500 or Outcome "error".
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"` // Errors/Calls, 0–1
	Fallbacks int64   `json:"fallbacks"`
	Throttled int64   `json:"throttled"`
	// P50Ms and P99Ms are duration quantiles in milliseconds, and BytesP50
	// and BytesP99 response-size quantiles, from log-bucket histograms:
	// within 5 % of an observed value.
	P50Ms     float64   `json:"p50_ms"`
	P99Ms     float64   `json:"p99_ms"`
	BytesP50  int64     `json:"bytes_p50"`
	BytesP99  int64     `json:"bytes_p99"`
	BytesMax  int64     `json:"bytes_max"` // exact
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Risks     []Risk    `json:"risks"` // in the order of the Risk* kinds
	// Stage is the migration stage of the route that served the row (the
	// first of Routes) in the deployment served now — legacy, canary N%
	// or migrated, as `turnout status` shows it — or "" when no route
	// served it or the route is gone. The table does not know it: the
	// serving node fills it in (turnout serve).
	Stage string `json:"stage,omitempty"`
}

// Risk is one kind of function-readiness risk seen on a row: how many
// requests showed it and the first of them.
type Risk struct {
	Kind    string `json:"kind"`
	Count   int64  `json:"count"`
	Example string `json:"example"`
}

func (r *row) snapshot() Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := Row{
		Host:      r.host,
		Template:  r.template,
		Routes:    slices.Clone(r.routes),
		Targets:   slices.Clone(r.targets),
		Methods:   make(map[string]int64),
		Calls:     r.calls,
		Errors:    r.errors,
		Fallbacks: r.fallbacks,
		Throttled: r.thrtl,
		P50Ms:     r.dur.quantile(0.50) / 1e6,
		P99Ms:     r.dur.quantile(0.99) / 1e6,
		BytesP50:  int64(r.size.quantile(0.50) + 0.5),
		BytesP99:  int64(r.size.quantile(0.99) + 0.5),
		BytesMax:  r.size.max,
		FirstSeen: time.Unix(0, r.first).UTC(),
		LastSeen:  time.Unix(0, r.last).UTC(),
	}
	if out.Routes == nil {
		out.Routes = []string{}
	}
	if out.Targets == nil {
		out.Targets = []string{}
	}
	for i, n := range r.methods {
		if n > 0 {
			out.Methods[knownMethods[i]] = n
		}
	}
	if r.calls > 0 {
		out.ErrorRate = float64(r.errors) / float64(r.calls)
	}
	out.Risks = []Risk{}
	for i, rs := range r.risks {
		if rs.count > 0 {
			out.Risks = append(out.Risks, Risk{Kind: riskKinds[i], Count: rs.count, Example: rs.example})
		}
	}
	return out
}

// Report returns the rows q selects, in q's order, with the table's
// totals. It runs concurrently with Observe; each row is a consistent
// snapshot, the rows together are not one instant.
func (t *Table) Report(q Query) Report {
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	rep := Report{Total: t.total.Load()}
	var rows []*row
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, r := range s.m {
			rows = append(rows, r)
		}
		s.mu.RUnlock()
	}
	rep.Templates = len(rows)
	overflow := t.overflow.snapshot()
	rep.Overflow = overflow.Calls

	cutoff := q.Now.Add(-q.UnusedFor)
	keep := func(r Row) bool {
		if q.UnusedFor > 0 && !r.LastSeen.Before(cutoff) {
			return false
		}
		return !q.Risky || len(r.Risks) > 0
	}
	for _, r := range rows {
		if s := r.snapshot(); keep(s) {
			rep.Rows = append(rep.Rows, s)
		}
	}
	if overflow.Calls > 0 && keep(overflow) {
		rep.Rows = append(rep.Rows, overflow)
	}
	if rep.Rows == nil {
		rep.Rows = []Row{}
	}
	slices.SortFunc(rep.Rows, compareRows(q.Sort))
	if q.Limit > 0 && len(rep.Rows) > q.Limit {
		rep.Rows = rep.Rows[:q.Limit]
	}
	return rep
}

// compareRows returns the order for sort; ties fall to template then host,
// so a report's order is stable from one call to the next.
func compareRows(sort string) func(a, b Row) int {
	byName := func(a, b Row) int {
		if c := strings.Compare(a.Template, b.Template); c != 0 {
			return c
		}
		return strings.Compare(a.Host, b.Host)
	}
	desc := func(x, y int64) int { return compareInt(y, x) }
	switch sort {
	case SortErrors:
		return func(a, b Row) int {
			if c := desc(a.Errors, b.Errors); c != 0 {
				return c
			}
			if c := desc(a.Calls, b.Calls); c != 0 {
				return c
			}
			return byName(a, b)
		}
	case SortP99:
		return func(a, b Row) int {
			if a.P99Ms != b.P99Ms {
				if a.P99Ms > b.P99Ms {
					return -1
				}
				return 1
			}
			return byName(a, b)
		}
	case SortLastSeen:
		return func(a, b Row) int {
			if c := a.LastSeen.Compare(b.LastSeen); c != 0 {
				return c
			}
			return byName(a, b)
		}
	case SortTemplate:
		return byName
	default:
		return func(a, b Row) int {
			if c := desc(a.Calls, b.Calls); c != 0 {
				return c
			}
			return byName(a, b)
		}
	}
}

func compareInt(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
