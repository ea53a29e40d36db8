package route

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Options changes how a Table matches. The zero value matches as
// net/http.ServeMux and API Gateway do.
type Options struct {
	// CaseInsensitive matches the literal segments of every pattern ignoring
	// letter case, so "GET /admin/" also takes "/ADMIN/x" and "/Admin/x".
	// Use it in front of an origin that matches paths case-insensitively
	// (IIS, ASP.NET): case-sensitively, "/ADMIN/x" would miss the route
	// guarding "/admin/" and reach the catch-all origin, which serves it as
	// "/admin/x". Methods stay case-sensitive (HTTP's are); hosts are
	// always matched case-insensitively; wildcard values keep the client's
	// spelling. Two patterns that differ only by case are then the same
	// route, and Compile refuses them (PatternError.CaseOnly).
	//
	// Letters are equal when they are equal in upper case or in lower case
	// (Unicode simple case mapping), which covers both .NET's
	// OrdinalIgnoreCase (the dotless "ı" is "I") and Go's EqualFold (the
	// Kelvin sign is "k"): a path the origin would take for a route's is
	// matched by that route.
	CaseInsensitive bool
}

// foldKey returns the key a case-insensitive table files and looks up a
// literal segment under: lower(upper(r)) for each letter r. Bytes that are
// not UTF-8 are kept as they are, so two different invalid sequences stay
// different.
func foldKey(s string) string {
	if !needsFold(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte(c)
		} else {
			b.WriteRune(unicode.ToLower(unicode.ToUpper(r)))
		}
		i += n
	}
	return b.String()
}

// needsFold reports whether foldKey would change s: whether it has an upper
// case ASCII letter or any byte outside ASCII.
func needsFold(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// foldBuf is the most bytes of an ASCII segment a lookup folds on the stack;
// a longer segment with upper case letters costs one allocation.
const foldBuf = 64

// child returns the child of n filed under seg, folding seg first when the
// table is case-insensitive. The common segments (lower case, or ASCII up to
// foldBuf bytes) are looked up without allocating: a map index with
// string(bytes) does not copy.
func (n *node) child(seg string, fold bool) *node {
	if !fold || !needsFold(seg) {
		return n.children[seg]
	}
	if len(seg) <= foldBuf {
		var buf [foldBuf]byte
		b := buf[:len(seg)]
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if c >= utf8.RuneSelf {
				return n.children[foldKey(seg)]
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		return n.children[string(b)]
	}
	return n.children[foldKey(seg)]
}

// folded returns the canonical pattern with every literal segment folded,
// which ServeMux then checks for conflicts: two patterns that fold to the
// same one match the same requests in a case-insensitive table.
func (p *Pattern) folded() string {
	var b strings.Builder
	if p.Method != "" {
		b.WriteString(p.Method)
		b.WriteByte(' ')
	}
	b.WriteString(p.Host)
	p.writePath(&b, "...", "{$}", func(lit string) string { return url.PathEscape(foldKey(lit)) })
	return b.String()
}
