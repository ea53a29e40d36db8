package diff

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"sync"
)

// The JSON side of the comparison. A body is parsed once into a flat
// tree: nodes in document order, each with the byte span of its value
// and the index of its next sibling, so that a subtree is skipped in one
// step and two identical subtrees are recognised by comparing their
// bytes. Nothing is decoded into Go values: strings and numbers are
// compared from their bytes, which is both exact (a number keeps every
// digit) and cheap (no allocation per value). encoding/json decoding
// into any with UseNumber takes 10–20 times as long for two 10 KB bodies as
// this package's whole comparison of them (BenchmarkDecodeAny); its
// Valid is the reference the parser is fuzzed against (FuzzParse).
// encoding/json/jsontext, which would tokenize as fast, is in Go 1.26
// only under GOEXPERIMENT=jsonv2, and its module copy would be a new
// direct dependency for ~200 lines of parser.

// maxDepth is the deepest nesting parsed; a deeper body is compared as
// bytes rather than structurally.
const maxDepth = 64

type kind uint8

const (
	kNull kind = iota
	kFalse
	kTrue
	kNumber
	kString
	kArray
	kObject
)

// class is the JSON type of a kind: true and false are both booleans.
func (k kind) class() kind {
	if k == kTrue {
		return kFalse
	}
	return k
}

type node struct {
	kind       kind
	keyEsc     bool  // the member name has escapes: decode before comparing
	start, end int32 // the value's bytes
	keyStart   int32 // the member name's bytes, without quotes, in an object
	keyEnd     int32
	next       int32 // the index of the node after this one's subtree
	n          int32 // members or elements
}

var (
	errSyntax = errors.New("not JSON")
	errDepth  = errors.New("JSON nested deeper than 64")
)

type parser struct {
	b     []byte
	i     int
	nodes []node
}

var parsers = sync.Pool{New: func() any { return &parser{nodes: make([]node, 0, 256)} }}

func getParser() *parser { return parsers.Get().(*parser) }

func putParser(p *parser) {
	if cap(p.nodes) > 1<<16 { // do not keep the tree of a huge body
		p.nodes = make([]node, 0, 256)
	}
	p.b = nil
	parsers.Put(p)
}

// parse parses b into p.nodes; the root is node 0.
func (p *parser) parse(b []byte) error {
	if len(b) >= math.MaxInt32 {
		return errSyntax
	}
	p.b, p.i, p.nodes = b, 0, p.nodes[:0]
	p.ws()
	if err := p.value(0); err != nil {
		return err
	}
	p.ws()
	if p.i != len(p.b) {
		return errSyntax
	}
	return nil
}

// sep reads what follows a member or an element: the container's closing
// byte (done) or a comma and the space after it.
func (p *parser) sep(closing byte) (done bool, err error) {
	p.ws()
	if p.i >= len(p.b) {
		return false, errSyntax
	}
	switch p.b[p.i] {
	case closing:
		p.i++
		return true, nil
	case ',':
		p.i++
		p.ws()
		return false, nil
	}
	return false, errSyntax
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) error {
	if p.i >= len(p.b) {
		return errSyntax
	}
	idx := len(p.nodes)
	p.nodes = append(p.nodes, node{start: int32(p.i), keyStart: -1, keyEnd: -1})
	var k kind
	var n int32
	switch c := p.b[p.i]; c {
	case '{':
		k = kObject
		if depth >= maxDepth {
			return errDepth
		}
		p.i++
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			break
		}
		for {
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return errSyntax
			}
			ks := p.i + 1
			esc, err := p.str()
			if err != nil {
				return err
			}
			ke := p.i - 1
			p.ws()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return errSyntax
			}
			p.i++
			p.ws()
			child := len(p.nodes)
			if err := p.value(depth + 1); err != nil {
				return err
			}
			m := &p.nodes[child]
			m.keyStart, m.keyEnd, m.keyEsc = int32(ks), int32(ke), esc
			n++
			done, err := p.sep('}')
			if err != nil {
				return err
			}
			if done {
				break
			}
		}
	case '[':
		k = kArray
		if depth >= maxDepth {
			return errDepth
		}
		p.i++
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			break
		}
		for {
			if err := p.value(depth + 1); err != nil {
				return err
			}
			n++
			done, err := p.sep(']')
			if err != nil {
				return err
			}
			if done {
				break
			}
		}
	case '"':
		k = kString
		if _, err := p.str(); err != nil {
			return err
		}
	case 't':
		k = kTrue
		if err := p.lit("true"); err != nil {
			return err
		}
	case 'f':
		k = kFalse
		if err := p.lit("false"); err != nil {
			return err
		}
	case 'n':
		k = kNull
		if err := p.lit("null"); err != nil {
			return err
		}
	default:
		k = kNumber
		if err := p.num(); err != nil {
			return err
		}
	}
	nd := &p.nodes[idx]
	nd.kind, nd.n, nd.end, nd.next = k, n, int32(p.i), int32(len(p.nodes))
	return nil
}

func (p *parser) lit(s string) error {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return errSyntax
	}
	p.i += len(s)
	return nil
}

