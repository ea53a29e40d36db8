package traffic

import "strings"

// The parameters a template puts in place of identifier-like segments.
const (
	ParamID    = "{id}"
	ParamUUID  = "{uuid}"
	ParamHex   = "{hex}"
	ParamOther = "{param}"
)

// Template returns the inferred template of a raw (escaped) path: segments
// that look like identifiers collapse into parameters, so every call of one
// endpoint lands in one row (/user/42/orders → /user/{id}/orders).
//
// The path is split on '/' (never on an escaped %2F) and each segment is
// judged on its percent-decoded bytes, but written back as sent: kept
// segments keep their escapes and case, and the output has exactly as many
// segments as the input (empty segments and a trailing slash stay). The
// query must not be included. The rules, first match wins:
//
//  1. An empty segment, or one that is already a parameter ({id}, {uuid},
//     {hex}, {param}), stays; so Template(Template(p)) == Template(p).
//  2. Matrix parameters: from the first ';' on, a non-empty rest becomes
//     ";{param}" (/items;jsessionid=A1B2 → /items;{param}); the part
//     before ';' is judged by the rules below.
//  3. Version numbers stay: an optional v/V then 2–3 dot-separated numbers of
//     1–3 digits each (1.2, v2.0, 4.17.21).
//  4. Whole-segment rules:
//     - digits only → {id} (42, 2024, 0007);
//     - a UUID, 8-4-4-4-12 hex digits in either case → {uuid};
//     - hex digits only, either ≥ 16 of them, or ≥ 8 mixing digits and
//     letters a-f → {hex} (5f2b6c1e9a7d4e3f, 3f9a1c2b; not "deadbeef");
//     - a date, YYYY-MM-DD followed only by time characters [0-9TZtz:.+-]
//     → {param} (2024-01-15, 2024-01-15T10:00:00.123Z);
//     - an email address, '@' after at least one byte and a '.' after it
//     followed by something → {param}, except an image density suffix
//     (logo@2x.png stays);
//     - a token (below) → {param}. Only dot-free segments are judged as a
//     whole token, so a file name keeps its shape (rule 5).
//  5. A segment with dots that no rule above took is judged part by part
//     between the dots with the id/uuid/hex/date/token rules:
//     app.3f9a1c2b.js → app.{hex}.js, 42.json → {id}.json, a JWT →
//     {param}.{param}.{param}, 10.0.0.1 → {id}.{id}.{id}.{id}.
//  6. Everything else stays: words, slugs, v1, v2beta1, oauth2, k8s, x86_64,
//     sha256, Google-style custom methods (projects/p:run), non-ASCII text.
//
// A token is made only of [A-Za-z0-9_~+=-], has at least one letter, and
// is one of:
//   - a code with digits: at least one digit and either a run of ≥ 4
//     digits (user12345, ORD-2024-000123, IMG_20240115_1234), ≥ 4
//     letter/digit alternations (x7Kp2QzA), a run of ≥ 16 letters and
//     digits without separators (base64url: dGhpcyBpcyBhIHRva2Vu), or
//     ≥ 8 letters whose case changes at least every other letter
//     (cus_NffrFeUfNV2Hib);
//   - letters only, ≥ 20 of them, with letter case changing at least once
//     every 3 letters and at least two upper-case pairs (base64 that
//     happens to hold no digit; camelCase words rarely have "UU" pairs);
//   - base64 with '=' padding: ≥ 8 bytes ending in '='.
//
// The rules are heuristics: a long camelCase word with acronyms and short
// words (iOSAppDeepLinkConfigV) can look like a token, and a short random code (Zm9vYmFy) like a word. What they miss
// costs rows, not correctness: the Table bounds its rows and folds the rest
// into one overflow row.
func Template(rawPath string) string {
	var buf [256]byte
	return string(appendTemplate(buf[:0], rawPath))
}

// appendTemplate appends the template of p to dst; it allocates only when
// dst is too small or a segment holds a very long escaped run.
func appendTemplate(dst []byte, p string) []byte {
	for {
		j := strings.IndexByte(p, '/')
		if j < 0 {
			return appendSegment(dst, p)
		}
		dst = appendSegment(dst, p[:j])
		dst = append(dst, '/')
		p = p[j+1:]
	}
}

