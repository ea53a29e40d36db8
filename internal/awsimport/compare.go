package awsimport

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/route"
)

// Turnout routes requests with a parsed config's real route table, as the
// gateway does.
type Turnout struct{ C *config.Config }

// Route returns the route and target the gateway picks for method and an
// escaped path: 400 for a path the gateway refuses, 404 when no route
// matches.
func (t Turnout) Route(method, path string) Decision {
	p, err := route.NormalizePath(path)
	if err != nil {
		return Decision{Status: 400, By: err.Error(), Rule: -1}
	}
	i, _, ok := t.C.RouteTable().Match("", method, p, nil)
	if !ok {
		return Decision{Status: 404, By: "no route", Rule: -1}
	}
	r := t.C.Routes[i]
	target := "origin:" + r.Origin
	if r.Function != "" {
		target = "function:" + r.Function
	}
	return Decision{Target: target, By: fmt.Sprintf("route %q", r.Match), Rule: i}
}

// Request is one request to compare.
type Request struct{ Method, Path string }

// Outcome is where a request goes in the source and in turnout.
type Outcome struct {
	Request
	Source, Turnout Decision
}

// Differs reports whether the two setups send the request to different places.
func (o Outcome) Differs() bool { return !o.Source.Same(o.Turnout) }

// Check routes each request through both setups (the --check table).
func Check(src, dst Router, reqs []Request) []Outcome {
	out := make([]Outcome, len(reqs))
	for i, r := range reqs {
		path := r.Path
		if j := strings.IndexAny(path, "?#"); j >= 0 {
			path = path[:j] // the query never takes part in routing
		}
		out[i] = Outcome{Request: r, Source: src.Route(r.Method, path), Turnout: dst.Route(r.Method, path)}
	}
	return out
}

// Shape is a class of requests the two setups route alike within the
// class: every path that the same source patterns and the same turnout
// patterns match, with a method. Examples are the shortest such paths.
type Shape struct {
	Methods  []string
	Examples []string
	Source   Decision
	// Turnout is where turnout sends the first example; TurnoutBy lists
	// every turnout route that takes some of the shape (one per method
	// when the route is written per method).
	Turnout   Decision
	TurnoutBy []string
}

func (s Shape) String() string {
	to := s.Turnout.String()
	if len(s.TurnoutBy) > 1 {
		to = s.Turnout.Target + " (" + strings.Join(s.TurnoutBy, ", ") + ")"
	}
	return fmt.Sprintf("%s %s: source → %s; turnout → %s", strings.Join(s.Methods, ", "), strings.Join(s.Examples, " "), s.Source, to)
}

// Limits of the shape search: the product of every pattern's automaton is
// explored breadth first up to maxShapeStates states and paths of
// maxShapeLen bytes; past either the list may be incomplete, and Shapes
// says so.
const (
	maxShapeStates = 20000
	maxShapeLen    = 256
)

// Shapes lists every request shape the source setup (its patterns globs)
// and the turnout config route differently. Every path is classified by
// the set of source patterns and turnout patterns that match it; paths in
// one class are routed alike by both (the winner depends on that set
// alone), so one example per class and method decides. The classes are
// found by walking the product of the patterns' automata over an alphabet
// of the bytes the patterns name plus '/' and one byte they do not,
// which stands for every other byte. complete is false when a bound
// stopped the walk.
func Shapes(s *Setup, t Turnout) ([]Shape, bool) {
	out, _, complete := shapesOf(s, t)
	return out, complete
}

