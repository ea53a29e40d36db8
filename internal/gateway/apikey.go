package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
)

// keyring is a deployment's API keys, by the SHA-256 of the key: what the
// routes with api_key_required check x-api-key against. One per table,
// built on the first route that needs it; the keys' buckets outlive it.
type keyring struct {
	byHash map[[sha256.Size]byte]*apiKey
	// missing and invalid are turnout_api_key_requests_total's children
	// for requests no key matched (key "").
	missing, invalid prometheus.Counter
}

// apiKey is one of api_keys: as served.
type apiKey struct {
	name     string
	hash     [sha256.Size]byte
	disabled bool
	bucket   *rate.Limiter // the key's rate_limit, shared across routes; nil: none
	// counts are turnout_api_key_requests_total's children for the key.
	counts [keyResults]prometheus.Counter
}

// The results turnout_api_key_requests_total counts.
const (
	keyAllowed = iota
	keyMissing
	keyInvalid
	keyDisabled
	keyThrottled
	keyResults
)

var keyResultNames = [keyResults]string{"allowed", "missing", "invalid", "disabled", "throttled"}

// keyBucket is an API key's token bucket with the tables holding it:
// buckets outlive tables, as authorizers do, so that a deployment that
// keeps a key and its limit does not hand it a full burst again.
type keyBucket struct {
	lim  *rate.Limiter
	refs int // g.mu guards it
}

func (b *keyBucket) release() bool {
	b.refs--
	return b.refs <= 0
}

// keyringLocked returns t's keyring, building it from keys on first use:
// each key's bucket is the one an earlier table holds for the same name
// and limit, or a new one. g.mu is held.
func (g *Gateway) keyringLocked(t *Table, keys []config.APIKey) (*keyring, error) {
	if t.keyring != nil {
		return t.keyring, nil
	}
	m := g.opts.Metrics.APIKeyRequests
	kr := &keyring{byHash: make(map[[sha256.Size]byte]*apiKey, len(keys)),
		missing: m.WithLabelValues("", keyResultNames[keyMissing]), invalid: m.WithLabelValues("", keyResultNames[keyInvalid])}
	for _, c := range keys {
		k := &apiKey{name: c.Name, disabled: c.Disabled}
		if n, err := hex.Decode(k.hash[:], []byte(c.SHA256)); err != nil || n != sha256.Size { // Parse refuses it; a hand-built config may not
			return nil, fmt.Errorf("api_keys.%s: sha256 is not 64 hex digits", c.Name)
		}
		if _, dup := kr.byHash[k.hash]; dup {
			return nil, fmt.Errorf("api_keys.%s: another key has the same sha256", c.Name)
		}
		if rl := c.RateLimit; rl != nil {
			burst := rl.Burst
			if burst == 0 {
				burst = int(math.Ceil(rl.RPS))
			}
			id := c.Name + "|" + strconv.FormatFloat(rl.RPS, 'g', -1, 64) + "|" + strconv.Itoa(burst)
			b := g.keyBuckets[id]
			if b == nil {
				b = &keyBucket{lim: rate.NewLimiter(rate.Limit(rl.RPS), burst)}
				g.keyBuckets[id] = b
			}
			b.refs++
			t.keyBucketKeys = append(t.keyBucketKeys, id)
			k.bucket = b.lim
		}
		for i := range k.counts {
			if i != keyMissing && i != keyInvalid {
				k.counts[i] = m.WithLabelValues(c.Name, keyResultNames[i])
			}
		}
		kr.byHash[k.hash] = k
	}
	t.keyring = kr
	return kr, nil
}

// lookup returns the key whose hash presented has, or nil. The map finds
// the candidate by hash; the constant-time compare is belt and braces, as
// the hash of a secret is compared. What a timing difference could reveal
// is how much of a hash matched, which tells nothing about any key.
func (kr *keyring) lookup(presented string) *apiKey {
	// A key of up to 64 bytes (generated ones have 46) is hashed from the
	// stack: []byte(presented) would allocate past 32.
	var buf [64]byte
	h := sha256.Sum256(append(buf[:0], presented...))
	k := kr.byHash[h]
	if k == nil || subtle.ConstantTimeCompare(h[:], k.hash[:]) != 1 {
		return nil
	}
	return k
}

// admitKey checks x's request against the API keys of its route (API
// Gateway REST's apiKeyRequired, with the key's usage plan throttle): true
// when it may go on, else the refusal is answered — 403
// {"message":"Forbidden"} for no key, an unknown or a disabled one, 429
// {"message":"Too Many Requests"} for a key over its rate limit — and x
// says so. It runs after the route's authorizer, as on API Gateway.
func (g *Gateway) admitKey(x *exchange) bool {
	kr := x.plan.keys
	x.at = &x.plan.primary // a refusal is counted on the route's own target
	var k *apiKey
	result := keyMissing
	if v := x.r.Header["X-Api-Key"]; len(v) > 1 {
		result = keyInvalid // which one would be the key?
	} else if len(v) == 1 && v[0] != "" {
		if k = kr.lookup(v[0]); k == nil {
			result = keyInvalid
		} else {
			x.apiKey = k.name
			switch {
			case k.disabled:
				result = keyDisabled
			case k.bucket != nil && !k.bucket.Allow():
				result = keyThrottled
			default:
				result = keyAllowed
			}
		}
	}
	x.apiKeyResult = keyResultNames[result]
	switch result {
	case keyAllowed:
		k.counts[keyAllowed].Inc()
		return true
	case keyMissing:
		kr.missing.Inc()
	case keyInvalid:
		kr.invalid.Inc()
	default:
		k.counts[result].Inc()
	}
	if result == keyThrottled {
		r := k.bucket.Reserve()
		secs := int(math.Ceil(r.Delay().Seconds()))
		r.Cancel()
		x.w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		x.outcome, x.reason, x.code = turnout.Throttled, turnout.ReasonAPIKeyThrottled, http.StatusTooManyRequests
		x.err = fmt.Errorf("API key %s is over its rate limit", k.name)
	} else {
		x.outcome, x.reason, x.code = turnout.Rejected, turnout.ReasonAPIKey, http.StatusForbidden
		x.err = fmt.Errorf("API key %s", keyResultNames[result])
	}
	answeredByGateway(x.w, x.servedBy, x.reason, "", "")
	writeAWSError(x.w, x.code)
	return false
}

// writeAWSError answers with API Gateway's own error body for code:
// {"message":"Forbidden"} or {"message":"Too Many Requests"}.
func writeAWSError(w http.ResponseWriter, code int) {
	body := `{"message":"Forbidden"}`
	if code == http.StatusTooManyRequests {
		body = `{"message":"Too Many Requests"}`
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	w.Write([]byte(body))
}
