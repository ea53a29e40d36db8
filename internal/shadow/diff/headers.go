package diff

import (
	"mime"
	"net/http"
	"slices"
	"strings"
)

// notCompared are the headers the default set leaves out: they differ
// between any two answers (dates, connection handling, request ids).
var notCompared = map[string]bool{
	"Date":                true,
	"Server":              true,
	"Content-Length":      true,
	"Connection":          true,
	"Transfer-Encoding":   true,
	"Keep-Alive":          true,
	"X-Request-Id":        true,
	"X-Amzn-Requestid":    true,
	"X-Amz-Apigw-Id":      true,
	"X-Amzn-Trace-Id":     true,
	"Apigw-Requestid":     true,
	"X-Turnout-Served-By": true,
}

// headers compares the configured headers, or the default set.
func (c *comparison) headers(a, b http.Header) {
	if c.rules.headers != nil {
		for _, name := range c.rules.headers {
			c.header(name, a.Values(name), b.Values(name))
		}
		return
	}
	names := make([]string, 0, len(a)+1)
	names = append(names, "Content-Type")
	for k := range a {
		name := http.CanonicalHeaderKey(k)
		if name == "Content-Type" || notCompared[name] || len(b.Values(name)) == 0 {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	for _, name := range names {
		c.header(name, a.Values(name), b.Values(name))
	}
}

func (c *comparison) header(name string, va, vb []string) {
	if slices.Equal(va, vb) {
		return
	}
	path := "header:" + name
	sa, sb := headerValue(name, va), headerValue(name, vb)
	switch {
	case len(va) == 0:
		c.add(path, KindAdded, "", c.headerShown(name, vb, sb))
	case len(vb) == 0:
		c.add(path, KindMissing, c.headerShown(name, va, sa), "")
	case sa != sb:
		c.add(path, KindChanged, c.headerShown(name, va, sa), c.headerShown(name, vb, sb))
	}
}

// headerShown is a header's value as a Difference shows it: the compared
// form for Set-Cookie (its names), "[redacted]" for a sensitive header,
// else the values as sent.
func (c *comparison) headerShown(name string, v []string, compared string) string {
	switch {
	case name == "Set-Cookie":
		return short([]byte(compared))
	case c.rules.redactHeaders[name] || slices.Contains(sensitive, name):
		return Redacted
	}
	return short([]byte(strings.Join(v, ", ")))
}

// headerValue is the form a header is compared in.
func headerValue(name string, v []string) string {
	switch name {
	case "Content-Type":
		return mediaType(strings.Join(v, ", "))
	case "Set-Cookie":
		return cookieNames(v)
	}
	return strings.Join(v, ", ")
}

// mediaType reduces a Content-Type to its media type and charset, lower
// case: "application/json; charset=UTF-8" → "application/json;
// charset=utf-8". One that does not parse is compared lower-cased.
func mediaType(v string) string {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(v))
	}
	if cs, ok := params["charset"]; ok {
		return mt + "; charset=" + strings.ToLower(cs)
	}
	return mt
}

// cookieNames lists the names of the cookies set, sorted: their values
// (session ids, expiry dates) differ between any two answers.
func cookieNames(v []string) string {
	names := make([]string, 0, len(v))
	for _, c := range v {
		name, _, _ := strings.Cut(c, "=")
		names = append(names, strings.TrimSpace(name))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

type bodyKindT uint8

const (
	bodyBinary bodyKindT = iota
	bodyJSON
	bodyText
)

// bodyKind says how a's body is compared: by its Content-Type, or
// without one by sniffing — a body that parses as JSON is JSON, one
// net/http sniffs as text/* is text.
func bodyKind(a *Answer) bodyKindT {
	ct := a.Header.Get("Content-Type")
	if ct == "application/json" {
		return bodyJSON
	}
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err == nil {
			switch {
			case mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"):
				return bodyJSON
			case strings.HasPrefix(mt, "text/"):
				return bodyText
			}
			return bodyBinary
		}
	}
	p := getParser()
	err := p.parse(a.Body)
	putParser(p)
	if err == nil {
		return bodyJSON
	}
	if strings.HasPrefix(http.DetectContentType(a.Body), "text/") {
		return bodyText
	}
	return bodyBinary
}
