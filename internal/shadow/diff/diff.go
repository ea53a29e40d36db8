// Package diff compares a route's primary answer with its shadow's and
// lists the differences a person can act on: status, headers, and the
// body by JSON path, text line or hash (issue 17).
//
// What is compared:
//
//   - The status, always.
//   - Headers: the names given to Compile when there are any; otherwise
//     Content-Type and every header both answers set, except Date, Server,
//     Content-Length, Connection, Transfer-Encoding, Keep-Alive and request
//     ids (X-Request-Id, X-Amzn-Requestid, X-Amz-Apigw-Id, X-Amzn-Trace-Id,
//     Apigw-Requestid, X-Turnout-Served-By). Set-Cookie is compared by the
//     cookies' names only, Content-Type by media type and charset, case
//     ignored; other headers by their values joined with ", ".
//   - The body, by the Content-Type of the primary's answer (without one,
//     a body that parses as JSON is JSON, one net/http sniffs as text is
//     text): JSON structurally — member
//     order ignored, numbers compared exactly as numbers (1 == 1.0 ==
//     1e0, and big integers keep every digit), strings by their decoded
//     text, arrays index by index (extra indexes are "missing" or
//     "added"), a change of JSON type is Kind "type" — with differences at
//     paths such as "$.orders[3].total" or `$["a.b"]`; text/* line by line
//     ("body:line N", after the lines both share at the start and the end,
//     so one inserted line is one difference; at most 20 lines, then
//     "more"); anything else, a truncated
//     body, or JSON nested deeper than 64 levels, as a whole ("body",
//     "changed"), by hash when truncated.
//
// Ignore patterns are JSON paths with [*] for any index and .* for any
// member name ("$.generatedAt", "$.items[*].etag"); a difference at or
// below an ignored path is dropped.
//
// Noise cancelling (after Diffy): a Noise learns, from comparisons of two
// answers of the primary to one request, the places that differ anyway
// (timestamps, random ids), generalised to [*]; CompareNoise then lists a
// shadow's differences at or below those places as Result.Noise, apart
// from the differences counted against it.
//
// The work is bounded: at most 100 differences per comparison, then one
// Difference{Path: "...", Kind: "more"} and the walk stops; values in a
// Difference are cut to 120 bytes; nesting past 64 levels is not walked;
// members are paired through a map when an object is large and out of
// order, so no input is quadratic (BenchmarkCompareJSON1MBReordered);
// exponents longer than 100 digits are compared as written. FuzzCompare
// checks that no input panics, FuzzParse that the parser accepts exactly
// what encoding/json does, FuzzNumEqual that numbers compare as exact
// rationals do.
//
// Speed: BenchmarkCompareJSON10KB (two 10 KB JSON bodies, three
// differences) runs in ~28–34 µs and 16 small allocations (the
// differences' strings) per comparison: ~30,000–35,000 comparisons per
// second per core, on a shared 2-core VM (command in the benchmark's
// comment). The parse is most of it; encoding/json decoding the same two
// bodies into any takes ~270–670 µs (BenchmarkDecodeAny).
package diff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// Answer is one side's answer as the comparison sees it.
type Answer struct {
	Status int
	Header http.Header
	// Body is the answer's body, at most the route's limit.
	Body []byte
	// Truncated says the body was longer than the limit: it is compared
	// by Hash.
	Truncated bool
	// Hash is the sha256 of the whole body; the caller computes it while
	// reading. It is used only when either side is Truncated.
	Hash [32]byte
}

// Kinds of Difference.
const (
	KindChanged = "changed" // both have the place, with different values
	KindMissing = "missing" // only the primary (a) has it
	KindAdded   = "added"   // only the shadow (b) has it
	KindType    = "type"    // a JSON value changed type: number vs string ...
	KindMore    = "more"    // the comparison stopped at MaxDifferences
)

// MaxDifferences is the most differences one comparison lists before it
// stops with a Difference of Kind "more".
const MaxDifferences = 100

// maxValue is the longest value a Difference keeps, in bytes.
const maxValue = 120

// Result is what Compare found.
type Result struct {
	// Differences in a stable order: status, headers by name, then the
	// body in document order (the primary's, then what only the shadow
	// has).
	Differences []Difference
	// Noise are the differences at places the route's Noise covers, in
	// the same order and bounded the same way; only CompareNoise fills it.
	Noise []Difference
}

