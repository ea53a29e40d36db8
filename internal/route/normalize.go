package route

import (
	"errors"
	"strings"
)

// Path normalisation errors. Each is answered with 400 Bad Request.
var (
	ErrPathNotAbsolute   = errors.New("path must start with /")
	ErrPathEscape        = errors.New("invalid percent-encoding in path")
	ErrPathEncodedSlash  = errors.New("encoded slash (%2F) in path")
	ErrPathBackslash     = errors.New("backslash in path")
	ErrPathNUL           = errors.New("NUL in path")
	ErrPathParameter     = errors.New("path parameter (;) in path")
	ErrPathDotSegment    = errors.New("dot segment (. or ..) in path")
	ErrPathInvalidByte   = errors.New("invalid byte in path")
	ErrPathFragmentInURI = errors.New("fragment in request target")
)

// NormalizePath returns the one spelling of an escaped request path that
// turnout matches and forwards, or an error when the path is ambiguous.
//
// The policy (docs/routing.md, "Request policy and path normalisation"):
//   - percent-encoded unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded
//     and other escapes written in upper case, so "/%61dmin" is "/admin";
//   - runs of slashes collapse to one ("//admin" is "/admin");
//   - rejected: dot segments "." and ".." (also encoded, "%2e%2e"), encoded
//     slashes "%2F", backslashes raw or "%5C", NUL, raw ";" (path parameters,
//     which Java servers strip: "/admin;x", "/user/..;/admin"), control
//     bytes, "#", and malformed escapes.
//
// Bytes above 0x7F are percent-encoded. The result is what the backend
// receives, so the route that matched is the route the backend serves.
func NormalizePath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", ErrPathNotAbsolute
	}
	if clean(p) {
		return p, nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !ishex(p[i+1]) || !ishex(p[i+2]) {
				return "", ErrPathEscape
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			switch {
			case d == '/':
				return "", ErrPathEncodedSlash
			case d == '\\':
				return "", ErrPathBackslash
			case d == 0:
				return "", ErrPathNUL
			case unreserved(d):
				c = d
			default:
				b.WriteByte('%')
				b.WriteByte(upperhex[d>>4])
				b.WriteByte(upperhex[d&15])
				continue
			}
		case c == '\\':
			return "", ErrPathBackslash
		case c == ';':
			return "", ErrPathParameter
		case c == 0:
			return "", ErrPathNUL
		case c == '#':
			return "", ErrPathFragmentInURI
		case c < 0x21 || c == 0x7f:
			return "", ErrPathInvalidByte
		case c >= 0x80:
			b.WriteByte('%')
			b.WriteByte(upperhex[c>>4])
			b.WriteByte(upperhex[c&15])
			continue
		}
		if c == '/' {
			s := b.String()
			if len(s) > 0 && s[len(s)-1] == '/' {
				continue
			}
		}
		b.WriteByte(c)
	}
	out := b.String()
	if hasDotSegment(out) {
		return "", ErrPathDotSegment
	}
	return out, nil
}

// clean reports whether p is already normal: only plain bytes, no "//", no
// dot segments. It keeps the common case free of allocations.
func clean(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' || c == '\\' || c == ';' || c == '#' || c < 0x21 || c >= 0x7f {
			return false
		}
		if c == '/' && i > 0 && p[i-1] == '/' {
			return false
		}
	}
	return !hasDotSegment(p)
}

func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		j := i + 1
		for j < len(p) && p[j] == '.' {
			j++
		}
		if n := j - i - 1; (n == 1 || n == 2) && (j == len(p) || p[j] == '/') {
			return true
		}
	}
	return false
}

const upperhex = "0123456789ABCDEF"

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// NormalizeHost lower-cases a Host header value and removes its port and a
// trailing dot, so "API.Example.com.:443" matches "api.example.com".
func NormalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
