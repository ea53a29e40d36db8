package awsimport

import (
	"fmt"
	"slices"
	"strings"

	"github.com/turnout/turnout/internal/glob"
)

// CloudFront path patterns (docs/import.md, "CloudFront path patterns"):
// a pattern is matched against the whole path, case-sensitively; "*"
// matches any run of characters, "/" included, and may sit anywhere; "?"
// matches exactly one character; the query string never takes part. A
// leading "/" is optional ("images/*" and "/images/*" are one pattern). The
// behaviours are tried in order and the first whose pattern matches wins;
// the default behaviour ("*") comes last. A method outside the winner's
// AllowedMethods is answered 403: it does not fall through to a later
// behaviour.

// globPath returns the pattern with its leading "/".
func globPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// globMatch reports whether CloudFront pattern p (with its leading "/")
// matches path: case-sensitive, "*" and "?" as glob.Match has them.
func globMatch(p, path string) bool { return glob.Match(p, path, false) }

// validGlobByte reports whether CloudFront accepts c in a path pattern:
// A-Z a-z 0-9 _ - . * $ / ~ " ' @ : + and &.
func validGlobByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(`_-.*$/~"'@:+&?`, c) >= 0
}

// translation is the closest turnout paths for a CloudFront pattern and
// how they differ from it.
type translation struct {
	paths []string
	// exact says the paths match exactly the requests the pattern does.
	exact bool
	// note says how they differ, for the route's comment.
	note string
}

// translate gives the ServeMux paths closest to CloudFront pattern g
// (with its leading "/"):
//
//   - no wildcard: the exact path ("/a/b"; "/a/b/" is "/a/b/{$}"), exact;
//   - one "*" at the end, right after a "/": the prefix pattern ("/api/*"
//     is "/api/"), exact;
//   - one "*" at the end of a partial segment: the segment and everything
//     under it ("/api*" is "/api" and "/api/"), missing "/apiv2";
//   - any other wildcard: the prefix of the directory the first wildcard is
//     in ("/images/*.jpg" is "/images/"), which takes more than the pattern;
//     none when that directory is the root, which would be a catch-all.
func translate(g string) translation {
	if strings.Contains(g, "//") || hasDotSegment(g) {
		return translation{note: "turnout collapses \"//\" and refuses dot segments before matching, so no route can hold this pattern"}
	}
	w := strings.IndexAny(g, "*?")
	if w < 0 {
		if strings.HasSuffix(g, "/") {
			return translation{paths: []string{g + "{$}"}, exact: true}
		}
		return translation{paths: []string{g}, exact: true}
	}
	lit := g[:w]
	if w == len(g)-1 && g[w] == '*' {
		if strings.HasSuffix(lit, "/") {
			return translation{paths: []string{lit}, exact: true}
		}
		seg := lit[strings.LastIndexByte(lit, '/')+1:]
		return translation{paths: []string{lit, lit + "/"},
			note: fmt.Sprintf("%q and everything under it; CloudFront's * also takes %q followed by anything but \"/\"", lit, seg)}
	}
	dir := lit[:strings.LastIndexByte(lit, '/')+1]
	if dir == "/" {
		return translation{note: "no turnout pattern takes exactly these paths without taking every path"}
	}
	return translation{paths: []string{dir},
		note: fmt.Sprintf("every path under %q: turnout patterns have no wildcard inside a segment or across segments", dir)}
}

// Methods CloudFront can allow, in the order turnout routes are written.
var cfMethods = []string{"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}

// behaviour is one CloudFront cache behaviour, as its router needs it.
type behaviour struct {
	from    string // CacheBehaviors[2] PathPattern "api/*"
	glob    string // with its leading "/"
	target  string // "origin:NAME"
	methods []string
}

// cfRouter routes as CloudFront does: the first behaviour whose pattern
// matches the path wins; a method it does not allow gets 403.
type cfRouter struct{ bs []behaviour }

func (r *cfRouter) Route(method, path string) Decision {
	for i, b := range r.bs {
		if !globMatch(b.glob, path) {
			continue
		}
		if !slices.Contains(b.methods, method) {
			return Decision{Status: 403, By: b.from + " allows " + strings.Join(b.methods, ", "), Rule: i}
		}
		return Decision{Target: b.target, By: b.from, Rule: i}
	}
	// A distribution always has a default behaviour; this is only reached
	// by a Setup built without one.
	return Decision{Status: 404, By: "no behaviour", Rule: -1}
}

// hasDotSegment reports whether a path has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