// shapes is Shapes, and which source rules take some request (a rule whose
// requests an earlier one takes all of is never reached).
func shapesOf(s *Setup, t Turnout) (out []Shape, reached map[int]bool, complete bool) {
	ms := slices.Clone(s.srcMatchers)
	for _, r := range t.C.Routes {
		ms = append(ms, muxMatcher(route.Canonical(r.Match)))
	}
	examples, complete := classes(ms)
	type key struct {
		srcRule, srcStatus, dstStatus int
		dstTarget                     string
		srcBy                         string // for a decision of no rule (API Gateway's 403s)
	}
	byKey := map[key]*Shape{}
	var order []key
	reached = map[int]bool{}
	for _, path := range examples {
		for _, m := range cfMethods {
			src, dst := s.Source.Route(m, path), t.Route(m, path)
			reached[src.Rule] = true
			if src.Same(dst) {
				continue
			}
			k := key{src.Rule, src.Status, dst.Status, dst.Target, ""}
			if src.Rule < 0 {
				k.srcBy = src.By
			}
			sh := byKey[k]
			if sh == nil {
				sh = &Shape{Source: src, Turnout: dst}
				byKey[k] = sh
				order = append(order, k)
			}
			if !slices.Contains(sh.TurnoutBy, dst.By) {
				sh.TurnoutBy = append(sh.TurnoutBy, dst.By)
			}
			if !slices.Contains(sh.Methods, m) {
				sh.Methods = append(sh.Methods, m)
			}
			if !slices.Contains(sh.Examples, path) && len(sh.Examples) < 3 {
				sh.Examples = append(sh.Examples, path)
			}
		}
	}
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return out, reached, complete
}

// elem is one step of a pattern automaton.
type elem struct {
	kind byte // 'l' literal, '?' any byte, '*' any run, 'n' a non-'/' byte, 'N' a run of non-'/' bytes
	b    byte
}

// matcher is a pattern as a list of elems, an NFA whose states are
// positions in it.
type matcher []elem

func globMatcher(g string) matcher {
	var m matcher
	for i := 0; i < len(g); i++ {
		switch g[i] {
		case '*':
			m = append(m, elem{kind: '*'})
		case '?':
			m = append(m, elem{kind: '?'})
		default:
			m = append(m, elem{kind: 'l', b: g[i]})
		}
	}
	return m
}

// muxMatcher reads a canonical ServeMux pattern (its method and host are
// not part of the path).
func muxMatcher(p string) matcher {
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	p = p[strings.IndexByte(p, '/'):]
	var m matcher
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		m = append(m, elem{kind: 'l', b: '/'})
		last := i == len(segs)-1
		switch {
		case last && seg == "":
			m = append(m, elem{kind: '*'})
		case seg == "{$}":
		case strings.HasSuffix(seg, "...}"):
			m = append(m, elem{kind: '*'})
		case strings.HasPrefix(seg, "{"):
			m = append(m, elem{kind: 'n'}, elem{kind: 'N'})
		default:
			lit, err := unescapeSeg(seg)
			if err != nil {
				lit = seg
			}
			for j := 0; j < len(lit); j++ {
				m = append(m, elem{kind: 'l', b: lit[j]})
			}
		}
	}
	return m
}

func unescapeSeg(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &v); err != nil {
				return "", err
			}
			b.WriteByte(v)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// closure adds to set the states reachable from st without a byte.
func (m matcher) closure(set []bool, st int) {
	for st < len(m) && !set[st] {
		set[st] = true
		if k := m[st].kind; k != '*' && k != 'N' {
			return
		}
		st++
	}
	if st == len(m) {
		set[st] = true
	}
}

// step is the automaton's transition on c, on a set of states as bools
// (the tests' reading; classes works on bitsets).
func (m matcher) step(set []bool, c byte) []bool {
	next := make([]bool, len(m)+1)
	for st, on := range set {
		if on && st < len(m) {
			if to, ok := m.move(st, c); ok {
				m.closure(next, to)
			}
		}
	}
	return next
}

// move is the state reached from st on c, before its closure.
func (m matcher) move(st int, c byte) (int, bool) {
	switch e := m[st]; e.kind {
	case 'l':
		return st + 1, c == e.b
	case '?':
		return st + 1, true
	case 'n':
		return st + 1, c != '/'
	case '*':
		return st, true
	case 'N':
		return st, c != '/'
	}
	return 0, false
}

// bitNFA is a matcher whose state sets are bitsets of words words, with
// each state's closure precomputed.
type bitNFA struct {
	m       matcher
	words   int
	closure [][]uint64 // per state
}

func newBitNFA(m matcher) bitNFA {
	b := bitNFA{m: m, words: (len(m) + 1 + 63) / 64}
	for st := 0; st <= len(m); st++ {
		set := make([]bool, len(m)+1)
		m.closure(set, st)
		bits := make([]uint64, b.words)
		for i, on := range set {
			if on {
				bits[i/64] |= 1 << (i % 64)
			}
		}
		b.closure = append(b.closure, bits)
	}
	return b
}

