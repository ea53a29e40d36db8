package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ErrMalformed is wrapped by every ParseV1 and ParseV2 error; the rest of
// the message says what the function got wrong.
var ErrMalformed = errors.New("malformed function response")

// Response is a function response, checked and ready to write.
type Response struct {
	Status int
	// Header holds canonical names, without hop-by-hop headers or
	// Content-Length.
	Header http.Header
	Body   []byte
}

// ParseV1 parses a payload format 1.0 response
// (events.APIGatewayProxyResponse): a JSON object with an integer
// statusCode, optional headers, multiValueHeaders, body and isBase64Encoded.
func ParseV1(payload []byte) (*Response, error) { return parse(payload, false) }

// ParseV2 parses a payload format 2.0 response
// (events.APIGatewayV2HTTPResponse). As AWS documents, valid JSON without a
// statusCode key (a string, a number, an object...) is the body of a 200
// response with Content-Type application/json. cookies become Set-Cookie
// headers.
func ParseV2(payload []byte) (*Response, error) { return parse(payload, true) }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// quote shortens raw JSON for an error message.
func quote(raw []byte) string {
	const max = 40
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}

// parse reads the common shape with parseFast and leaves everything else,
// every error included, to parseSlow.
func parse(payload []byte, v2 bool) (*Response, error) {
	if resp := parseFast(payload, v2); resp != nil {
		return resp, nil
	}
	return parseSlow(payload, v2)
}

// parseSlow is the reference parser: encoding/json, one field at a time.
func parseSlow(payload []byte, v2 bool) (*Response, error) {
	payload = bytes.TrimSpace(payload)
	// An object is checked by the decoding that reads it (a function's
	// answer is scanned once, not twice); anything else only here.
	var obj map[string]json.RawMessage
	if len(payload) > 0 && payload[0] == '{' {
		if json.Unmarshal(payload, &obj) != nil {
			return nil, malformed("not valid JSON (%d bytes); return a JSON object with statusCode", len(payload))
		}
	} else if !json.Valid(payload) {
		return nil, malformed("not valid JSON (%d bytes); return a JSON object with statusCode", len(payload))
	}
	if _, ok := obj["statusCode"]; !ok {
		if v2 {
			return &Response{
				Status: http.StatusOK,
				Header: http.Header{"Content-Type": {"application/json"}},
				Body:   slices.Clone(payload),
			}, nil
		}
		return nil, malformed("no statusCode; payload format 1.0 needs a JSON object with statusCode")
	}
	resp := &Response{Header: http.Header{}}
	var err error
	if resp.Status, err = parseStatus(obj["statusCode"]); err != nil {
		return nil, err
	}

	// headers first, then multiValueHeaders replaces any name it has.
	if err := parseHeaders(resp.Header, obj["headers"]); err != nil {
		return nil, err
	}
	if err := parseMultiHeaders(resp.Header, obj["multiValueHeaders"]); err != nil {
		return nil, err
	}
	if raw, ok := obj["cookies"]; ok && v2 && !isNull(raw) {
		var cookies []json.RawMessage
		if err := json.Unmarshal(raw, &cookies); err != nil {
			return nil, malformed("cookies must be an array of strings, got %s", quote(raw))
		}
		for i, c := range cookies {
			var s string
			if err := json.Unmarshal(c, &s); err != nil {
				return nil, malformed("cookies[%d] must be a string, got %s", i, quote(c))
			}
			if !validValue(s) {
				return nil, malformed("cookies[%d] contains a control character", i)
			}
			resp.Header["Set-Cookie"] = append(resp.Header["Set-Cookie"], s)
		}
	}
	dropHopByHop(resp.Header)

	var body string
	if raw, ok := obj["body"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &body); err != nil {
			return nil, malformed("body must be a string, got %s", quote(raw))
		}
	}
	isBase64 := false
	if raw, ok := obj["isBase64Encoded"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &isBase64); err != nil {
			return nil, malformed("isBase64Encoded must be true or false, got %s", quote(raw))
		}
	}
	if isBase64 {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, malformed("isBase64Encoded is true but body is not valid base64: %v", err)
		}
		resp.Body = b
	} else if body != "" {
		resp.Body = []byte(body)
	}
	if !bodyAllowed(resp.Status) {
		resp.Body = nil
	}
	return resp, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

