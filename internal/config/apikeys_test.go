package config

import (
	"errors"
	"strings"
	"testing"
)

// A key and its hash (printf %s KEY | sha256sum), and a second pair.
const (
	testAPIKey  = "tk_NTUkLL5Y7DqRqfwqR2SFWJJnE3ao9wS1JbtXBDvb6Vg"
	testAPIHash = "f9c1845f872f18fc9cabc637fc3f13e15ec0db65bb23788424b4b560142b083b"
	otherHash   = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
)

// TestAPIKeys: keys with and without a rate limit, one disabled, and a
// route requiring one, as parsed.
func TestAPIKeys(t *testing.T) {
	c, err := Parse("k.yaml", []byte(authOrigins+`api_keys:
  mobile: {sha256: `+strings.ToUpper(otherHash)+`, rate_limit: {rps: 10, burst: 20}}
  partner: {sha256: `+HashAPIKey(testAPIKey)+`, disabled: true}
routes:
  - {match: /orders/, origin: legacy, api_key_required: true}
  - {match: /, origin: legacy}
`))
	if err != nil {
		t.Fatal(err)
	}
	k := c.APIKeys
	if len(k) != 2 || k[0].Name != "mobile" || k[0].SHA256 != otherHash || k[0].RateLimit == nil || *k[0].RateLimit != (RateLimit{RPS: 10, Burst: 20}) || k[0].Disabled {
		t.Fatalf("api_keys[0]: %+v", k[0])
	}
	if k[1].Name != "partner" || k[1].SHA256 != HashAPIKey(testAPIKey) || k[1].RateLimit != nil || !k[1].Disabled {
		t.Fatalf("api_keys[1]: %+v", k[1])
	}
	if !c.Routes[0].APIKeyRequired || c.Routes[1].APIKeyRequired {
		t.Fatalf("api_key_required: %v, %v", c.Routes[0].APIKeyRequired, c.Routes[1].APIKeyRequired)
	}
}

// TestAPIKeyErrors: every refusal says where, and a key in plaintext, under
// any key of the file, says what to run instead.
func TestAPIKeyErrors(t *testing.T) {
	route := "routes:\n  - {match: /, origin: legacy, api_key_required: true}\n"
	for _, tc := range []struct {
		name, file string
		at         []string // "line:col" of each error, in order
		says       string   // in the first error
	}{
		{"plaintext under key", authOrigins + "api_keys:\n  mobile:\n    key: abc\n    sha256: " + otherHash + "\n" + route,
			[]string{"4:5"}, "api_keys.mobile.key: an API key is never written in the config"},
		{"a generated key under key", authOrigins + "api_keys:\n  mobile:\n    key: " + testAPIKey + "\n" + route,
			[]string{"3:3", "4:10"}, "api_keys.mobile has no sha256"},
		{"plaintext under value, no hash", authOrigins + "api_keys:\n  mobile: {value: abc}\n" + route,
			[]string{"3:3", "3:12"}, "turnout apikey hash"},
		{"plaintext as the hash", authOrigins + "api_keys:\n  mobile: {sha256: " + testAPIKey + "}\n" + route,
			[]string{"3:20"}, "this is an API key in plaintext"},
		{"plaintext elsewhere", "origins: {legacy: {url: \"http://127.0.0.1:9000\"}}\nfunctions:\n  f: {handler: ./f, env: {KEY: " + testAPIKey + "}}\nroutes:\n  - {match: /, function: f}\n",
			[]string{"3:32"}, "this is an API key in plaintext"},
		{"plaintext in a comment", authOrigins + "api_keys:\n  # mobile's key is " + testAPIKey + "\n  mobile: {sha256: " + otherHash + "}\n" + route,
			[]string{"4:3"}, "a comment here holds an API key in plaintext"},
		{"short hash", authOrigins + "api_keys: {mobile: {sha256: abc}}\n" + route,
			[]string{"2:29"}, "must be 64 hex digits, the SHA-256 of the key, got 3 characters"},
		{"not hex", authOrigins + "api_keys: {mobile: {sha256: " + strings.Repeat("g", 64) + "}}\n" + route,
			[]string{"2:29"}, `hex digits only (0-9, a-f), got 'g' at character 1`},
		{"no hash", authOrigins + "api_keys: {mobile: {disabled: true}}\n" + route,
			[]string{"2:12"}, "api_keys.mobile has no sha256"},
		{"no settings", authOrigins + "api_keys: {mobile: }\n" + route,
			[]string{"2:12"}, "api_keys.mobile has no settings"},
		{"same hash twice", authOrigins + "api_keys:\n  mobile: {sha256: " + otherHash + "}\n  web: {sha256: " + strings.ToUpper(otherHash) + "}\n" + route,
			[]string{"4:3"}, "api_keys.web has the same sha256 as api_keys.mobile (r.yaml:3:3)"},
		{"required without keys", authOrigins + route,
			[]string{"3:50"}, "routes[0].api_key_required: no API keys are declared"},
		{"over is a route's", authOrigins + "api_keys: {mobile: {sha256: " + otherHash + ", rate_limit: {rps: 1, over: reject}}}\n" + route,
			[]string{"2:116"}, `unknown key "over" in api_keys.mobile.rate_limit`},
		{"no rps", authOrigins + "api_keys: {mobile: {sha256: " + otherHash + ", rate_limit: {burst: 5}}}\n" + route,
			[]string{"2:107"}, "api_keys.mobile.rate_limit needs rps"},
		{"bad name", authOrigins + "api_keys: {\"mo bile\": {sha256: " + otherHash + "}}\n" + route,
			[]string{"2:12"}, `API key name "mo bile" must start with a letter or digit`},
		{"not a bool", authOrigins + "api_keys: {mobile: {sha256: " + otherHash + "}}\nroutes:\n  - {match: /, origin: legacy, api_key_required: yes please}\n",
			[]string{"4:50"}, "routes[0].api_key_required must be true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(tc.file))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("%s\nParse: %v; want errors", tc.file, err)
			}
			var at []string
			for _, e := range list {
				at = append(at, strings.TrimPrefix(e.Pos.String(), "r.yaml:"))
			}
			if strings.Join(at, " ") != strings.Join(tc.at, " ") || !strings.Contains(list[0].Msg, tc.says) {
				t.Errorf("%s\ngot  %v\nwant errors at %v, the first saying %q", tc.file, err, tc.at, tc.says)
			}
			if strings.Contains(err.Error(), testAPIKey) {
				t.Errorf("the error repeats the plaintext key: %v", err)
			}
		})
	}
}