// step writes the states reached from cur on c into next (zeroed).
func (b bitNFA) step(cur, next []uint64, c byte) {
	for w, word := range cur {
		for word != 0 {
			i := bits.TrailingZeros64(word)
			word &^= 1 << i
			st := w*64 + i
			if st == len(b.m) {
				continue
			}
			if to, ok := b.m.move(st, c); ok {
				for k, x := range b.closure[to] {
					next[k] |= x
				}
			}
		}
	}
}

func (b bitNFA) accepting(cur []uint64) bool {
	n := len(b.m)
	return cur[n/64]&(1<<(n%64)) != 0
}

// classes returns one example path (the shortest, then the first in the
// alphabet's order) for every class of paths matched by the same set of
// matchers, skipping paths turnout would rewrite or refuse
// (route.NormalizePath). A state of the walk keeps only the matchers still
// alive (most die a few bytes into a path), each with its set of states.
func classes(ms []matcher) (examples []string, complete bool) {
	alpha := alphabet(ms)
	nfas := make([]bitNFA, len(ms))
	for i, m := range ms {
		nfas[i] = newBitNFA(m)
	}
	type state struct {
		live []int32  // the matchers alive, in order
		sets []uint64 // their state sets, one after another
		path string
	}
	step := func(st state, c byte) state {
		next := state{path: st.path + string(c)}
		off := 0
		for _, i := range st.live {
			n := nfas[i]
			cur := st.sets[off : off+n.words]
			off += n.words
			at := len(next.sets)
			next.sets = append(next.sets, make([]uint64, n.words)...)
			n.step(cur, next.sets[at:], c)
			alive := false
			for _, w := range next.sets[at:] {
				alive = alive || w != 0
			}
			if alive {
				next.live = append(next.live, i)
			} else {
				next.sets = next.sets[:at]
			}
		}
		return next
	}
	var kb []byte
	key := func(st state) string {
		kb = kb[:0]
		for _, i := range st.live {
			kb = binary.AppendUvarint(kb, uint64(i))
		}
		kb = append(kb, 0xff)
		for _, w := range st.sets {
			kb = binary.AppendUvarint(kb, w)
		}
		return string(kb)
	}
	accepts := func(st state) string {
		var b []byte
		off := 0
		for _, i := range st.live {
			n := nfas[i]
			if n.accepting(st.sets[off : off+n.words]) {
				b = binary.AppendUvarint(b, uint64(i))
			}
			off += n.words
		}
		return string(b)
	}
	init := state{}
	for i, n := range nfas {
		init.live = append(init.live, int32(i))
		init.sets = append(init.sets, n.closure[0]...)
	}
	start := step(init, '/')
	start.path = "/"
	seen := map[string]bool{key(start): true}
	found := map[string]bool{}
	queue := []state{start}
	complete = true
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		if a := accepts(st); !found[a] {
			if p, err := route.NormalizePath(st.path); err == nil && p == st.path {
				found[a] = true
				examples = append(examples, st.path)
			}
		}
		if len(st.path) >= maxShapeLen {
			complete = false
			continue
		}
		for _, c := range alpha {
			next := step(st, c)
			k := key(next)
			if seen[k] {
				continue
			}
			if len(seen) >= maxShapeStates {
				complete = false
				continue
			}
			seen[k] = true
			queue = append(queue, next)
		}
	}
	sort.SliceStable(examples, func(i, j int) bool { return len(examples[i]) < len(examples[j]) })
	return examples, complete
}

// alphabet is every byte a matcher names, '/', and one byte none names.
func alphabet(ms []matcher) []byte {
	named := map[byte]bool{'/': true}
	for _, m := range ms {
		for _, e := range m {
			if e.kind == 'l' {
				named[e.b] = true
			}
		}
	}
	var other byte
	for _, c := range []byte("xyzqwkjv0123456789abcdefghilmnoprstu-_~") {
		if !named[c] {
			other = c
			break
		}
	}
	out := make([]byte, 0, len(named)+1)
	for c := range named {
		out = append(out, c)
	}
	slices.Sort(out)
	if other != 0 {
		// The byte that stands for all others comes first, so examples
		// read "/api/x" rather than "/api/-".
		out = append([]byte{other}, out...)
	}
	return out
}