// str scans the string at p.b[p.i] == '"' and reports whether it has
// escapes.
func (p *parser) str() (bool, error) {
	esc := false
	b := p.b
	for i := p.i + 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			p.i = i + 1
			return esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(b) {
				return false, errSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return false, errSyntax
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return false, errSyntax
					}
				}
				i += 4
			default:
				return false, errSyntax
			}
		case c < 0x20:
			return false, errSyntax
		}
	}
	return false, errSyntax
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (p *parser) num() error {
	b, i := p.b, p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		s := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == s {
			return errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		s := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == s {
			return errSyntax
		}
	}
	p.i = i
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// numEqual reports whether two JSON numbers have the same value, exactly:
// 1, 1.0, 1e0 and 10e-1 are equal; 9007199254740993 and
// 9007199254740992 are not (float64 would round both to one value).
// Each is reduced to sign, significant digits and a power of ten.
func numEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ba, bb [40]byte
	na, nb := canonNum(a, ba[:0]), canonNum(b, bb[:0])
	if na.huge || nb.huge {
		return false
	}
	if len(na.digits) == 0 || len(nb.digits) == 0 {
		return len(na.digits) == len(nb.digits) // zero, whatever its sign
	}
	if na.neg != nb.neg || !bytes.Equal(na.digits, nb.digits) {
		return false
	}
	if na.bigExp == nil && nb.bigExp == nil {
		return na.exp == nb.exp
	}
	return na.exponent().Cmp(nb.exponent()) == 0
}

type canon struct {
	neg    bool
	digits []byte   // significant digits, no leading or trailing zeros
	exp    int64    // value = digits × 10^exp
	bigExp *big.Int // set instead of exp when the literal's exponent is large
	huge   bool     // the exponent has more than maxExpDigits digits
}

// maxExpDigits bounds the exponents compared by value: math/big reads a
// decimal in quadratic time, and a hostile answer could carry a
// megabyte-long exponent. Numbers with longer exponents are equal only
// when written alike.
const maxExpDigits = 100

func (c canon) exponent() *big.Int {
	if c.bigExp != nil {
		return c.bigExp
	}
	return big.NewInt(c.exp)
}

// canonNum reduces a valid JSON number; buf holds its digits.
func canonNum(s []byte, buf []byte) canon {
	var c canon
	i := 0
	if i < len(s) && s[i] == '-' {
		c.neg = true
		i++
	}
	var frac int64
	for ; i < len(s) && isDigit(s[i]); i++ {
		buf = append(buf, s[i])
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isDigit(s[i]); i++ {
			buf = append(buf, s[i])
			frac++
		}
	}
	var expLit []byte
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		expLit = s[i+1:]
	}
	// Strip leading zeros (no change of value) and trailing zeros (each one
	// a power of ten).
	for len(buf) > 0 && buf[0] == '0' {
		buf = buf[1:]
	}
	var trail int64
	for len(buf) > 0 && buf[len(buf)-1] == '0' {
		buf = buf[:len(buf)-1]
		trail++
	}
	c.digits = buf
	shift := trail - frac // both bounded by the body's length
	neg := false
	if len(expLit) > 0 && (expLit[0] == '+' || expLit[0] == '-') {
		neg = expLit[0] == '-'
		expLit = expLit[1:]
	}
	for len(expLit) > 1 && expLit[0] == '0' {
		expLit = expLit[1:]
	}
	if len(expLit) > maxExpDigits {
		c.huge = true
		return c
	}
	if len(expLit) > 17 {
		e, _ := new(big.Int).SetString(string(expLit), 10)
		if neg {
			e.Neg(e)
		}
		c.bigExp = e.Add(e, big.NewInt(shift))
		return c
	}
	var e int64
	for _, d := range expLit {
		e = e*10 + int64(d-'0')
	}
	if neg {
		e = -e
	}
	c.exp = e + shift
	return c
}

// strEqual reports whether two JSON string literals (with their quotes)
// hold the same text; escapes are decoded only when either has one.
func strEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return false
	}
	var sa, sb string
	if json.Unmarshal(a, &sa) != nil || json.Unmarshal(b, &sb) != nil {
		return false
	}
	return sa == sb
}

// decodeKey returns a member name's text: the body's bytes when it has no
// escapes, else a decoded copy.
func decodeKey(body []byte, n *node) []byte {
	raw := body[n.keyStart:n.keyEnd]
	if !n.keyEsc {
		return raw
	}
	q := body[n.keyStart-1 : n.keyEnd+1]
	var s string
	if json.Unmarshal(q, &s) != nil {
		return raw
	}
	return []byte(s)
}

// jsonDiff walks two parsed bodies side by side.
type jsonDiff struct {
	c      *comparison
	a, b   []byte
	na, nb []node
	path   []seg
	seen   []bool // b's members matched, per object (reused)
}

func (d *jsonDiff) raw(body []byte, n *node) []byte { return body[n.start:n.end] }

