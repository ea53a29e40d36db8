package traffic

import (
	"strconv"
	"strings"
	"time"

	"github.com/turnout/turnout"
)

// Limits a request must fit to be served by a function behind an API
// gateway; a template that exceeds them is a migration risk.
const (
	// MaxFunctionResponseBytes is AWS Lambda's synchronous invocation
	// payload limit, 6 MB = 6,291,456 bytes, for the response as for the
	// request ("Invocation payload (request and response): 6 MB each for
	// synchronous", https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
	MaxFunctionResponseBytes = 6 << 20
	// MaxIntegrationDuration is API Gateway's integration timeout for REST
	// APIs, 29 s by default ("Maximum integration timeout: 50 milliseconds
	// - 29 seconds", https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
	MaxIntegrationDuration = 29 * time.Second
)

// The kinds of function-readiness risk, in the order a Row lists them.
const (
	RiskResponseOver6MB  = "response_over_6mb"  // response body > MaxFunctionResponseBytes
	RiskDurationOver29s  = "duration_over_29s"  // answered after > MaxIntegrationDuration
	RiskSemicolonInQuery = "semicolon_in_query" // API Gateway splits the query on ';'
	RiskRepeatedQueryKey = "repeated_query_key" // single-value maps keep only the last value
	RiskBinaryBody       = "binary_body"        // request body is not UTF-8 text
)

var riskKinds = [numRisks]string{RiskResponseOver6MB, RiskDurationOver29s, RiskSemicolonInQuery, RiskRepeatedQueryKey, RiskBinaryBody}

const numRisks = 5

// risks is a bit set indexed like riskKinds.
type risks uint8

func risksOf(o *turnout.Observation) risks {
	var r risks
	if o.Bytes > MaxFunctionResponseBytes {
		r |= 1 << 0
	}
	if o.Duration > MaxIntegrationDuration {
		r |= 1 << 1
	}
	if strings.IndexByte(o.RawQuery, ';') >= 0 {
		r |= 1 << 2
	}
	if hasRepeatedKey(o.RawQuery) {
		r |= 1 << 3
	}
	if o.BinaryBody {
		r |= 1 << 4
	}
	return r
}

// maxPairwiseKeys is the number of query keys compared pair by pair
// without allocating; a query with more keys (rare, and bounded by the
// listener's header limit) is checked with a map.
const maxPairwiseKeys = 32

// hasRepeatedKey reports whether a key occurs twice in the raw query
// (keys split on '&' and compared as sent, so "a" and "%61" differ). It
// does not allocate for queries of up to maxPairwiseKeys keys.
func hasRepeatedKey(q string) bool {
	if strings.IndexByte(q, '&') < 0 {
		return false
	}
	var keys [maxPairwiseKeys]string
	n := 0
	for rest := q; ; {
		var pair string
		if j := strings.IndexByte(rest, '&'); j >= 0 {
			pair, rest = rest[:j], rest[j+1:]
		} else {
			pair, rest = rest, ""
		}
		key := pair
		if j := strings.IndexByte(pair, '='); j >= 0 {
			key = pair[:j]
		}
		if key != "" {
			if n == maxPairwiseKeys {
				return hasRepeatedKeyMap(q)
			}
			for _, k := range keys[:n] {
				if k == key {
					return true
				}
			}
			keys[n] = key
			n++
		}
		if rest == "" {
			return false
		}
	}
}

func hasRepeatedKeyMap(q string) bool {
	seen := make(map[string]struct{})
	for pair := range strings.SplitSeq(q, "&") {
		key, _, _ := strings.Cut(pair, "=")
		if key == "" {
			continue
		}
		if _, ok := seen[key]; ok {
			return true
		}
		seen[key] = struct{}{}
	}
	return false
}

// maxExampleLen bounds a risk's example request line.
const maxExampleLen = 256

// riskExample describes the first request that showed risk kind i.
func riskExample(o *turnout.Observation, i int) string {
	var b strings.Builder
	b.WriteString(o.Method)
	b.WriteByte(' ')
	b.WriteString(o.Path)
	if o.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(o.RawQuery)
	}
	s := b.String()
	if len(s) > maxExampleLen {
		s = s[:maxExampleLen] + "…"
	}
	switch i {
	case 0:
		s += " (" + strconv.FormatInt(o.Bytes, 10) + " bytes)"
	case 1:
		s += " (" + o.Duration.Round(time.Millisecond).String() + ")"
	}
	return s
}