func isPlaceholder(s string) bool {
	switch s {
	case ParamID, ParamUUID, ParamHex, ParamOther:
		return true
	}
	return false
}

func appendSegment(dst []byte, seg string) []byte {
	if seg == "" || isPlaceholder(seg) {
		return append(dst, seg...)
	}
	// One pass finds what the rules branch on; paths are mostly short
	// segments, where separate IndexByte calls would cost more than this.
	dotted, escaped, plain := false, false, true
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; c {
		case ';':
			dst = appendSegment(dst, seg[:i])
			dst = append(dst, ';')
			if i+1 < len(seg) {
				dst = append(dst, ParamOther...)
			}
			return dst
		case '.':
			dotted = true
		case '%':
			escaped = true
		default:
			plain = plain && (c >= 'a' && c <= 'z' || c == '-' || c == '_')
		}
	}
	// Lower-case words shorter than 16 bytes match no rule: the common
	// case (api, users, orders, customer-notes) skips classify.
	if plain && !dotted && !escaped && len(seg) < 16 {
		return append(dst, seg...)
	}
	if dotted && isVersion(seg) {
		return append(dst, seg...)
	}
	if p := classifyRaw(seg, escaped, true, dotted); p != "" {
		return append(dst, p...)
	}
	if !dotted {
		return append(dst, seg...)
	}
	for {
		j := strings.IndexByte(seg, '.')
		part := seg
		if j >= 0 {
			part = seg[:j]
		}
		if part == "" || isPlaceholder(part) {
			dst = append(dst, part...)
		} else if p := classifyRaw(part, escaped && strings.IndexByte(part, '%') >= 0, false, false); p != "" {
			dst = append(dst, p...)
		} else {
			dst = append(dst, part...)
		}
		if j < 0 {
			return dst
		}
		dst = append(dst, '.')
		seg = seg[j+1:]
	}
}

// isVersion reports an optional v/V then 2–3 dot-separated runs of 1–3
// digits, judged on the raw bytes (escaped versions are not versions).
func isVersion(s string) bool {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	parts, run := 1, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			run++
			if run > 3 {
				return false
			}
		case c == '.':
			if run == 0 {
				return false
			}
			parts++
			run = 0
		default:
			return false
		}
	}
	return run > 0 && parts >= 2 && parts <= 3
}

// classifyRaw percent-decodes s when it holds escapes (escaped) and classifies the
// result. whole enables the whole-segment-only rules (email); dotted turns
// the token rule off, so file names are judged part by part.
func classifyRaw(s string, escaped, whole, dotted bool) string {
	if !escaped {
		return classify(s, whole, dotted)
	}
	var buf [128]byte
	return classify(unescapeInto(buf[:0], s), whole, dotted)
}

// unescapeInto appends s with its %XX escapes decoded; a '%' that does not
// start a valid escape is kept as is.
func unescapeInto(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func ishex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// classify applies the id, uuid, hex, date, email and token rules to the
// decoded bytes s and returns the parameter, or "" when s stays.
func classify[T string | []byte](s T, whole, dotted bool) string {
	n := len(s)
	if n == 0 {
		return ""
	}
	var digits, letters, hexLetters, upperLower int
	var run, maxDigitRun, alnumRun, maxAlnumRun, alternations, caseChanges, upperPairs int
	tokenChars := true
	var prev byte // previous byte, for letter/digit alternations
	var prevCase byte
	at := -1
	dotAfterAt := false
	for i := 0; i < n; i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digits++
			run++
			maxDigitRun = max(maxDigitRun, run)
			alnumRun++
			if isLetter(prev) {
				alternations++
			}
		case isLetter(c):
			letters++
			run = 0
			alnumRun++
			if c <= 'f' && c >= 'a' || c <= 'F' && c >= 'A' {
				hexLetters++
			}
			if isDigit(prev) {
				alternations++
			}
			cs := byte('l')
			if c <= 'Z' {
				cs = 'u'
				upperLower |= 1
			} else {
				upperLower |= 2
			}
			if prevCase != 0 && cs != prevCase {
				caseChanges++
			} else if cs == 'u' && prevCase == 'u' {
				upperPairs++
			}
			prevCase = cs
		default:
			run, alnumRun = 0, 0
			switch c {
			case '_', '~', '+', '=', '-':
			default:
				tokenChars = false
			}
			if c == '@' && at < 0 && i > 0 {
				at = i
			} else if c == '.' && at >= 0 && i+1 < n && !isDensity(s, at+1, i) {
				dotAfterAt = true
			}
		}
		maxAlnumRun = max(maxAlnumRun, alnumRun)
		prev = c
	}
	if digits == n {
		return ParamID
	}
	if n == 36 && isUUID(s) {
		return ParamUUID
	}
	if digits+hexLetters == n && (n >= 16 || n >= 8 && digits > 0 && hexLetters > 0) {
		return ParamHex
	}
	if n >= 10 && isDate(s) {
		return ParamOther
	}
	if whole && at > 0 && dotAfterAt {
		return ParamOther
	}
	if dotted || !tokenChars || letters == 0 {
		return ""
	}
	if digits > 0 && (maxDigitRun >= 4 || alternations >= 4 || maxAlnumRun >= 16 || letters >= 8 && caseChanges*2 >= letters) {
		return ParamOther
	}
	if digits == 0 && letters >= 20 && caseChanges*3 >= letters && upperPairs >= 2 {
		return ParamOther
	}
	if n >= 8 && s[n-1] == '=' {
		return ParamOther
	}
	return ""
}

