package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Parse parses and validates a config file. name is the file name used in
// positions. It applies no defaults (see WithDefaults). On failure the error
// is an ErrorList holding every problem found, sorted by position, and the
// returned *Config is nil.
//
// The file is walked as a yaml.Node tree rather than decoded into structs so
// that every problem is reported with its line and column and says which
// key it is about. yaml's KnownFields mode does collect every unknown key
// (and every type error), but as flat "line N: ..." strings: no column, no
// key path, and nothing for the checks a struct tag cannot express.
//
// YAML anchors, aliases and merge keys ("<<: *defaults") are honoured. A
// problem in an aliased value is reported once, where the anchor defines it.
func Parse(name string, data []byte) (*Config, error) {
	d := &decoder{file: name}
	if root := d.document(data); root != nil {
		d.budget = 10*countNodes(root) + 10000
		d.plaintextAPIKeys(root)
		if c, ok := d.config(root); ok {
			d.validate(c)
			if len(d.errs) == 0 {
				return c, nil
			}
		}
	}
	return nil, d.errs.normalize()
}

// decoder walks one document, building a Config and collecting errors. Each
// value is checked on its own as it is decoded; checks that relate values
// (references to origins, route conflicts) run afterwards in validate, using
// the positions recorded here.
type decoder struct {
	file string
	errs ErrorList

	// budget bounds the mapping entries and list items visited, so that
	// aliases cannot make a small file expensive to walk ("billion laughs").
	budget    int
	overspent bool

	rootPos   Pos
	listenPos Pos
	adminPos  Pos // admin.listen
	originsAt Pos // the origins key, or the document start
	legacyPos Pos
	// caseInsensitivePos is routing.case_insensitive's value.
	caseInsensitivePos Pos
	tokens             []tokenPos
	health             []healthPos // per origin
	routes             []routePos
}

type tokenPos struct{ name, sha256, env Pos }

type healthPos struct {
	node              Pos // the health_check mapping
	interval, timeout Pos
}

type routePos struct {
	origin, function, payload, fallback Pos
	// The canary mapping, its target and weight, when written.
	canary, canaryOrigin, canaryFunction, canaryWeight Pos
	// The rollout key.
	rollout Pos
	// The shadow mapping and its to, and the rollout's shadow key, when
	// written.
	shadow, shadowTo, rolloutShadow Pos
	// The auth mapping's authorizer, when written.
	auth Pos
	// api_key_required's value, when written.
	apiKey Pos
}

// document parses data as exactly one YAML document and returns its root,
// or nil after reporting why it cannot.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			d.errorAt(Pos{d.file, 1, 1}, emptyConfig)
		} else {
			d.syntaxError(data, err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		d.syntaxError(data, err)
		return nil
	default:
		d.errorf(&extra, "a config file holds one YAML document: remove this second document and the \"---\" before it")
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		d.errorf(&doc, emptyConfig)
		return nil
	}
	root := doc.Content[0]
	d.rootPos = d.pos(root)
	return root
}

const emptyConfig = "empty config: declare the legacy service under origins (origins: {legacy: {url: http://127.0.0.1:9000}}) and the routes that reach it (routes: [{match: /, origin: legacy}])"

// syntaxError reports a YAML syntax error. yaml gives a line for some errors
// only, and never a column, so syntaxError finds both itself: the shortest
// prefix of data that fails with the same problem ends at the offending
// character.
func (d *decoder) syntaxError(data []byte, err error) {
	problem, line := yamlProblem(err)
	pos := Pos{File: d.file, Line: max(line, 1), Column: 1}
	var at byte
	if l, c, off, ok := locateSyntaxError(data, problem); ok {
		pos.Line, pos.Column, at = l, c, data[off]
	}
	d.errorAt(pos, "invalid YAML: "+problem+"; "+syntaxHint(problem, at))
}

