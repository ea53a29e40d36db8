package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/config"
)

func runAPIKey(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if stdin != "" {
		apikeyStdin = strings.NewReader(stdin)
		defer func() { apikeyStdin = os.Stdin }()
	}
	var out, errb bytes.Buffer
	code = run(append([]string{"apikey"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

var (
	printedKey  = regexp.MustCompile(`(?m)^  (tk_\S+)$`)
	printedLine = regexp.MustCompile(`(?m)^  (\S+: \{sha256: .*\})$`)
)

// newKey runs `turnout apikey new args...` and returns the key and the
// config line it printed.
func newKey(t *testing.T, args ...string) (key, line string) {
	t.Helper()
	out, errs, code := runAPIKey(t, "", append([]string{"new"}, args...)...)
	k, l := printedKey.FindStringSubmatch(out), printedLine.FindStringSubmatch(out)
	if code != 0 || k == nil || l == nil {
		t.Fatalf("apikey new %v: exit %d\n%s%s", args, code, out, errs)
	}
	return k[1], l[1]
}

// TestAPIKeyNew: the line `turnout apikey new` prints goes under api_keys:
// as it is and declares the key it printed, with its rate limit; `turnout
// apikey hash` of the key is the line's hash.
func TestAPIKeyNew(t *testing.T) {
	key, line := newKey(t, "mobile", "--rps", "10", "--burst", "20")
	c, err := config.Parse("k.yaml", []byte("origins: {legacy: {url: http://127.0.0.1:9000}}\napi_keys:\n  "+line+"\nroutes:\n  - {match: /, origin: legacy, api_key_required: true}\n"))
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	k := c.APIKeys[0]
	if k.Name != "mobile" || k.SHA256 != config.HashAPIKey(key) || k.RateLimit == nil || *k.RateLimit != (config.RateLimit{RPS: 10, Burst: 20}) {
		t.Errorf("%s parsed as %+v", line, k)
	}
	if strings.Contains(line, key) {
		t.Errorf("the config line holds the key: %s", line)
	}
	for _, in := range []string{key, key + "\n", key + "\r\n"} {
		out, errs, code := runAPIKey(t, in, "hash")
		if code != 0 || out != k.SHA256+"\n" {
			t.Errorf("apikey hash of %q: exit %d, %q %s; want %s", in, code, out, errs, k.SHA256)
		}
	}
	if key2, _ := newKey(t, "mobile"); key2 == key {
		t.Error("two new keys are the same")
	}
}

func TestAPIKeyCommandErrors(t *testing.T) {
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		says  string
	}{
		{"", nil, 2, "usage:"},
		{"", []string{"rotate"}, 2, `unknown subcommand "rotate"`},
		{"", []string{"new"}, 2, "usage:"},
		{"", []string{"new", "mo bile"}, 1, `API key name "mo bile" must start with a letter or digit`},
		{"", []string{"new", "web", "--burst", "5"}, 1, "--burst needs --rps"},
		{"", []string{"new", "web", "extra"}, 2, "usage:"},
		{"", []string{"hash", "tk_abc"}, 2, "reads the key from stdin"},
		{"\n", []string{"hash"}, 1, "no key on stdin"},
		{"short\n", []string{"hash"}, 1, "fewer than 20"},
		{"a key with spaces, long enough\n", []string{"hash"}, 1, "printable ASCII without spaces"},
	} {
		out, errs, code := runAPIKey(t, c.stdin, c.args...)
		if code != c.code || !strings.Contains(errs, c.says) || strings.Contains(out, "tk_") {
			t.Errorf("apikey %q (stdin %q): exit %d\n%s%s\nwant exit %d saying %q", c.args, c.stdin, code, out, errs, c.code, c.says)
		}
	}
}

// TestAPIKeyServe: a key made by `turnout apikey new` opens a route with
// api_key_required on `turnout serve`, as a client sends it; the store
// holds the key's hash, never the key.
func TestAPIKeyServe(t *testing.T) {
	key, line := newKey(t, "mobile", "--rps", "100")
	dir := t.TempDir()
	o := namedOrigin(t, "orders")
	cfg := writeNodeConfig(t, dir, "off", fmt.Sprintf("origins:\n  legacy: {url: %s}\napi_keys:\n  %s\nroutes:\n  - {match: /orders/, origin: legacy, api_key_required: true}\n  - {match: /, origin: legacy}\n", o.URL, line))
	n := startNode(t, cfg)
	get := func(path, key string) (int, string) {
		req, err := http.NewRequest("GET", "http://"+n.public+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("x-api-key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := get("/orders/1", ""); code != 403 || body != `{"message":"Forbidden"}` {
		t.Errorf("no key: %d %q", code, body)
	}
	if code, body := get("/orders/1", key+"x"); code != 403 {
		t.Errorf("a wrong key: %d %q", code, body)
	}
	if code, body := get("/orders/1", key); code != 200 || body != "orders" {
		t.Errorf("the key: %d %q", code, body)
	}
	if code, _ := get("/other", ""); code != 200 {
		t.Errorf("a route without api_key_required: %d", code)
	}
	db, err := os.ReadFile(filepath.Join(dir, "turnout.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(db, []byte(config.HashAPIKey(key))) || bytes.Contains(db, []byte(key)) {
		t.Errorf("the store holds the key's hash: %v, the key: %v; want only the hash", bytes.Contains(db, []byte(config.HashAPIKey(key))), bytes.Contains(db, []byte(key)))
	}
}