// node compares a's node ia with b's node ib at d.path. It returns false
// once the comparison is full.
func (d *jsonDiff) node(ia, ib int32) bool {
	x, y := &d.na[ia], &d.nb[ib]
	ra, rb := d.raw(d.a, x), d.raw(d.b, y)
	if bytes.Equal(ra, rb) {
		return true
	}
	if d.c.ignored(d.path) {
		return true
	}
	if x.kind.class() != y.kind.class() {
		return d.c.addPath(d.path, KindType, ra, rb)
	}
	if matchAny(d.c.noise.json, d.path) { // one noise difference for the subtree
		return d.c.addPath(d.path, KindChanged, ra, rb)
	}
	switch x.kind {
	case kNumber:
		if numEqual(ra, rb) {
			return true
		}
	case kString:
		if strEqual(ra, rb) {
			return true
		}
	case kArray:
		return d.array(ia, ib)
	case kObject:
		return d.object(ia, ib)
	}
	return d.c.addPath(d.path, KindChanged, ra, rb)
}

func (d *jsonDiff) array(ia, ib int32) bool {
	x, y := &d.na[ia], &d.nb[ib]
	ca, cb := ia+1, ib+1
	ea, eb := x.next, y.next
	d.path = append(d.path, seg{isIdx: true})
	defer func() { d.path = d.path[:len(d.path)-1] }()
	i := 0
	for ; ca < ea && cb < eb; i++ {
		d.path[len(d.path)-1].index = i
		if !d.node(ca, cb) {
			return false
		}
		ca, cb = d.na[ca].next, d.nb[cb].next
	}
	for j := i; ca < ea; j++ {
		d.path[len(d.path)-1].index = j
		if !d.c.ignored(d.path) && !d.c.addPath(d.path, KindMissing, d.raw(d.a, &d.na[ca]), nil) {
			return false
		}
		ca = d.na[ca].next
	}
	for j := i; cb < eb; j++ {
		d.path[len(d.path)-1].index = j
		if !d.c.ignored(d.path) && !d.c.addPath(d.path, KindAdded, nil, d.raw(d.b, &d.nb[cb])) {
			return false
		}
		cb = d.nb[cb].next
	}
	return true
}

// object pairs members by name. The common case, both answers listing
// members in one order, costs one name comparison per member; otherwise a
// small object is searched linearly and a large one through a map, so
// hostile input stays linear. With duplicate names the first one counts.
func (d *jsonDiff) object(ia, ib int32) bool {
	x, y := &d.na[ia], &d.nb[ib]
	mark := len(d.seen)
	for range y.n {
		d.seen = append(d.seen, false)
	}
	seen := d.seen[mark:]
	defer func() { d.seen = d.seen[:mark] }()
	d.path = append(d.path, seg{})
	defer func() { d.path = d.path[:len(d.path)-1] }()
	top := len(d.path) - 1

	var index map[string]memberRef // b's members by name, for large objects
	cb, pos := ib+1, int32(0)      // b's member at a's position
	for ca := ia + 1; ca < x.next; ca = d.na[ca].next {
		ka := decodeKey(d.a, &d.na[ca])
		d.path[top] = seg{key: ka}
		match, mi := int32(-1), int32(-1)
		if cb < y.next && bytes.Equal(decodeKey(d.b, &d.nb[cb]), ka) && !seen[pos] {
			match, mi = cb, pos
		} else if y.n <= 16 {
			j := int32(0)
			for c := ib + 1; c < y.next; c, j = d.nb[c].next, j+1 {
				if !seen[j] && bytes.Equal(decodeKey(d.b, &d.nb[c]), ka) {
					match, mi = c, j
					break
				}
			}
		} else {
			if index == nil {
				index = d.objectIndex(ib)
			}
			if m, ok := index[string(ka)]; ok && !seen[m.number] {
				match, mi = m.node, m.number
			}
		}
		if cb < y.next {
			cb = d.nb[cb].next
			pos++
		}
		if match < 0 {
			if !d.c.ignored(d.path) && !d.c.addPath(d.path, KindMissing, d.raw(d.a, &d.na[ca]), nil) {
				return false
			}
			continue
		}
		seen[mi] = true
		if !d.node(ca, match) {
			return false
		}
	}
	j := 0
	for c := ib + 1; c < y.next; c, j = d.nb[c].next, j+1 {
		if seen[j] {
			continue
		}
		d.path[top] = seg{key: decodeKey(d.b, &d.nb[c])}
		if !d.c.ignored(d.path) && !d.c.addPath(d.path, KindAdded, nil, d.raw(d.b, &d.nb[c])) {
			return false
		}
	}
	return true
}

type memberRef struct{ node, number int32 }

// objectIndex maps the names of b's object ib to their members, first
// occurrence winning.
func (d *jsonDiff) objectIndex(ib int32) map[string]memberRef {
	m := make(map[string]memberRef, d.nb[ib].n)
	j := int32(0)
	for c := ib + 1; c < d.nb[ib].next; c, j = d.nb[c].next, j+1 {
		k := string(decodeKey(d.b, &d.nb[c]))
		if _, ok := m[k]; !ok {
			m[k] = memberRef{c, j}
		}
	}
	return m
}
