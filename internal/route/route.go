// Package route compiles route patterns into an immutable table and matches
// requests against it. Patterns use net/http.ServeMux syntax and precedence
// (the most specific pattern wins; conflicting patterns are refused), and
// requests are matched on a normalised path that is exactly what is forwarded.
package route

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// PatternError reports an invalid pattern or two conflicting patterns.
type PatternError struct {
	// Index is the pattern's position in the slice given to Check or Compile.
	Index int
	// Other is the index of the pattern it conflicts with, or -1.
	Other int
	// CaseOnly says the two patterns conflict only because the table
	// ignores case (Options.CaseInsensitive): "GET /admin" and "GET /Admin".
	CaseOnly bool
	Msg      string
}

func (e *PatternError) Error() string { return e.Msg }

// Pattern is a parsed route pattern.
type Pattern struct {
	// Canonical is the pattern as ServeMux sees it: "{x+}" spelled "{x...}",
	// host in lower case.
	Canonical string
	Method    string // "" matches every method; "GET" matches HEAD too
	Host      string // "" matches every host
	segs      []segment
}

type segment struct {
	lit   string // unescaped literal; "/" for a trailing {$}
	name  string // wildcard name; "" for an anonymous trailing-slash wildcard
	wild  bool
	multi bool
}

// Names returns the pattern's wildcard names in order.
func (p *Pattern) Names() []string {
	var names []string
	for _, s := range p.segs {
		if s.wild && s.name != "" {
			names = append(names, s.name)
		}
	}
	return names
}

var plusWildcard = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\+\}`)

// Canonical rewrites API Gateway's greedy "{name+}" as ServeMux's
// "{name...}", collapses the space after the method, and lower-cases the host.
func Canonical(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "+}") {
		s = plusWildcard.ReplaceAllString(s, "{$1...}")
	}
	method, rest, found := "", s, false
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		method, rest, found = s[:i], strings.TrimLeft(s[i+1:], " \t"), true
	}
	if i := strings.IndexByte(rest, '/'); i > 0 {
		host := strings.TrimSuffix(strings.ToLower(rest[:i]), ".")
		rest = host + rest[i:]
	}
	if found {
		return method + " " + rest
	}
	return rest
}

// Parse parses one pattern. It accepts exactly what ServeMux accepts, plus
// "{name+}".
func Parse(s string) (*Pattern, error) {
	c := Canonical(s)
	mux := http.NewServeMux()
	if err := register(mux, c); err != nil {
		return nil, err
	}
	return parseValid(c), nil
}

// register adds c to mux, turning ServeMux's panics into errors.
func register(mux *http.ServeMux, c string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if e, ok := v.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", v)
			}
		}
	}()
	mux.Handle(c, http.NotFoundHandler())
	return nil
}

// parseValid splits a pattern that ServeMux has accepted.
func parseValid(c string) *Pattern {
	p := &Pattern{Canonical: c}
	rest := c
	if i := strings.IndexAny(c, " \t"); i >= 0 {
		p.Method, rest = c[:i], strings.TrimLeft(c[i+1:], " \t")
	}
	i := strings.IndexByte(rest, '/')
	p.Host, rest = rest[:i], rest[i:]
	for len(rest) > 0 {
		rest = rest[1:]
		if rest == "" {
			p.segs = append(p.segs, segment{wild: true, multi: true})
			break
		}
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			j = len(rest)
		}
		seg := rest[:j]
		rest = rest[j:]
		switch {
		case seg == "{$}":
			p.segs = append(p.segs, segment{lit: "/"})
		case strings.HasPrefix(seg, "{"):
			name, multi := strings.CutSuffix(seg[1:len(seg)-1], "...")
			p.segs = append(p.segs, segment{name: name, wild: true, multi: multi})
		default:
			p.segs = append(p.segs, segment{lit: unescape(seg)})
		}
	}
	return p
}

var conflictOther = regexp.MustCompile(`conflicts with pattern ("(?:[^"\\]|\\.)*")`)

// Check parses patterns and reports every invalid pattern and every pair
// that ServeMux would refuse as conflicting (including duplicates).
func Check(patterns []string) []*PatternError { return Options{}.Check(patterns) }

