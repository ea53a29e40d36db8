package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// APIKey is one entry of `api_keys:`: a client's key, known by its hash,
// and its own rate limit across every route with api_key_required
// (docs/api-keys.md). It is API Gateway's API key with its usage plan's
// throttle.
type APIKey struct {
	// Name is the key under `api_keys:`: what the access log and
	// turnout_api_key_requests_total say, never the key itself.
	Name string `yaml:"name" json:"name"`
	// SHA256 is the lowercase hex SHA-256 of the key (HashAPIKey): the
	// key itself is never written in the config, hence never in the store.
	SHA256 string `yaml:"sha256" json:"sha256"`
	// RateLimit is the key's token bucket, shared by the routes that
	// require a key (a usage plan's throttle: rateLimit, burstLimit); nil:
	// no limit of its own. Over is never set.
	RateLimit *RateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	// Disabled refuses the key (403) without removing it (API Gateway's
	// enabled: false).
	Disabled bool `yaml:"disabled" json:"disabled,omitempty"`

	Pos Pos `yaml:"-" json:"-"`
}

// APIKeyPrefix starts every key NewAPIKey makes, so that a key pasted
// where it does not belong is recognised: Parse refuses one written in
// plaintext anywhere in a config.
const APIKeyPrefix = "tk_"

// apiKeyBytes is the entropy of a generated key.
const apiKeyBytes = 32

