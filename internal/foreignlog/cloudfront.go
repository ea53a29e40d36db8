package foreignlog

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/turnout/turnout"
)

// CloudFront standard logs are tab-separated, one request per line, with
// "-" for an empty value, after two directives:
//
//	#Version: 1.0
//	#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) ...
//
// The parser maps the "#Fields:" names to column indexes, so logs with
// fields selected or reordered (standard logging v2) read correctly; a log
// without the header (headers stripped before concatenation) is read in the
// legacy 33-field order. A "#Fields:" line anywhere switches the mapping.
//
// What an Observation gets:
//   - Time: date + time (UTC, second resolution; the time the response
//     finished).
//   - Host: x-host-header (the Host the viewer sent), else cs(Host) (the
//     distribution's domain).
//   - Path, RawQuery: cs-uri-stem and cs-uri-query ("-" = no query).
//     CloudFront percent-encodes these fields in the log, "%" included, so a
//     request for /a%20b is logged as /a%2520b; the parser undoes that one
//     level (only for fields that contain "%"), giving the path as the
//     viewer sent it. A field whose escapes are malformed is kept as logged.
//   - Status: sc-status ("000": the viewer went away first → 0).
//   - Bytes: sc-bytes, the bytes served to the viewer INCLUDING response
//     headers — slightly more than the body size.
//   - RequestBytes: cs-bytes, the request's bytes including headers.
//   - Duration: time-taken (seconds, millisecond resolution).
//   - Target: "cloudfront" (the log does not say which origin answered).
//   - Outcome: "throttled" for x-edge-result-type LimitExceeded or
//     CapacityExceeded (Reason "limit_exceeded" / "capacity_exceeded"),
//     "error" for Error with a 5xx status (Reason: x-edge-detailed-result-type
//     when logged, e.g. "OriginConnectError"), "served" otherwise.

// CloudFront fields the parser reads.
const (
	cfDate = iota
	cfTime
	cfMethod
	cfHost
	cfHostHeader
	cfStem
	cfQuery
	cfStatus
	cfBytes
	cfTimeTaken
	cfResult
	cfCsBytes
	cfDetailed
	cfNumFields
)

var cfFieldNames = map[string]int{
	"date":                        cfDate,
	"time":                        cfTime,
	"cs-method":                   cfMethod,
	"cs(Host)":                    cfHost,
	"x-host-header":               cfHostHeader,
	"cs-uri-stem":                 cfStem,
	"cs-uri-query":                cfQuery,
	"sc-status":                   cfStatus,
	"sc-bytes":                    cfBytes,
	"time-taken":                  cfTimeTaken,
	"x-edge-result-type":          cfResult,
	"cs-bytes":                    cfCsBytes,
	"x-edge-detailed-result-type": cfDetailed,
}

// cfLegacyFields is the documented field order of the legacy standard log,
// used until a "#Fields:" header says otherwise.
const cfLegacyFields = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end"

type cloudFrontParser struct {
	col     []int8 // column index → field id, or -1 for a column not read
	ncols   int    // columns the header names
	need    int    // columns a line must have to reach every field read
	min     int    // columns a line must have at least (< need without a header)
	missing string // a required field the header lacks; every line fails
	vals    [cfNumFields][]byte
	days    dayCache
	hosts   *interner
	buf     []byte // scratch for percent-decoding
}

func newCloudFrontParser() *cloudFrontParser {
	p := &cloudFrontParser{hosts: newInterner(1024)}
	p.setFields(strings.Fields(cfLegacyFields))
	// Without a header, accept older, shorter lines: fields were only ever
	// appended, and the first 12 (through cs-uri-query) have always been
	// there.
	p.min = 12
	return p
}

func (p *cloudFrontParser) setFields(names []string) {
	p.col = p.col[:0]
	p.need, p.missing, p.ncols = 0, "", len(names)
	defer func() { p.min = p.need }()
	seen := [cfNumFields]bool{}
	for i, n := range names {
		id, ok := cfFieldNames[n]
		if !ok || seen[id] {
			p.col = append(p.col, -1)
			continue
		}
		seen[id] = true
		p.col = append(p.col, int8(id))
		p.need = i + 1
	}
	for _, req := range []int{cfDate, cfTime, cfStem} {
		if !seen[req] {
			for n, id := range cfFieldNames {
				if id == req {
					p.missing = "the #Fields header has no " + n + " field"
				}
			}
		}
	}
}