// TestNewAPIKey: generated keys have the prefix and 256 random bits, are
// told from anything else, and hash to what sha256sum prints.
func TestNewAPIKey(t *testing.T) {
	a, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewAPIKey()
	if a == b || !strings.HasPrefix(a, APIKeyPrefix) || len(a) != 46 || !looksLikeAPIKey(a) {
		t.Fatalf("NewAPIKey: %q, %q", a, b)
	}
	for _, s := range []string{testAPIHash, "tk_short", "tk_" + strings.Repeat("a", 42) + "!", "xx" + a[2:], ""} {
		if looksLikeAPIKey(s) {
			t.Errorf("looksLikeAPIKey(%q) = true", s)
		}
	}
	if got := HashAPIKey("foo"); got != otherHash {
		t.Errorf("HashAPIKey(foo) = %s, want %s", got, otherHash)
	}
	if got := HashAPIKey(testAPIKey); got != testAPIHash {
		t.Errorf("HashAPIKey(testAPIKey) = %s, want %s", got, testAPIHash)
	}
}

// TestAPIKeyEntry: the line `turnout apikey new` prints parses back as
// the key it declares; a name the config would refuse is refused first.
func TestAPIKeyEntry(t *testing.T) {
	for _, rl := range []*RateLimit{nil, {RPS: 2.5}, {RPS: 10, Burst: 20}} {
		line, err := APIKeyEntry("mobile", testAPIHash, rl)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse("k.yaml", []byte(authOrigins+"api_keys:\n  "+line+"\nroutes:\n  - {match: /, origin: legacy, api_key_required: true}\n"))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		k := c.APIKeys[0]
		if k.Name != "mobile" || k.SHA256 != testAPIHash || (rl == nil) != (k.RateLimit == nil) || rl != nil && *rl != *k.RateLimit {
			t.Errorf("%s parsed as %+v", line, k)
		}
	}
	if _, err := APIKeyEntry("mo bile", testAPIHash, nil); err == nil {
		t.Error("a name with a space was accepted")
	}
}

func TestCheckAPIKey(t *testing.T) {
	for key, ok := range map[string]bool{
		testAPIKey: true,
		"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd": true, // an AWS-generated key's shape
		"short":                                false,
		"a key with spaces in it, long enough": false,
		"tk_" + strings.Repeat("é", 20):        false,
	} {
		if err := CheckAPIKey(key); (err == nil) != ok {
			t.Errorf("CheckAPIKey(%q) = %v", key, err)
		}
	}
}
