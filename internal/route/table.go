package route

import (
	"fmt"
	"net/url"
	"strings"
)

// Table is a compiled, immutable set of patterns. It is safe for concurrent
// use; a new configuration compiles a new Table instead of changing one.
//
// Matching follows net/http.ServeMux exactly (a differential test holds it
// to that) except that it never redirects: where ServeMux would answer
// "/images" with a 301 to "/images/", Table falls through to the next
// matching pattern, because a gateway in front of a legacy service must not
// change what an unmigrated URL does.
type Table struct {
	patterns []*Pattern
	hosts    map[string]*methodNode
	anyHost  *methodNode
	fold     bool // Options.CaseInsensitive: literals are filed under foldKey
}

type methodNode struct {
	methods   map[string]*node
	anyMethod *node
}

type node struct {
	route    int // index of the pattern ending here, or -1
	children map[string]*node
	wild     *node // single-segment wildcard
	multi    *node // rest-of-path wildcard (always a leaf)
	named    bool  // a multi leaf whose wildcard has a name (records a value)
}

func newNode() *node { return &node{route: -1} }

// CompileError lists every invalid or conflicting pattern.
type CompileError struct{ Errs []*PatternError }

func (e *CompileError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, pe := range e.Errs {
		msgs[i] = pe.Msg
	}
	return fmt.Sprintf("%v: %s", ErrPatterns, strings.Join(msgs, "; "))
}

func (e *CompileError) Unwrap() error { return ErrPatterns }

// Compile builds a Table from patterns; route indexes in matches are indexes
// into patterns. It fails with a *CompileError when any pattern is invalid or
// two conflict.
func Compile(patterns []string) (*Table, error) { return Options{}.Compile(patterns) }

// Compile is Compile for a table that matches as o says.
func (o Options) Compile(patterns []string) (*Table, error) {
	parsed, errs := compile(patterns, o.CaseInsensitive)
	if len(errs) > 0 {
		return nil, &CompileError{Errs: errs}
	}
	t := &Table{patterns: parsed, hosts: map[string]*methodNode{}, anyHost: &methodNode{methods: map[string]*node{}}, fold: o.CaseInsensitive}
	for i, p := range parsed {
		mn := t.anyHost
		if p.Host != "" {
			mn = t.hosts[p.Host]
			if mn == nil {
				mn = &methodNode{methods: map[string]*node{}}
				t.hosts[p.Host] = mn
			}
		}
		var n *node
		if p.Method == "" {
			if mn.anyMethod == nil {
				mn.anyMethod = newNode()
			}
			n = mn.anyMethod
		} else {
			n = mn.methods[p.Method]
			if n == nil {
				n = newNode()
				mn.methods[p.Method] = n
			}
		}
		for _, s := range p.segs {
			switch {
			case s.multi:
				if n.multi == nil {
					n.multi = newNode()
				}
				n = n.multi
				n.named = s.name != ""
			case s.wild:
				if n.wild == nil {
					n.wild = newNode()
				}
				n = n.wild
			default:
				if n.children == nil {
					n.children = map[string]*node{}
				}
				key := s.lit
				if t.fold {
					key = foldKey(key)
				}
				c := n.children[key]
				if c == nil {
					c = newNode()
					n.children[key] = c
				}
				n = c
			}
		}
		n.route = i
	}
	return t, nil
}

// CaseInsensitive reports whether t matches literals ignoring case.
func (t *Table) CaseInsensitive() bool { return t.fold }

// Len returns the number of patterns.
func (t *Table) Len() int { return len(t.patterns) }

// Pattern returns pattern i.
func (t *Table) Pattern(i int) *Pattern { return t.patterns[i] }

// HasHost reports whether some pattern names host (lower case, no port).
func (t *Table) HasHost(host string) bool {
	_, ok := t.hosts[host]
	return ok
}

// Match finds the pattern for a request. host is lower case without port or
// trailing dot, path is a normalised escaped path (see NormalizePath). Values
// are the wildcard values in the order of Pattern.Names, appended to buf.
func (t *Table) Match(host, method, path string, buf []string) (route int, values []string, ok bool) {
	if host != "" {
		if mn := t.hosts[host]; mn != nil {
			if r, v := mn.match(method, path, buf, t.fold); r >= 0 {
				return r, v, true
			}
		}
	}
	if r, v := t.anyHost.match(method, path, buf, t.fold); r >= 0 {
		return r, v, true
	}
	return -1, buf, false
}

func (mn *methodNode) match(method, path string, buf []string, fold bool) (int, []string) {
	if n := mn.methods[method]; n != nil {
		if r, v := n.match(path, buf, fold); r >= 0 {
			return r, v
		}
	}
	if method == "HEAD" {
		if n := mn.methods["GET"]; n != nil {
			if r, v := n.match(path, buf, fold); r >= 0 {
				return r, v
			}
		}
	}
	if mn.anyMethod != nil {
		return mn.anyMethod.match(path, buf, fold)
	}
	return -1, buf
}

// match mirrors ServeMux's routingNode.matchPath: literal children first,
// then a single wildcard, then the rest-of-path wildcard. Conflict checking
// at compile time guarantees the first match found is the most specific.
// With fold, literal children are looked up ignoring case; the values
// recorded keep the path's own spelling.
func (n *node) match(path string, buf []string, fold bool) (int, []string) {
	if n == nil {
		return -1, buf
	}
	if path == "" {
		return n.route, buf
	}
	seg, rest := firstSegment(path)
	if c := n.child(seg, fold); c != nil {
		if r, v := c.match(rest, buf, fold); r >= 0 {
			return r, v
		}
	}
	if seg != "/" && n.wild != nil {
		if r, v := n.wild.match(rest, append(buf, seg), fold); r >= 0 {
			return r, v
		}
	}
	if n.multi == nil || n.multi.route < 0 {
		return -1, buf
	}
	if n.multi.named {
		buf = append(buf, unescape(path[1:]))
	}
	return n.multi.route, buf
}

func firstSegment(path string) (seg, rest string) {
	if path == "/" {
		return "/", ""
	}
	path = path[1:]
	i := strings.IndexByte(path, '/')
	if i < 0 {
		i = len(path)
	}
	return unescape(path[:i]), path[i:]
}

func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}