// Equal reports whether no difference was found, noise aside.
func (r Result) Equal() bool { return len(r.Differences) == 0 }

// Difference is one place where the answers differ.
type Difference struct {
	// Path is where: "status", "header:Content-Type", "$.orders[3].total",
	// "body" (text or binary as a whole), "body:line 12", or "..." for the
	// Kind "more" that ends a full list.
	Path string `json:"path"`
	// Kind is KindChanged, KindMissing, KindAdded, KindType or KindMore.
	Kind string `json:"kind"`
	// A and B are the two values, cut to ~120 bytes, for examples; empty
	// on the side that lacks the place.
	A string `json:"a,omitempty"`
	B string `json:"b,omitempty"`
}

// Rules are a route's comparison settings, compiled once per deployment
// and safe for concurrent use.
type Rules struct {
	ignore  []pattern
	headers []string // canonical names; nil for the default set
	// redacted header names and JSON paths, whose values a Difference
	// shows as "[redacted]"
	redactHeaders map[string]bool
	redactPaths   []pattern
}

// Compile compiles a route's ignore patterns and compared header names.
// Its errors name the bad entry and say what is wrong with it.
func Compile(ignore, headers []string) (*Rules, error) {
	r := &Rules{redactHeaders: sensitiveSet(nil)}
	for _, p := range ignore {
		pt, err := parsePattern(p)
		if err != nil {
			return nil, fmt.Errorf("ignore %w", err)
		}
		r.ignore = append(r.ignore, pt)
	}
	seen := map[string]bool{}
	for _, h := range headers {
		if !httpguts.ValidHeaderFieldName(h) {
			return nil, fmt.Errorf("header %q: not a valid header name", h)
		}
		c := http.CanonicalHeaderKey(h)
		if !seen[c] {
			seen[c] = true
			r.headers = append(r.headers, c)
		}
	}
	return r, nil
}

// WithRedact returns a copy of r whose differences show "[redacted]" for
// the values of the sensitive headers (Authorization, Cookie, Set-Cookie,
// Proxy-Authorization, X-Api-Key — always, even without WithRedact) and
// of redact's entries: header names, and JSON paths (starting with "$")
// whose values are hidden, in a Difference at or above the path (an
// object shown whole is redacted inside). A path applies where the body
// has its shape: "$.users[*].password" does not reach a "users" that is
// an object. A JSON body that cannot be walked is shown by hash when any
// path is redacted.
func (r *Rules) WithRedact(redact []string) (*Rules, error) {
	names, paths := SplitRedact(redact)
	c := *r
	c.redactHeaders = sensitiveSet(names)
	c.redactPaths = nil
	for _, n := range names {
		if !httpguts.ValidHeaderFieldName(n) {
			return nil, fmt.Errorf("redact %q: neither a header name nor a JSON path starting with $", n)
		}
	}
	for _, p := range paths {
		pt, err := parsePattern(p)
		if err != nil {
			return nil, fmt.Errorf("redact %w", err)
		}
		c.redactPaths = append(c.redactPaths, pt)
	}
	return &c, nil
}

// Compare compares the primary's answer a with the shadow's b. A nil
// answer is compared as an empty one.
func (r *Rules) Compare(a, b *Answer) Result { return r.CompareNoise(a, b, nil) }

// CompareNoise compares as Compare does, listing the differences noise
// covers in Result.Noise instead of Differences: a shadow whose only
// differences are noise answers as the primary does. noise may be nil.
func (r *Rules) CompareNoise(a, b *Answer, noise *Noise) Result {
	if r == nil {
		r = &Rules{}
	}
	if a == nil {
		a = &Answer{}
	}
	if b == nil {
		b = &Answer{}
	}
	c := comparison{rules: r, noise: noise.snapshot()}
	if a.Status != b.Status {
		c.add("status", KindChanged, strconv.Itoa(a.Status), strconv.Itoa(b.Status))
	}
	c.headers(a.Header, b.Header)
	c.body(a, b)
	return Result{Differences: c.diffs, Noise: c.noiseDiffs}
}

// comparison is the state of one Compare.
type comparison struct {
	rules      *Rules
	noise      noiseSet
	diffs      []Difference
	full       bool
	noiseDiffs []Difference
}

