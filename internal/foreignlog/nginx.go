package foreignlog

import (
	"bytes"
	"time"

	"github.com/turnout/turnout"
)

// nginx's predefined "combined" format is
//
//	$remote_addr - $remote_user [$time_local] "$request" $status
//	$body_bytes_sent "$http_referer" "$http_user_agent"
//
// with $time_local like "10/Oct/2000:13:55:36 -0700". nginx escapes '"',
// '\' and bytes outside printable ASCII in variables as \xHH; the parser
// undoes that in the request line.
//
// combined has no duration. Many setups append $request_time (seconds with
// millisecond resolution), often after other quoted fields such as
// "$http_x_forwarded_for" (nginx's sample "main" format). So after the
// combined fields the parser skips quoted fields and takes the first
// unquoted token, if it is a plain decimal number, as $request_time;
// anything else after the combined fields is ignored.
//
// What an Observation gets: Time ($time_local, converted to UTC), Method,
// Path and RawQuery (from $request; an absolute-form target also gives
// Host, which combined does not log otherwise), Status, Bytes
// ($body_bytes_sent: the body only, headers excluded), Duration (from
// $request_time when present, else 0). Target is "" and RequestBytes -1:
// combined records neither.

type nginxParser struct {
	days  dayCache
	hosts *interner
	buf   []byte
	date  [10]byte
}

func newNginxParser() *nginxParser {
	return &nginxParser{hosts: newInterner(1024)}
}

func (p *nginxParser) parse(line []byte, o *turnout.Observation) error {
	rest := line
	var ok bool
	if _, rest, ok = nextToken(rest); !ok { // $remote_addr
		return reason("want $remote_addr first")
	}
	var dashTok []byte
	if dashTok, rest, ok = nextToken(rest); !ok || !dash(dashTok) {
		return reason(`want "-" after $remote_addr`)
	}
	if _, rest, ok = nextToken(rest); !ok { // $remote_user
		return reason("want $remote_user")
	}
	if len(rest) == 0 || rest[0] != '[' {
		return reason("want [$time_local]")
	}
	end := bytes.IndexByte(rest, ']')
	if end < 0 {
		return reason("want [$time_local]")
	}
	if o.Time, ok = p.parseTime(rest[1:end]); !ok {
		return reason(`$time_local: want "02/Jan/2006:15:04:05 -0700"`)
	}
	rest = rest[end+1:]
	if len(rest) == 0 || rest[0] != ' ' {
		return reason(`want "$request" after [$time_local]`)
	}
	req, rest, ok := nextQuoted(rest[1:])
	if !ok {
		return reason(`want "$request" after [$time_local]`)
	}
	var statusTok, bytesTok []byte
	if statusTok, rest, ok = nextToken(rest); !ok {
		return reason("want $status")
	}
	if o.Status, ok = parseStatus(statusTok); !ok {
		return reason("$status: not an HTTP status")
	}
	if bytesTok, rest, ok = nextToken(rest); !ok {
		return reason("want $body_bytes_sent")
	}
	if dash(bytesTok) {
		o.Bytes = 0 // Apache's CLF writes "-" for an empty body
	} else if o.Bytes, ok = parseUint(bytesTok); !ok {
		return reason("$body_bytes_sent: not a byte count")
	}
	if _, rest, ok = nextQuoted(rest); !ok {
		return reason(`want "$http_referer"`)
	}
	if _, rest, ok = nextQuoted(rest); !ok {
		return reason(`want "$http_user_agent"`)
	}
	// Optional trailing fields: quoted ones are skipped; the first unquoted
	// one is $request_time if it is a number.
	for len(rest) > 0 {
		if rest[0] == ' ' {
			rest = rest[1:]
			continue
		}
		if rest[0] == '"' {
			if _, rest, ok = nextQuoted(rest); !ok {
				break
			}
			continue
		}
		tok, _, _ := nextToken(rest)
		if d, ok := parseSeconds(tok); ok {
			o.Duration = d
		}
		break
	}

	// $request: METHOD TARGET [PROTO]
	if bytes.IndexByte(req, '\\') >= 0 {
		req = unescapeNginx(p.buf[:0], req)
		p.buf = req
	}
	sp := bytes.IndexByte(req, ' ')
	if sp <= 0 {
		return reason(`$request: want "METHOD TARGET HTTP/x"`)
	}
	if o.Method, ok = method(req[:sp]); !ok {
		return reason("$request: not an HTTP method")
	}
	target := req[sp+1:]
	if i := bytes.IndexByte(target, ' '); i >= 0 {
		proto := target[i+1:]
		target = target[:i]
		if !bytes.HasPrefix(proto, []byte("HTTP/")) || bytes.IndexByte(proto, ' ') >= 0 {
			return reason(`$request: want "METHOD TARGET HTTP/x"`)
		}
	}
	authority, path, query := splitTarget(target)
	if !validPath(path) || !validQuery(query) || !validQuery(authority) {
		return reason("$request: target is not a request path")
	}
	if len(authority) > 0 {
		scheme := target[:bytes.Index(target, []byte("://"))]
		o.Host = p.hosts.get(hostOf(authority, scheme))
	}
	o.Path = string(path)
	if len(query) > 0 {
		o.RawQuery = string(query)
	}
	o.Outcome = turnout.Served
	return nil
}

var months = map[string]int{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}

// parseTime parses $time_local, "10/Oct/2000:13:55:36 -0700", into UTC.
func (p *nginxParser) parseTime(b []byte) (time.Time, bool) {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[20] != ' ' {
		return time.Time{}, false
	}
	mon, ok := months[string(b[3:6])]
	if !ok {
		return time.Time{}, false
	}
	h, m, s, ok := parseClock(b[12:20])
	if !ok {
		return time.Time{}, false
	}
	zone := b[21:]
	if zone[0] != '+' && zone[0] != '-' {
		return time.Time{}, false
	}
	zh, ok1 := digits2(zone[1:3])
	zm, ok2 := digits2(zone[3:5])
	if !ok1 || !ok2 || zh > 23 || zm > 59 {
		return time.Time{}, false
	}
	offset := time.Duration(zh)*time.Hour + time.Duration(zm)*time.Minute
	if zone[0] == '-' {
		offset = -offset
	}
	// Rewrite the date as YYYY-MM-DD for the day cache.
	d := p.date[:]
	copy(d[0:4], b[7:11])
	d[4], d[5], d[6], d[7] = '-', byte('0'+mon/10), byte('0'+mon%10), '-'
	copy(d[8:10], b[0:2])
	t, ok := p.days.at(d, h, m, s, 0)
	if !ok {
		return time.Time{}, false
	}
	return t.Add(-offset), true
}

// unescapeNginx undoes nginx's \xHH escaping into dst; other backslashes
// are kept as they are.
func unescapeNginx(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		if src[i] == '\\' && i+3 < len(src) && src[i+1] == 'x' {
			h, l := unhex(src[i+2]), unhex(src[i+3])
			if h >= 0 && l >= 0 {
				dst = append(dst, byte(h<<4|l))
				i += 3
				continue
			}
		}
		dst = append(dst, src[i])
	}
	return dst
}