// isDensity reports an image density suffix between '@' and '.', as in
// logo@2x.png: s[from:to] is one digit then 'x'.
func isDensity[T string | []byte](s T, from, to int) bool {
	return to-from == 2 && isDigit(s[from]) && s[from+1] == 'x'
}

func isUUID[T string | []byte](s T) bool {
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !ishex(s[i]) {
				return false
			}
		}
	}
	return true
}

// isDate reports YYYY-MM-DD followed only by time characters.
func isDate[T string | []byte](s T) bool {
	for i := 0; i < 10; i++ {
		c := s[i]
		if i == 4 || i == 7 {
			if c != '-' {
				return false
			}
		} else if !isDigit(c) {
			return false
		}
	}
	for i := 10; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c), c == 'T', c == 'Z', c == 't', c == 'z', c == ':', c == '.', c == '+', c == '-':
		default:
			return false
		}
	}
	return true
}

// appendRouteTemplate appends the template of path p served by the route
// pattern route ("[METHOD ][HOST]/path/{name}/{rest...}"). The route knows
// better than any heuristic which segments are parameters: a segment under
// a wildcard becomes the wildcard ({name}), literal segments are kept, and
// what a trailing {rest...} or a prefix pattern ("/static/") covers is
// inferred. When the route has no wildcard, or the raw path does not line up
// with it segment by segment (it was normalised: "//", escapes), the path is
// inferred as a whole, as for a log line.
func appendRouteTemplate(dst []byte, route, p string) []byte {
	if strings.IndexByte(route, '{') < 0 {
		return appendTemplate(dst, p)
	}
	pat := route
	if i := strings.IndexByte(pat, ' '); i >= 0 {
		pat = strings.TrimLeft(pat[i+1:], " \t")
	}
	i := strings.IndexByte(pat, '/')
	if i < 0 || len(p) == 0 || p[0] != '/' {
		return appendTemplate(dst, p)
	}
	pat, rest := pat[i+1:], p[1:]
	start := len(dst)
	dst = append(dst, '/')
	for {
		ps, pnext, pmore := cutSegment(pat)
		if ps == "{$}" {
			if rest != "" {
				break
			}
			return dst
		}
		if strings.HasPrefix(ps, "{") && strings.HasSuffix(ps, "...}") {
			return appendTemplate(dst, rest)
		}
		if !pmore && ps == "" {
			// A prefix pattern ("/static/"): infer what it covers.
			return appendTemplate(dst, rest)
		}
		seg, rnext, rmore := cutSegment(rest)
		if strings.HasPrefix(ps, "{") && strings.HasSuffix(ps, "}") {
			dst = append(dst, ps...)
		} else if seg == ps {
			dst = append(dst, seg...)
		} else {
			break
		}
		if pmore != rmore {
			break
		}
		if !pmore {
			return dst
		}
		dst = append(dst, '/')
		pat, rest = pnext, rnext
	}
	return appendTemplate(dst[:start], p)
}

// cutSegment splits s at its first '/': the segment, what follows it, and
// whether there was a '/'.
func cutSegment(s string) (seg, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}