// add records a difference, or a noise one when the noise covers its
// place (every place but a JSON path, which addPath checks); it returns
// false once the list of differences is full.
func (c *comparison) add(path, kind, a, b string) bool {
	if c.full {
		return false
	}
	if kind != KindMore && len(c.noise.other) > 0 && !strings.HasPrefix(path, "$") && slices.Contains(c.noise.other, path) {
		return c.addNoise(Difference{Path: path, Kind: kind, A: a, B: b})
	}
	if len(c.diffs) == MaxDifferences {
		c.diffs = append(c.diffs, Difference{Path: "...", Kind: KindMore})
		c.full = true
		return false
	}
	c.diffs = append(c.diffs, Difference{Path: path, Kind: kind, A: a, B: b})
	return true
}

// addNoise records a noise difference; past MaxDifferences of them only
// a "more" is kept. The walk goes on: noise never fills the list.
func (c *comparison) addNoise(d Difference) bool {
	switch n := len(c.noiseDiffs); {
	case n < MaxDifferences:
		c.noiseDiffs = append(c.noiseDiffs, d)
	case n == MaxDifferences:
		c.noiseDiffs = append(c.noiseDiffs, Difference{Path: "...", Kind: KindMore})
	}
	return true
}

// addPath records a difference at a JSON path, redacting its values when
// a redact rule covers the path.
func (c *comparison) addPath(path []seg, kind string, a, b []byte) bool {
	if c.full {
		return false
	}
	var sa, sb string
	if matchAny(c.rules.redactPaths, path) {
		sa, sb = redacted(string(a)), redacted(string(b))
	} else {
		sa = short(redactValue(a, path, c.rules.redactPaths))
		sb = short(redactValue(b, path, c.rules.redactPaths))
	}
	if matchAny(c.noise.json, path) {
		return c.addNoise(Difference{Path: formatPath(path), Kind: kind, A: sa, B: sb})
	}
	return c.add(formatPath(path), kind, sa, sb)
}

func (c *comparison) ignored(path []seg) bool { return matchAny(c.rules.ignore, path) }

// body compares the bodies, choosing how by the primary's Content-Type.
func (c *comparison) body(a, b *Answer) {
	if a.Truncated || b.Truncated {
		if ha, hb := hashOf(a), hashOf(b); ha != hb {
			c.add("body", KindChanged, hashValue(ha), hashValue(hb))
		}
		return
	}
	if bytes.Equal(a.Body, b.Body) {
		return
	}
	switch bodyKind(a) {
	case bodyJSON:
		c.json(a.Body, b.Body)
	case bodyText:
		c.text(a.Body, b.Body)
	default:
		c.add("body", KindChanged, hashValue(hashOf(a)), hashValue(hashOf(b)))
	}
}

// json compares two JSON bodies. A body that is not JSON (or nested too
// deep) makes the comparison one of the bodies as a whole.
func (c *comparison) json(a, b []byte) {
	if matchAny(c.rules.ignore, nil) {
		return
	}
	pa, pb := getParser(), getParser()
	defer putParser(pa)
	defer putParser(pb)
	ea, eb := pa.parse(a), pb.parse(b)
	if ea != nil || eb != nil {
		kind := KindChanged
		if (ea == nil) != (eb == nil) && ea != errDepth && eb != errDepth {
			kind = KindType // JSON on one side only
		}
		sa, sb := short(a), short(b)
		if len(c.rules.redactPaths) > 0 { // a body not walked cannot be redacted
			sa, sb = hashValue(sha256.Sum256(a)), hashValue(sha256.Sum256(b))
		}
		c.add("body", kind, sa, sb)
		return
	}
	d := jsonDiff{c: c, a: a, b: b, na: pa.nodes, nb: pb.nodes, path: make([]seg, 0, 16)}
	d.node(0, 0)
}

// hashOf is the sha256 of a's whole body: the caller's Hash when the body
// was truncated, else computed here, so an untruncated answer need not
// carry one.
func hashOf(a *Answer) [32]byte {
	if a.Truncated {
		return a.Hash
	}
	return sha256.Sum256(a.Body)
}

// hashValue shows a hash in a Difference: its first 16 hex digits.
func hashValue(h [32]byte) string {
	return "sha256:" + hex.EncodeToString(h[:8]) + "…"
}

// short returns v cut to maxValue bytes at a character boundary, with an
// ellipsis when cut.
func short(v []byte) string {
	if len(v) <= maxValue {
		return string(v)
	}
	n := maxValue
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return string(v[:n]) + "…"
}

func redacted(v string) string {
	if v == "" {
		return ""
	}
	return Redacted
}