// decoded returns s percent-decoded (into p.buf, which the next call
// reuses) when it has escapes and the decoded form is still valid, or s as
// it stands (see "What an Observation gets" at the top of this file).
func (p *cloudFrontParser) decoded(s []byte, valid func([]byte) bool) []byte {
	if bytes.IndexByte(s, '%') >= 0 {
		if d, ok := percentDecode(p.buf[:0], s); ok && valid(d) {
			p.buf = d
			return d
		}
	}
	return s
}

func (p *cloudFrontParser) parse(line []byte, o *turnout.Observation) error {
	if line[0] == '#' {
		if rest, ok := bytes.CutPrefix(line, []byte("#Fields:")); ok {
			p.setFields(strings.Fields(string(rest)))
		}
		return errDirective
	}
	if p.missing != "" {
		return reason(p.missing)
	}
	p.vals = [cfNumFields][]byte{}
	rest := line
	for i := 0; i < p.need; i++ {
		if rest == nil {
			if i >= p.min {
				break
			}
			return reason(fmt.Sprintf("%d tab-separated fields, the #Fields header names %d", i, p.ncols))
		}
		var f []byte
		if j := bytes.IndexByte(rest, '\t'); j >= 0 {
			f, rest = rest[:j], rest[j+1:]
		} else {
			f, rest = rest, nil
		}
		if id := p.col[i]; id >= 0 {
			p.vals[id] = f
		}
	}
	v := &p.vals

	h, m, s, ok := parseClock(v[cfTime])
	if !ok {
		return reason("time: want HH:MM:SS")
	}
	if o.Time, ok = p.days.at(v[cfDate], h, m, s, 0); !ok {
		return reason("date: want YYYY-MM-DD")
	}
	if f := v[cfMethod]; f != nil && !dash(f) {
		if o.Method, ok = method(f); !ok {
			return reason("cs-method: not an HTTP method")
		}
	}
	host := v[cfHostHeader]
	if len(host) == 0 || dash(host) {
		host = v[cfHost]
	}
	if len(host) > 0 && !dash(host) {
		if !validQuery(host) {
			return reason("x-host-header/cs(Host): contains spaces or control bytes")
		}
		o.Host = p.hosts.get(host)
	}

	path := p.decoded(v[cfStem], validPath)
	if !validPath(path) {
		return reason("cs-uri-stem: not a request path")
	}
	o.Path = string(path)
	if q := v[cfQuery]; len(q) > 0 && !dash(q) {
		q = p.decoded(q, validQuery)
		if !validQuery(q) {
			return reason("cs-uri-query: contains spaces or control bytes")
		}
		o.RawQuery = string(q)
	}

	if f := v[cfStatus]; f != nil && !dash(f) {
		if o.Status, ok = parseStatus(f); !ok {
			return reason("sc-status: not an HTTP status")
		}
	}
	if f := v[cfBytes]; f != nil && !dash(f) {
		if o.Bytes, ok = parseUint(f); !ok {
			return reason("sc-bytes: not a byte count")
		}
	}
	if f := v[cfCsBytes]; f != nil && !dash(f) {
		if o.RequestBytes, ok = parseUint(f); !ok {
			return reason("cs-bytes: not a byte count")
		}
	}
	if f := v[cfTimeTaken]; f != nil && !dash(f) {
		if o.Duration, ok = parseSeconds(f); !ok {
			return reason("time-taken: not a number of seconds")
		}
	}
	o.Target = "cloudfront"
	o.Outcome = turnout.Served
	switch string(v[cfResult]) {
	case "LimitExceeded":
		o.Outcome, o.Reason = turnout.Throttled, "limit_exceeded"
	case "CapacityExceeded":
		o.Outcome, o.Reason = turnout.Throttled, "capacity_exceeded"
	case "Error":
		if o.Status >= 500 {
			o.Outcome = turnout.Error
			if d := v[cfDetailed]; len(d) > 0 && !dash(d) && string(d) != "Error" {
				o.Reason = p.hosts.get(d)
			}
		}
	}
	return nil
}

// dash reports the "-" CloudFront and ALB log for an empty value.
func dash(b []byte) bool { return len(b) == 1 && b[0] == '-' }
