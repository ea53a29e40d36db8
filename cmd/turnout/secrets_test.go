package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoSecretIsPrinted drives a node through the admin operations that
// record or print things — apply, rollback, refused attempts with a wrong
// token, status, history, audit, metrics, the dashboard's data — with a
// hashed token and an env token, and checks that neither token, nor the
// wrong one a client tried, appears in any log line, API answer, CLI output
// or the store file.
func TestNoSecretIsPrinted(t *testing.T) {
	const envToken = "env-token-4c1d2b7e9f"
	const wrongToken = "wrong-token-5e6f7a8b9c"
	t.Setenv("TURNOUT_SECRET_TEST_TOKEN", envToken)
	dir := t.TempDir()
	legacy := namedOrigin(t, "legacy")
	cfgPath := filepath.Join(dir, "turnout.yaml")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
invoke_api: {listen: "off"}
admin:
  listen: 127.0.0.1:0
  tokens:
    - {name: e2e, role: admin, sha256: %s}
    - {name: ci, role: deployer, env: TURNOUT_SECRET_TEST_TOKEN}
store: {path: %s}
origins: {legacy: {url: %s}}
routes:
  - {match: /, origin: legacy}
`, tokenHash(), filepath.Join(dir, "turnout.db"), legacy.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, cfgPath)

	var seen bytes.Buffer
	call := func(token, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, n.admin+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&seen, "%s %s → %d %v\n%s\n", method, path, resp.StatusCode, resp.Header, b)
		return resp.StatusCode
	}
	cli := func(token string, args ...string) {
		t.Helper()
		cmd := exec.Command(turnoutBin, append(args, "--admin", n.admin, "--token", token)...)
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(&seen, "turnout %s → %v\n%s\n", strings.Join(args, " "), err, out)
	}

	apply := fmt.Sprintf(`{"config": %q, "message": "second"}`, strings.Replace(cfg, "{match: /, origin: legacy}", "{match: /, origin: legacy}\n  - {match: GET /x, origin: legacy}", 1))
	if code := call(testToken, "POST", "/api/v1/deployments", apply); code != http.StatusCreated {
		t.Fatalf("apply: %d\n%s", code, seen.String())
	}
	if code := call(envToken, "POST", "/api/v1/rollback", `{"message": "back"}`); code != http.StatusCreated {
		t.Fatalf("rollback with the env token: %d\n%s", code, seen.String())
	}
	if code := call(wrongToken, "POST", "/api/v1/rollback", `{}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	if code := call(envToken, "GET", "/api/v1/audit", ""); code != http.StatusForbidden {
		t.Fatalf("deployer reading the audit trail: %d, want 403", code)
	}
	get(t, "http://"+n.public+"/x")
	for _, p := range []string{"/api/v1/status", "/api/v1/deployments", "/api/v1/deployments/2", "/api/v1/diff?a=1&b=2", "/api/v1/audit", "/api/v1/live", "/api/v1/traffic", "/metrics"} {
		if code := call(testToken, "GET", p, ""); code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
	cli(testToken, "status")
	cli(testToken, "history")
	cli(envToken, "route", "off", "/")
	cli(wrongToken, "status")

	// The audit trail must show the refused attempt, or this test would not
	// have exercised the path that records one.
	if !strings.Contains(seen.String(), "unknown token") {
		t.Fatalf("the refused attempt is not in the audit trail:\n%s", seen.String())
	}
	stopNode(t, n)
	store, err := os.ReadFile(filepath.Join(dir, "turnout.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testToken, envToken, wrongToken} {
		for what, text := range map[string]string{"logs": n.logs(), "API answers and CLI output": seen.String(), "store file": string(store)} {
			if strings.Contains(text, secret) {
				t.Errorf("the token %q appears in the %s", secret, what)
			}
		}
	}
}
