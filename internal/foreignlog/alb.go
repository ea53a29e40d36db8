package foreignlog

import (
	"bytes"
	"time"

	"github.com/turnout/turnout"
)

// An Application Load Balancer access log line is space-separated:
//
//	type time elb client:port target:port request_processing_time
//	target_processing_time response_processing_time elb_status_code
//	target_status_code received_bytes sent_bytes "request" "user_agent"
//	ssl_cipher ssl_protocol target_group_arn "trace_id" ...
//
// where "request" is `METHOD scheme://host:port/path?query HTTP/x`. The
// parser reads through "request" and ignores the rest, so fields AWS adds
// at the end do not break it.
//
// What an Observation gets:
//   - Time: time (when the load balancer answered the client, UTC).
//   - Method, Host, Path, RawQuery: from "request", as the client sent the
//     URL; Host drops the default port (:80 for http/ws, :443 for https/wss).
//   - Status: elb_status_code (what the client got; "-" → 0).
//   - Bytes: sent_bytes, the response size INCLUDING headers.
//   - RequestBytes: received_bytes, the request size including headers.
//   - Duration: target_processing_time, the time the target took.
//   - Target: target:port. The load balancer logs "-" there and -1 for the
//     processing times when no target answered (none registered or healthy,
//     the connection failed or was closed); such a line gets Target "",
//     Duration 0 and Outcome "error" with Reason "no_target" when the status
//     is 5xx, "served" otherwise (redirects and fixed responses are answered
//     by the load balancer itself).
//
// A line whose "request" the load balancer could not parse ("- - - ") has no
// method or path to count and is reported as malformed.

type albParser struct {
	targets *interner
	hosts   *interner
	days    dayCache
}

func newALBParser() *albParser {
	return &albParser{targets: newInterner(4096), hosts: newInterner(1024)}
}

// albTypes are the documented values of the type field.
var albTypes = map[string]bool{"http": true, "https": true, "h2": true, "grpcs": true, "ws": true, "wss": true}

func (p *albParser) parse(line []byte, o *turnout.Observation) error {
	var f [12][]byte
	rest := line
	for i := range f {
		var ok bool
		if f[i], rest, ok = nextToken(rest); !ok {
			return reason("fewer than 14 space-separated fields")
		}
	}
	if !albTypes[string(f[0])] {
		return reason("type: not http, https, h2, grpcs, ws or wss")
	}
	var ok bool
	if o.Time, ok = p.parseTime(f[1]); !ok {
		return reason("time: not an ISO 8601 UTC time")
	}
	req, rest, ok := nextQuoted(rest)
	if !ok {
		return reason(`"request": not a quoted string`)
	}
	if _, _, ok := nextQuoted(rest); !ok {
		return reason(`"user_agent": not a quoted string`)
	}

	// "request": METHOD URL PROTO
	sp := bytes.IndexByte(req, ' ')
	last := bytes.LastIndexByte(req, ' ')
	if sp <= 0 || last <= sp {
		return reason(`"request": want "METHOD URL HTTP/x"`)
	}
	if string(req[:sp]) == "-" {
		return reason(`"request": not recorded (the load balancer could not parse the request)`)
	}
	if o.Method, ok = method(req[:sp]); !ok {
		return reason(`"request": not an HTTP method`)
	}
	url := req[sp+1 : last]
	scheme := url
	if i := bytes.Index(url, []byte("://")); i > 0 {
		scheme = url[:i]
	}
	authority, path, query := splitTarget(url)
	if len(authority) == 0 {
		return reason(`"request": URL is not absolute`)
	}
	if !validPath(path) || !validQuery(query) || !validQuery(authority) {
		return reason(`"request": URL contains spaces or control bytes`)
	}
	o.Host = p.hosts.get(hostOf(authority, scheme))
	o.Path = string(path)
	if len(query) > 0 {
		o.RawQuery = string(query)
	}

	if !dash(f[8]) {
		if o.Status, ok = parseStatus(f[8]); !ok {
			return reason("elb_status_code: not an HTTP status")
		}
	}
	if o.RequestBytes, ok = parseUint(f[10]); !ok {
		return reason("received_bytes: not a byte count")
	}
	if o.Bytes, ok = parseUint(f[11]); !ok {
		return reason("sent_bytes: not a byte count")
	}
	noTarget := dash(f[4]) || string(f[6]) == "-1"
	if !noTarget {
		if o.Duration, ok = parseSeconds(f[6]); !ok {
			return reason("target_processing_time: not a number of seconds")
		}
		o.Target = p.targets.get(f[4])
	}
	o.Outcome = turnout.Served
	if noTarget && o.Status >= 500 {
		o.Outcome, o.Reason = turnout.Error, "no_target"
	}
	return nil
}

// parseTime parses the ALB's "2018-07-02T22:23:00.186641Z".
func (p *albParser) parseTime(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[10] != 'T' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	h, m, s, ok := parseClock(b[11:19])
	if !ok {
		return time.Time{}, false
	}
	ns := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		scale := 100_000_000
		for _, c := range frac[1:] {
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			ns += int(c-'0') * scale
			scale /= 10
		}
	}
	return p.days.at(b[:10], h, m, s, ns)
}

// nextToken returns the space-delimited token at the start of b and what
// follows the space. A token may not be empty or start with a quote.
func nextToken(b []byte) (tok, rest []byte, ok bool) {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		tok, rest = b, nil
	} else {
		tok, rest = b[:i], b[i+1:]
	}
	if len(tok) == 0 || tok[0] == '"' {
		return nil, nil, false
	}
	return tok, rest, true
}

// nextQuoted returns the contents of the double-quoted string at the start
// of b and what follows it and its separating space. A backslash escapes
// the next byte (nginx writes \" as \x22, but other writers use \").
func nextQuoted(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); {
		j := bytes.IndexAny(b[i:], `"\`)
		if j < 0 {
			return nil, nil, false
		}
		i += j
		if b[i] == '\\' {
			i += 2
			continue
		}
		s, rest = b[1:i], b[i+1:]
		if len(rest) > 0 {
			if rest[0] != ' ' {
				return nil, nil, false
			}
			rest = rest[1:]
		}
		return s, rest, true
	}
	return nil, nil, false
}