// NewAPIKey returns a new random API key: APIKeyPrefix and 32 bytes from
// crypto/rand in unpadded base64url (46 characters in all).
//
// Keys are generated, never chosen by people, and that is why the config
// holds their plain SHA-256 rather than a KDF's output (bcrypt, scrypt,
// argon2). A KDF makes each guess slow so that a low-entropy password
// survives a leaked hash; a 256-bit random key cannot be guessed at any
// speed, so the slowness would buy nothing, and it would cost every request
// on a keyed route milliseconds of CPU. A plain hash also lets the gateway
// find a key with one map lookup (hash the presented key, look the hash
// up), where a salted KDF would have to be tried against every key.
func NewAPIKey() (string, error) {
	var b [apiKeyBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashAPIKey returns what api_keys.NAME.sha256 holds for key: its SHA-256
// in lowercase hex.
func HashAPIKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// MinAPIKeyLength is the shortest key HashAPIKey's callers accept: API
// Gateway's own minimum for a key value, so that keys imported from AWS
// all pass.
const MinAPIKeyLength = 20

// CheckAPIKey reports why key cannot be an API key: shorter than
// MinAPIKeyLength, or holding a character an x-api-key header cannot
// carry as is (a space, a control character, anything beyond ASCII).
func CheckAPIKey(key string) error {
	if len(key) < MinAPIKeyLength {
		return fmt.Errorf("the key has %d characters, fewer than %d: a short key can be guessed, and its plain SHA-256 would not protect it; run `turnout apikey new NAME` for one of 256 random bits", len(key), MinAPIKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("the key has %q at byte %d: a key is printable ASCII without spaces, as an x-api-key header carries it", rune(c), i+1)
		}
	}
	return nil
}

// APIKeyEntry returns the line declaring key name, whose hash is hash,
// under api_keys:, with rate limit rl when it is not nil; or why name
// cannot name a key.
func APIKeyEntry(name, hash string, rl *RateLimit) (string, error) {
	if !isOriginName(name) {
		return "", fmt.Errorf("API key name %q must start with a letter or digit and use only letters, digits, '-', '_' and '.' (it is a metric label and a word in the access log)", name)
	}
	s := name + ": {sha256: " + hash
	if rl != nil {
		s += ", rate_limit: {rps: " + strconv.FormatFloat(rl.RPS, 'g', -1, 64)
		if rl.Burst > 0 {
			s += ", burst: " + strconv.Itoa(rl.Burst)
		}
		s += "}"
	}
	return s + "}", nil
}

// looksLikeAPIKey reports whether s has the shape of a key NewAPIKey
// makes.
func looksLikeAPIKey(s string) bool {
	rest, ok := strings.CutPrefix(s, APIKeyPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(apiKeyBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

var (
	apiKeyKeys = []string{"sha256", "rate_limit", "disabled"}
	// apiKeyPlainFields are keys someone might write a plaintext key
	// under; each gets its own refusal rather than "unknown key".
	apiKeyPlainFields = []string{"key", "value", "api_key", "apikey", "secret", "token", "plaintext"}
)

const (
	apiKeyExample = `api_keys: {mobile: {sha256: <64 hex digits>, rate_limit: {rps: 10, burst: 20}}}`
	hashCommand   = "run `turnout apikey new NAME` for a new key and its config line, or `turnout apikey hash` to hash an existing key read from stdin"
)

// apiKeys decodes `api_keys:`.
func (d *decoder) apiKeys(v *yaml.Node) []APIKey {
	return named(d, v, "api_keys", "API key", apiKeyExample, d.apiKey)
}

// apiKey decodes the key declared as k with settings v.
func (d *decoder) apiKey(k, v *yaml.Node) APIKey {
	a := APIKey{Name: k.Value, Pos: d.pos(k)}
	d.checkName(k, "API key")
	what := "api_keys." + k.Value
	if isNull(v) {
		d.errorf(k, "%s has no settings: add sha256: with the SHA-256 of the key; %s", what, hashCommand)
		return a
	}
	// A plaintext key under a key of its own is refused in words that say
	// what to do; the mapping without it is decoded as usual.
	if m := deref(v); m.Kind == yaml.MappingNode {
		rest := *m
		rest.Content = nil
		for i := 0; i+1 < len(m.Content); i += 2 {
			if f := m.Content[i]; f.Kind == yaml.ScalarNode && containsFold(apiKeyPlainFields, f.Value) {
				if looksLikeAPIKey(deref(m.Content[i+1]).Value) {
					continue // plaintextAPIKeys reports it
				}
				d.errorf(f, "%s.%s: an API key is never written in the config (nor in the deployments the store keeps): put its SHA-256 in %s.sha256 instead; %s", what, f.Value, what, hashCommand)
				continue
			}
			rest.Content = append(rest.Content, m.Content[i], m.Content[i+1])
		}
		v = &rest
	}
	var hashAt *yaml.Node
	d.fields(v, what, apiKeyKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "sha256":
			hashAt = v
			a.SHA256 = d.apiKeyHash(v, what+".sha256")
		case "rate_limit":
			a.RateLimit = d.rateLimit(v, what+".rate_limit", []string{"rps", "burst"})
		case "disabled":
			d.boolean(v, what+".disabled", &a.Disabled)
		}
	})
	if hashAt == nil && deref(v).Kind == yaml.MappingNode {
		d.errorf(k, "%s has no sha256: add the SHA-256 of the key; %s", what, hashCommand)
	}
	return a
}

// apiKeyHash decodes an API key's sha256 (what): 64 hex digits.
func (d *decoder) apiKeyHash(v *yaml.Node, what string) string {
	s, ok := d.str(v, what)
	if !ok {
		return ""
	}
	if looksLikeAPIKey(s) {
		// plaintextAPIKeys reports it, as anywhere in the document.
		return ""
	}
	if len(s) != sha256.Size*2 {
		d.errorf(v, "%s must be 64 hex digits, the SHA-256 of the key, got %d characters; %s", what, len(s), hashCommand)
		return ""
	}
	if i := strings.IndexFunc(s, notHex); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		d.errorf(v, "%s must be hex digits only (0-9, a-f), got %q at character %d; %s", what, r, utf8.RuneCountInString(s[:i])+1, hashCommand)
		return ""
	}
	return strings.ToLower(s)
}

// plaintextAPIKeys reports every value in the document that has the shape
// of a key NewAPIKey makes: whatever key it is under, a config holding it
// would keep it in plaintext in every deployment of the store. Aliases are
// reported where their anchor is.
func (d *decoder) plaintextAPIKeys(n *yaml.Node) {
	const msg = "this is an API key in plaintext: the config (and every deployment the store keeps) holds only its hash; put `turnout apikey hash` of it under api_keys.NAME.sha256 and remove the key from here"
	if n.Kind == yaml.ScalarNode && looksLikeAPIKey(n.Value) {
		d.errorf(n, "%s (%s)", msg, hashCommand)
		return
	}
	// The source is kept whole, comments included.
	for _, c := range []string{n.HeadComment, n.LineComment, n.FootComment} {
		if !strings.Contains(c, APIKeyPrefix) {
			continue
		}
		for _, w := range strings.FieldsFunc(c, notKeyChar) {
			if looksLikeAPIKey(w) {
				d.errorf(n, "a comment here holds an API key in plaintext: remove it; the config (and every deployment the store keeps) holds only keys' hashes")
				break
			}
		}
	}
	for _, c := range n.Content {
		d.plaintextAPIKeys(c)
	}
}

// routeAPIKeyRequired decodes routes[i].api_key_required (what) at v.
func (d *decoder) routeAPIKeyRequired(v *yaml.Node, what string, r *Route, rp *routePos) {
	d.boolean(v, what, &r.APIKeyRequired)
	rp.apiKey = d.pos(v)
}

// validateAPIKeys checks that two keys do not share a hash and that a
// route requiring a key has keys to accept.
func (d *decoder) validateAPIKeys(c *Config) {
	byHash := map[string]APIKey{}
	for _, k := range c.APIKeys {
		if k.SHA256 == "" {
			continue
		}
		if first, dup := byHash[k.SHA256]; dup {
			d.errorAt(k.Pos, fmt.Sprintf("api_keys.%s has the same sha256 as api_keys.%s (%s): the two names would be one key; give each client its own key (%s)", k.Name, first.Name, first.Pos, hashCommand))
			continue
		}
		byHash[k.SHA256] = k
	}
	if len(c.APIKeys) > 0 {
		return
	}
	for i, r := range c.Routes {
		if r.APIKeyRequired {
			d.errorAt(d.routes[i].apiKey, fmt.Sprintf("routes[%d].api_key_required: no API keys are declared, so every request would be refused: declare them under api_keys:, like %s (%s)", i, apiKeyExample, hashCommand))
		}
	}
}

// notKeyChar reports whether r cannot be part of a generated key.
func notKeyChar(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