// yamlProblem splits yaml's "yaml: line N: problem" into problem and N
// (0 when yaml gives no line).
func yamlProblem(err error) (problem string, line int) {
	problem = strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(problem, "line "); ok {
		if num, msg, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				return msg, n
			}
		}
	}
	return problem, 0
}

// locateSyntaxError returns the 1-based line and column, and the byte
// offset, of the character at which data first fails to parse with problem.
// It binary-searches line ends, then bytes within the failing line:
// O(log n) parses, run only for a file that is already invalid.
func locateSyntaxError(data []byte, problem string) (line, col, off int, ok bool) {
	fails := func(n int) bool {
		err := parseAll(data[:n])
		if err == nil {
			return false
		}
		p, _ := yamlProblem(err)
		return p == problem
	}
	if !fails(len(data)) {
		return 0, 0, 0, false
	}
	// ends[i] is the end of line i+1, newline included.
	var ends []int
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	// Invariant: prefix up to line lo does not fail, up to line hi does.
	lo, hi := 0, len(ends)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fails(ends[mid-1]) {
			hi = mid
		} else {
			lo = mid
		}
	}
	start := 0
	if hi > 1 {
		start = ends[hi-2]
	}
	// The same within the line, by bytes.
	blo, bhi := start, ends[hi-1]
	for bhi-blo > 1 {
		mid := (blo + bhi) / 2
		if fails(mid) {
			bhi = mid
		} else {
			blo = mid
		}
	}
	return hi, utf8.RuneCount(data[start:bhi]), bhi - 1, true
}

// parseAll parses every document in data, returning the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// syntaxHint says what usually fixes problem; at is the offending byte.
func syntaxHint(problem string, at byte) string {
	switch {
	case at == '\t' || strings.Contains(problem, "tab"):
		return "indent with spaces: YAML does not allow tabs"
	case strings.Contains(problem, "mapping values are not allowed"):
		return `put each "key: value" on its own line, and quote a value that contains ": "`
	case strings.Contains(problem, "did not find expected key"),
		strings.Contains(problem, "did not find expected '-'"):
		return "check the indentation: the keys of one mapping (and the dashes of one list) must line up"
	case strings.Contains(problem, "cannot start any token"):
		return fmt.Sprintf("quote the value: a plain value cannot start with %q", at)
	case strings.Contains(problem, "UTF-8"), strings.Contains(problem, "control characters"):
		return "save the file as UTF-8 text without control characters"
	case strings.Contains(problem, "unknown anchor"):
		return "define the anchor (&name) before an alias (*name) refers to it"
	case strings.Contains(problem, "expected ',' or ']'"):
		return "close the list opened with [ with a ]"
	case strings.Contains(problem, "expected ',' or '}'"):
		return "close the mapping opened with { with a }"
	case strings.Contains(problem, "end of stream"):
		return "close the quote or bracket opened here"
	default:
		return "fix the YAML syntax here"
	}
}

func countNodes(n *yaml.Node) int {
	c := 1
	for _, ch := range n.Content {
		c += countNodes(ch)
	}
	return c
}

// --- positions and errors ---

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{d.file, n.Line, n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errorAt(d.pos(n), fmt.Sprintf(format, args...))
}

func (d *decoder) errorAt(p Pos, msg string) {
	// yaml numbers from 1; keep that promise for nodes it did not place.
	p.Line, p.Column = max(p.Line, 1), max(p.Column, 1)
	d.errs = append(d.errs, &Error{Pos: p, Msg: msg})
}

// spend takes n from the walk budget, reporting at node once when it runs out.
func (d *decoder) spend(node *yaml.Node, n int) bool {
	d.budget -= n
	if d.budget >= 0 {
		return true
	}
	if !d.overspent {
		d.overspent = true
		d.errorf(node, "aliases expand this file too much: write the values out instead of repeating *aliases")
	}
	return false
}

// --- walking the node tree ---

// deref follows aliases to the value they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node is, for "got ..." in messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	return strconv.Quote(v)
}

