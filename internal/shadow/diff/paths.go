package diff

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A path is the place of a value in a JSON body: "$" is the whole body,
// ".name" an object member, "[3]" an array element, `["a.b"]` a member
// whose name is not a plain identifier. Patterns (ignore and redact rules)
// add "[*]" for any index and ".*" for any member name.

// seg is one step of a path as the comparison walks it: a member name
// (decoded, pointing into the body when it has no escapes) or an index.
type seg struct {
	key   []byte
	index int
	isIdx bool
}

// segKind is what one step of a pattern matches.
type segKind uint8

const (
	segKey segKind = iota
	segIndex
	segAnyKey
	segAnyIndex
)

type patSeg struct {
	kind  segKind
	key   string
	index int
}

// pattern is a compiled path pattern; it matches a path it is a prefix
// of, so that a rule on "$.items" covers everything below it.
type pattern []patSeg

// CheckPattern reports whether p is a valid ignore or redact pattern,
// with an error that says what is wrong and where, for the config parser.
func CheckPattern(p string) error {
	_, err := parsePattern(p)
	return err
}

func parsePattern(p string) (pattern, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("%q: a JSON path starts with $, as in $.items[*].etag", p)
	}
	var out pattern
	i := 1
	for i < len(p) {
		switch p[i] {
		case '.':
			i++
			if i < len(p) && p[i] == '.' {
				return nil, fmt.Errorf("%q: recursive descent (..) is not supported; name each step, with .* or [*] for any", p)
			}
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				if p[j] == ']' || p[j] == '"' || p[j] == ' ' {
					return nil, fmt.Errorf("%q: %q at byte %d in a member name; write odd names as [\"name\"]", p, p[j], j)
				}
				j++
			}
			name := p[i:j]
			switch name {
			case "":
				return nil, fmt.Errorf("%q: empty member name at byte %d", p, i)
			case "*":
				out = append(out, patSeg{kind: segAnyKey})
			default:
				out = append(out, patSeg{kind: segKey, key: name})
			}
			i = j
		case '[':
			end, s, err := parseBracket(p, i)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			i = end
		default:
			return nil, fmt.Errorf("%q: %q at byte %d; expected .name, .*, [N], [*] or [\"name\"]", p, p[i], i)
		}
	}
	return out, nil
}

// parseBracket parses the step starting at p[i] == '[' and returns the
// index after its ']'.
func parseBracket(p string, i int) (int, patSeg, error) {
	rest := p[i+1:]
	switch {
	case strings.HasPrefix(rest, "*]"):
		return i + 3, patSeg{kind: segAnyIndex}, nil
	case strings.HasPrefix(rest, `"`):
		end := quotedEnd(rest)
		if end < 0 || end >= len(rest) || rest[end] != ']' {
			return 0, patSeg{}, fmt.Errorf("%q: unterminated [\"name\"] at byte %d", p, i)
		}
		var name string
		if err := json.Unmarshal([]byte(rest[:end]), &name); err != nil {
			return 0, patSeg{}, fmt.Errorf("%q: bad quoted name at byte %d: %v", p, i, err)
		}
		return i + 1 + end + 1, patSeg{kind: segKey, key: name}, nil
	}
	j := strings.IndexByte(rest, ']')
	if j < 0 {
		return 0, patSeg{}, fmt.Errorf("%q: unterminated [ at byte %d", p, i)
	}
	n, err := strconv.Atoi(rest[:j])
	if err != nil || n < 0 || rest[0] == '+' {
		return 0, patSeg{}, fmt.Errorf("%q: index %q at byte %d must be a number ≥ 0 or *", p, rest[:j], i)
	}
	return i + 1 + j + 1, patSeg{kind: segIndex, index: n}, nil
}

// quotedEnd returns the index just after the JSON string s starts with,
// or -1 when it is not terminated.
func quotedEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// matches reports whether the pattern is a prefix of path.
func (pt pattern) matches(path []seg) bool {
	if len(pt) > len(path) {
		return false
	}
	for i, ps := range pt {
		s := path[i]
		switch ps.kind {
		case segKey:
			if s.isIdx || string(s.key) != ps.key {
				return false
			}
		case segIndex:
			if !s.isIdx || s.index != ps.index {
				return false
			}
		case segAnyKey:
			if s.isIdx {
				return false
			}
		case segAnyIndex:
			if !s.isIdx {
				return false
			}
		}
	}
	return true
}

func matchAny(pts []pattern, path []seg) bool {
	for _, pt := range pts {
		if pt.matches(path) {
			return true
		}
	}
	return false
}

// formatPath writes path as "$.orders[3].total".
func formatPath(path []seg) string {
	b := make([]byte, 0, 32)
	b = append(b, '$')
	for _, s := range path {
		if s.isIdx {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.index), 10)
			b = append(b, ']')
			continue
		}
		if plainName(s.key) {
			b = append(b, '.')
			b = append(b, s.key...)
			continue
		}
		b = append(b, '[')
		b = appendQuoted(b, s.key)
		b = append(b, ']')
	}
	return string(b)
}

// plainName reports whether a member name can be written after a dot:
// an identifier of ASCII letters, digits and _ not starting with a digit,
// and not "*" (which a pattern reads as any name).
func plainName(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// appendQuoted appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced.
func appendQuoted(b []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		b = utf8.AppendRune(b, r)
		i += n
	}
	return append(b, '"')
}

// Generalize replaces every index in a JSON path with [*], so that the
// differences of one field across the elements of a list count as one:
// "$.items[3].etag" → "$.items[*].etag". Names in ["..."] are kept as
// they are. The result is a valid ignore pattern, so learned noise can be
// turned into an ignore rule as it is shown.
func Generalize(path string) string {
	if strings.IndexByte(path, '[') < 0 {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); {
		c := path[i]
		if c != '[' {
			b.WriteByte(c)
			i++
			continue
		}
		rest := path[i+1:]
		if strings.HasPrefix(rest, `"`) {
			end := quotedEnd(rest)
			if end < 0 {
				b.WriteString(path[i:])
				break
			}
			b.WriteString(path[i : i+1+end])
			i += 1 + end
			continue
		}
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j > 0 && j < len(rest) && rest[j] == ']' {
			b.WriteString("[*]")
			i += 1 + j + 1
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}
