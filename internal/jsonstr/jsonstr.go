// Package jsonstr appends JSON strings exactly as the standard library's
// encoders write them — encoding/json with HTML escaping off, and
// log/slog's JSONHandler — so that the encoders turnout writes by hand on
// the request path (a function's event, the access log) give the same
// bytes as the library would.
package jsonstr

import "unicode/utf8"

// Append appends s quoted as encoding/json quotes it with HTML escaping
// off: '"' and '\\' escaped; \b \f \n \r \t as such and other control
// bytes as \u00XX (lower-case hex); invalid UTF-8 as \ufffd; U+2028 and
// U+2029 as \u2028 and \u2029.
func Append(b []byte, s string) []byte { return appendQuoted(b, s, true) }

// AppendSlog appends s quoted as log/slog's JSONHandler quotes it: as
// Append, but \b and \f as \u0008 and \u000c.
func AppendSlog(b []byte, s string) []byte { return appendQuoted(b, s, false) }

// plain holds the bytes copied as they are: ASCII from the space on, but
// '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendQuoted(b []byte, s string, shortBF bool) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b' && shortBF:
				b = append(b, '\\', 'b')
			case c == '\f' && shortBF:
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