type entry struct {
	key  string
	k, v *yaml.Node
}

func findEntry(es []entry, key string) *entry {
	for i := range es {
		if es[i].key == key {
			return &es[i]
		}
	}
	return nil
}

// entries returns the key/value pairs of mapping n in file order, with merge
// keys ("<<") expanded after the explicit keys, which win over merged ones.
// It reports keys that are not plain scalars and duplicate keys (what names
// the mapping, dup the kind of key in the message). ok is false, after
// reporting, when n is not a mapping.
func (d *decoder) entries(n *yaml.Node, what, dup string) (es []entry, ok bool) {
	return d.entriesDepth(n, what, dup, 0)
}

func (d *decoder) entriesDepth(n *yaml.Node, what, dup string, depth int) ([]entry, bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping of keys to values, got %s", what, describe(n))
		return nil, false
	}
	if !d.spend(n, len(n.Content)/2) {
		return nil, false
	}
	es := make([]entry, 0, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: a key must be a plain name, got %s", what, describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if prev := findEntry(es, k.Value); prev != nil {
			if dup == "origin" {
				d.errorf(k, "duplicate origin %q: already declared at %s; give each origin its own name", k.Value, d.pos(prev.k))
			} else {
				d.errorf(k, "duplicate key %q in %s: already set at %s; keep one of them", k.Value, what, d.pos(prev.k))
			}
			continue
		}
		es = append(es, entry{k.Value, k, v})
	}
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			s = deref(s)
			if s.Kind != yaml.MappingNode {
				d.errorf(s, "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(s))
				continue
			}
			if depth >= 10 {
				d.errorf(s, "merge keys (<<) nest more than 10 deep here: merge fewer levels")
				continue
			}
			sub, _ := d.entriesDepth(s, what, dup, depth+1)
			for _, e := range sub {
				if findEntry(es, e.key) == nil {
					es = append(es, e)
				}
			}
		}
	}
	return es, true
}

// fields walks mapping n whose valid keys are keys, calling set for each key
// with a non-null value (a null value, "key:" alone, leaves the field unset).
// Unknown keys are reported with the closest valid key. It returns false when
// n is not a mapping.
func (d *decoder) fields(n *yaml.Node, what string, keys []string, set func(key string, k, v *yaml.Node)) bool {
	es, ok := d.entries(n, what, "key")
	if !ok {
		return false
	}
	for _, e := range es {
		if !slices.Contains(keys, e.key) {
			d.unknownKey(e.k, what, keys)
			continue
		}
		if v := deref(e.v); !isNull(v) {
			set(e.key, e.k, v)
		}
	}
	return true
}

// keyHints explain keys that look valid but are not.
var keyHints = map[string]string{
	"origin:name":    "an origin's name is its key under origins",
	"route:path":     `the path goes in match, like match: "GET /users/{id}"`,
	"route:method":   `the method goes in match, like match: "GET /users/{id}"`,
	"route:host":     `the host goes in match, like match: "api.example.com/users/{id}"`,
	"origin:timeout": "set timeouts: {dial: 2s, response_header: 30s, overall: 60s}",
}

func (d *decoder) unknownKey(k *yaml.Node, what string, keys []string) {
	kind := what
	switch {
	case strings.HasPrefix(what, "origins."):
		kind = "origin"
	case strings.HasPrefix(what, "routes["):
		kind = "route"
	case what == "the top level":
		kind = "top"
	}
	msg := fmt.Sprintf("unknown key %q in %s", k.Value, what)
	if hint, ok := keyHints[kind+":"+k.Value]; ok {
		msg += ": " + hint
	} else if s := closest(k.Value, keys); s != "" {
		msg += fmt.Sprintf(": did you mean %q?", s)
	}
	d.errorAt(d.pos(k), msg+" (valid keys: "+strings.Join(keys, ", ")+")")
}

