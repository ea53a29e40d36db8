package diff

import (
	"net/http"
	"strings"
)

// Redacted replaces a sensitive value in a report.
const Redacted = "[redacted]"

// sensitive are the headers always redacted: they carry credentials.
var sensitive = []string{"Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization", "X-Api-Key"}

func sensitiveSet(extra []string) map[string]bool {
	m := make(map[string]bool, len(sensitive)+len(extra))
	for _, n := range sensitive {
		m[n] = true
	}
	for _, n := range extra {
		m[http.CanonicalHeaderKey(n)] = true
	}
	return m
}

// SplitRedact splits a route's redact list into header names and JSON
// paths (the entries starting with "$").
func SplitRedact(redact []string) (headers, paths []string) {
	for _, r := range redact {
		if strings.HasPrefix(r, "$") {
			paths = append(paths, r)
		} else {
			headers = append(headers, r)
		}
	}
	return headers, paths
}

// RedactHeader returns a copy of h with the values of the sensitive
// headers replaced by "[redacted]": Authorization, Cookie, Set-Cookie,
// Proxy-Authorization, X-Api-Key, plus extra names (any case).
func RedactHeader(h http.Header, extra []string) http.Header {
	set := sensitiveSet(extra)
	out := make(http.Header, len(h))
	for k, v := range h {
		if set[http.CanonicalHeaderKey(k)] {
			r := make([]string, len(v))
			for i := range r {
				r[i] = Redacted
			}
			out[k] = r
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

// RedactJSON returns body with the values at the given JSON paths
// (patterns with [*] and .*, as ignore rules; invalid ones are skipped —
// check them with CheckPattern first) replaced by "[redacted]", the rest
// of the body byte for byte as it was. A body that is not JSON, a
// truncated one among them, is returned as is: the caller must not show a
// truncated JSON body when it has paths to redact. When nothing matches,
// body itself is returned.
func RedactJSON(body []byte, paths []string) []byte {
	var pts []pattern
	for _, p := range paths {
		if pt, err := parsePattern(p); err == nil {
			pts = append(pts, pt)
		}
	}
	return redactJSON(body, pts)
}

// redactJSON is RedactJSON with compiled patterns.
func redactJSON(body []byte, pts []pattern) []byte {
	if len(pts) == 0 {
		return body
	}
	p := getParser()
	defer putParser(p)
	if p.parse(body) != nil {
		return body
	}
	r := redaction{body: body, nodes: p.nodes, pts: pts}
	r.walk(0, nil)
	if len(r.spans) == 0 {
		return body
	}
	out := make([]byte, 0, len(body))
	last := int32(0)
	for _, s := range r.spans {
		out = append(out, body[last:s[0]]...)
		out = append(out, `"`+Redacted+`"`...)
		last = s[1]
	}
	return append(out, body[last:]...)
}

// redactValue redacts the places below path in v, the JSON value at path
// that a Difference is about to show: redact patterns that reach below
// path apply to v relative to it. A value that does not parse (cut, or
// too deep) while a pattern reaches into it is hidden whole.
func redactValue(v []byte, path []seg, pts []pattern) []byte {
	var rel []pattern
	for _, pt := range pts {
		if len(pt) > len(path) && pt[:len(path)].matches(path) {
			rel = append(rel, pt[len(path):])
		}
	}
	if len(rel) == 0 || len(v) == 0 {
		return v
	}
	p := getParser()
	err := p.parse(v)
	putParser(p)
	if err != nil {
		return []byte(Redacted)
	}
	return redactJSON(v, rel)
}

// redaction collects the spans of the values to redact, in order.
type redaction struct {
	body  []byte
	nodes []node
	pts   []pattern
	spans [][2]int32
}

func (r *redaction) walk(i int32, path []seg) {
	n := &r.nodes[i]
	if matchAny(r.pts, path) {
		r.spans = append(r.spans, [2]int32{n.start, n.end})
		return
	}
	switch n.kind {
	case kArray:
		j := 0
		for c := i + 1; c < n.next; c, j = r.nodes[c].next, j+1 {
			r.walk(c, append(path, seg{isIdx: true, index: j}))
		}
	case kObject:
		for c := i + 1; c < n.next; c = r.nodes[c].next {
			r.walk(c, append(path, seg{key: decodeKey(r.body, &r.nodes[c])}))
		}
	}
}