// Check is Check for a table compiled with o: with CaseInsensitive, patterns
// that conflict once their literals are folded are refused too.
func (o Options) Check(patterns []string) []*PatternError {
	_, errs := compile(patterns, o.CaseInsensitive)
	return errs
}

// compile registers every pattern in a ServeMux (the reference for syntax and
// conflicts) and parses the valid ones. With fold, each pattern's folded
// form is registered in a second ServeMux too, whose conflicts are those of
// a case-insensitive table.
func compile(patterns []string, fold bool) ([]*Pattern, []*PatternError) {
	mux, fmux := http.NewServeMux(), http.NewServeMux()
	parsed := make([]*Pattern, len(patterns))
	index := make(map[string]int, len(patterns))
	var findex map[string]int
	if fold {
		findex = make(map[string]int, len(patterns))
	}
	var errs []*PatternError
	for i, s := range patterns {
		c := Canonical(s)
		if err := register(mux, c); err != nil {
			errs = append(errs, describe(i, s, c, err, index, patterns, false))
			continue
		}
		index[c] = i
		p := parseValid(c)
		if fold {
			fc := p.folded()
			if err := register(fmux, fc); err != nil {
				errs = append(errs, describe(i, s, fc, err, findex, patterns, true))
				continue
			}
			findex[fc] = i
		}
		parsed[i] = p
	}
	return parsed, errs
}

// describe explains err, ServeMux's refusal of pattern i (orig, registered
// as c); index maps the registered patterns to their indexes. folded says
// c is the folded form, registered to check a case-insensitive table.
func describe(i int, orig, c string, err error, index map[string]int, patterns []string, folded bool) *PatternError {
	msg := err.Error()
	if m := conflictOther.FindStringSubmatch(msg); m != nil {
		other, uerr := strconv.Unquote(m[1])
		if j, ok := index[other]; ok && uerr == nil {
			why := ""
			if k := strings.Index(msg, ":\n"); k >= 0 {
				why = strings.TrimSpace(msg[k+2:])
			}
			switch {
			case folded && (other == c || strings.Contains(why, "matches the same requests")):
				return &PatternError{Index: i, Other: j, CaseOnly: true, Msg: fmt.Sprintf("route %q matches the same requests as %q once case is ignored", orig, patterns[j])}
			case folded:
				return &PatternError{Index: i, Other: j, CaseOnly: true, Msg: fmt.Sprintf("route %q conflicts with %q once case is ignored: %s", orig, patterns[j], why)}
			case other == c:
				return &PatternError{Index: i, Other: j, Msg: fmt.Sprintf("duplicate route %q", orig)}
			}
			return &PatternError{Index: i, Other: j, Msg: fmt.Sprintf("route %q conflicts with %q: %s", orig, other, why)}
		}
	}
	// ServeMux says `parsing "X": at offset N: reason`; keep the reason.
	if k := strings.Index(msg, ": "); strings.HasPrefix(msg, "parsing ") && k >= 0 {
		msg = msg[k+2:]
	}
	return &PatternError{Index: i, Other: -1, Msg: fmt.Sprintf("invalid route pattern %q: %s", orig, msg)}
}

// ErrPatterns is wrapped by Compile's error when patterns are invalid.
var ErrPatterns = errors.New("invalid route patterns")

// Template returns the pattern's path as an API Gateway resource template:
// "{name...}" is written "{name+}" and "{$}" is dropped, so
// "GET /user/{id}" gives "/user/{id}" and "/api/{proxy...}" "/api/{proxy+}".
func (p *Pattern) Template() string {
	var b strings.Builder
	p.writePath(&b, "+", "", func(lit string) string { return lit })
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// writePath writes the pattern's path to b a segment at a time: a
// wildcard as "{name}", a multi-segment one as "{name" + multi + "}", the
// trailing "{$}" as end, and a literal segment as lit spells it.
func (p *Pattern) writePath(b *strings.Builder, multi, end string, lit func(string) string) {
	for _, s := range p.segs {
		b.WriteByte('/')
		switch {
		case s.multi && s.name == "":
		case s.multi:
			b.WriteString("{" + s.name + multi + "}")
		case s.wild:
			b.WriteString("{" + s.name + "}")
		case s.lit == "/":
			b.WriteString(end)
		default:
			b.WriteString(lit(s.lit))
		}
	}
}