// closest returns the candidate nearest to s (ignoring case and "-" versus
// "_"), or "" when none is close enough to be a likely typo.
func closest(s string, candidates []string) string {
	norm := func(x string) string { return strings.ReplaceAll(strings.ToLower(x), "-", "_") }
	ns := norm(s)
	best, bestDist := "", math.MaxInt
	for _, c := range candidates {
		nc := norm(c)
		dist := editDistance(ns, nc)
		if len(ns) >= 3 && (strings.HasPrefix(nc, ns) || strings.HasPrefix(ns, nc)) {
			dist = min(dist, 1)
		}
		if dist < bestDist {
			best, bestDist = c, dist
		}
	}
	limit := 0 // a short name is only matched ignoring case and "-"
	if len(ns) >= 3 {
		limit = max(1, min(3, len(ns)/3))
	}
	if bestDist <= limit {
		return best
	}
	return ""
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions ("dail" for "dial") cost 1.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt // not a typo of a short name
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// list returns the items of sequence n, or reports why n is not one.
func (d *decoder) list(n *yaml.Node, what, example string) ([]*yaml.Node, bool) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list, like %s, got %s", what, example, describe(n))
		return nil, false
	}
	if !d.spend(n, len(n.Content)) {
		return nil, false
	}
	return n.Content, true
}

// --- scalars ---

// str returns scalar v as a string. Numbers and booleans are taken as
// written ("expect_status: 200").
func (d *decoder) str(v *yaml.Node, what string) (string, bool) {
	v = deref(v)
	if v.Kind != yaml.ScalarNode {
		d.errorf(v, "%s must be a single value, got %s", what, describe(v))
		return "", false
	}
	return v.Value, true
}

// integer returns v as an int of bitSize bits, at least lo; below lo, the
// message ends with tooLow.
func (d *decoder) integer(v *yaml.Node, what string, bitSize int, lo int64, tooLow string) (int64, bool) {
	s, ok := d.str(v, what)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 0, bitSize)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			d.errorf(v, "%s %s is too large (at most %d)", what, s, int64(1)<<(bitSize-1)-1)
		} else {
			d.errorf(v, "%s must be a whole number, got %s", what, describe(v))
		}
		return 0, false
	}
	if n < lo {
		d.errorf(v, "%s must be at least %d, got %d; %s", what, lo, n, tooLow)
		return 0, false
	}
	return n, true
}

func (d *decoder) intField(v *yaml.Node, what string, dst *int, lo int64, tooLow string) {
	if n, ok := d.integer(v, what, strconv.IntSize, lo, tooLow); ok {
		*dst = int(n)
	}
}

// duration decodes a positive Go duration. def describes the default, for
// the message when 0 is written.
func (d *decoder) duration(v *yaml.Node, what string, dst *Duration, def string) {
	s, ok := d.str(v, what)
	if !ok {
		return
	}
	t, err := time.ParseDuration(s)
	switch {
	case err != nil && (v.Tag == "!!int" || v.Tag == "!!float"):
		d.errorf(v, "%s %s has no unit: use a Go duration like \"%ss\" or \"%sms\"", what, s, s, s)
	case err != nil:
		d.errorf(v, "%s %q is not a duration: use a Go duration like \"1.5s\" (units: ms, s, m, h)", what, s)
	case t < 0:
		d.errorf(v, "%s must not be negative, got %s", what, s)
	case t == 0:
		d.errorf(v, "%s must be longer than 0; omit it for %s", what, def)
	default:
		*dst = Duration(t)
	}
}

func (d *decoder) boolean(v *yaml.Node, what string, dst *bool) {
	s, ok := d.str(v, what)
	if !ok {
		return
	}
	switch {
	case v.Tag == "!!bool" && strings.EqualFold(s, "true"):
		*dst = true
	case v.Tag == "!!bool" && strings.EqualFold(s, "false"):
		*dst = false
	default:
		d.errorf(v, "%s must be true or false, got %s", what, describe(v))
	}
}