func parseStatus(raw json.RawMessage) (int, error) {
	s := string(raw)
	code, err := strconv.Atoi(s)
	if err != nil {
		return 0, malformed("statusCode must be an integer from 200 to 599, got %s", quote(raw))
	}
	if code < 200 || code > 599 {
		return 0, malformed("statusCode %d is out of range; use 200 to 599", code)
	}
	return code, nil
}

// headerValue accepts a JSON string, number or boolean as a header value
// (AWS stringifies them); null reports ok=false.
func headerValue(raw json.RawMessage) (v string, ok bool, err error) {
	switch {
	case isNull(raw):
		return "", false, nil
	case raw[0] == '"':
		err = json.Unmarshal(raw, &v)
		return v, true, err
	case raw[0] == '{' || raw[0] == '[':
		return "", false, errors.New("not a string")
	}
	return string(raw), true, nil // number, true or false
}

func checkHeader(name, value string) error {
	if !validName(name) {
		return malformed("header name %q is not a valid HTTP token", name)
	}
	if !validValue(value) {
		return malformed("header %q has a control character (CR, LF or NUL...) in its value", name)
	}
	return nil
}

func parseHeaders(h http.Header, raw json.RawMessage) error {
	if raw == nil || isNull(raw) {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return malformed("headers must be an object of strings, got %s", quote(raw))
	}
	// Sorted, so names that differ only in case resolve the same way every
	// time (the last in byte order wins).
	for _, name := range sortedKeys(m) {
		v, ok, err := headerValue(m[name])
		if err != nil {
			return malformed("headers[%q] must be a string, got %s", name, quote(m[name]))
		}
		if !ok {
			continue
		}
		if err := checkHeader(name, v); err != nil {
			return err
		}
		h[http.CanonicalHeaderKey(name)] = []string{v}
	}
	return nil
}

func parseMultiHeaders(h http.Header, raw json.RawMessage) error {
	if raw == nil || isNull(raw) {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return malformed("multiValueHeaders must be an object of string arrays, got %s", quote(raw))
	}
	replaced := map[string]bool{}
	for _, name := range sortedKeys(m) {
		if isNull(m[name]) {
			continue
		}
		var list []json.RawMessage
		if err := json.Unmarshal(m[name], &list); err != nil {
			return malformed("multiValueHeaders[%q] must be an array of strings, got %s", name, quote(m[name]))
		}
		key := http.CanonicalHeaderKey(name)
		if !replaced[key] {
			replaced[key] = true
			delete(h, key)
		}
		if !validName(name) {
			return malformed("header name %q is not a valid HTTP token", name)
		}
		for _, item := range list {
			v, ok, err := headerValue(item)
			if err != nil {
				return malformed("multiValueHeaders[%q] must hold strings, got %s", name, quote(item))
			}
			if !ok {
				continue
			}
			if err := checkHeader(name, v); err != nil {
				return err
			}
			h[key] = append(h[key], v)
		}
	}
	return nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// hopByHop are the headers a function may not set (RFC 9110 section 7.6.1)
// plus Content-Length, which Write computes.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
}

func dropHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				delete(h, http.CanonicalHeaderKey(f))
			}
		}
	}
	for _, name := range hopByHop {
		delete(h, name)
	}
}

// validName reports whether s is an RFC 9110 token.
// validName reports whether s is an HTTP field name (a token).
func validName(s string) bool { return httpguts.ValidHeaderFieldName(s) }

// validValue rejects control characters other than tab (CR and LF would
// split the response; NUL is refused by most clients).
func validValue(s string) bool { return httpguts.ValidHeaderFieldValue(s) }

// bodyAllowed reports whether a response with this status may have a body.
func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// Write sends the response: headers, Content-Length, status and body. It
// replaces any header of the same name already set on w, and suppresses
// Go's Content-Type sniffing when the function set no Content-Type.
func (r *Response) Write(w http.ResponseWriter) {
	h := w.Header()
	for k, vs := range r.Header {
		h[k] = slices.Clone(vs)
	}
	if _, ok := r.Header["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	if bodyAllowed(r.Status) {
		h["Content-Length"] = []string{strconv.Itoa(len(r.Body))}
	} else {
		delete(h, "Content-Length")
	}
	w.WriteHeader(r.Status)
	if len(r.Body) > 0 && bodyAllowed(r.Status) {
		w.Write(r.Body)
	}
}
