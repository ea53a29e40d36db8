package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/deploy/deploytest"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/testkit"
)

const v1 = testkit.RoutingConfig

// v2 is v1 with the users origin moved: a change to apply.
var v2 = strings.Replace(v1, "9100", "9101", 1)

const invalidConfig = `origins:
  legacy:
    url: ftp://127.0.0.1:9000
routes:
  - match: "GET /user/{id}"
    origin: nowhere
  - match: /
    origin: legacy
`

// Tokens of the test server.
const (
	viewerToken   = "viewer-token-0000000000000000000"
	deployerToken = "deployer-token-00000000000000000"
	adminToken    = "admin-token-000000000000000000000"
	wrongToken    = "wrong-token-000000000000000000000" // same length as adminToken
)

func hash(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

type fixture struct {
	srv     *httptest.Server
	store   *bolt.Store
	svc     *deploy.Service
	handler http.Handler // the server's handler, for requests from other addresses
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	st, svc := deploytest.Seeded(t, v1)
	t.Setenv("TEST_ADMIN_TOKEN", adminToken)
	opts := Options{
		Service: svc,
		Tokens: []config.Token{
			{Name: "viewer", Role: "viewer", SHA256: hash(viewerToken)},
			{Name: "ci", Role: "deployer", SHA256: hash(deployerToken)},
			{Name: "ops", Role: "admin", Env: "TEST_ADMIN_TOKEN"},
		},
		Logger: testkit.QuietLogger(),
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &fixture{srv: hs, store: st, svc: svc, handler: s.Handler()}
}

func (f *fixture) request(t *testing.T, method, path, token string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func (f *fixture) activeID(t *testing.T) uint64 {
	t.Helper()
	d, err := f.store.Active(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func TestAuthMatrix(t *testing.T) {
	f := newFixture(t, nil)
	type call struct {
		method, path string
		body         any
		need         Role
	}
	calls := []call{
		{"GET", "/api/v1/status", nil, RoleViewer},
		{"GET", "/api/v1/deployments?limit=5", nil, RoleViewer},
		{"GET", "/api/v1/deployments/1", nil, RoleViewer},
		{"GET", "/api/v1/deployments/active", nil, RoleViewer},
		{"GET", "/api/v1/diff?a=1&b=1", nil, RoleViewer},
		{"GET", "/api/v1/audit", nil, RoleAdmin},
		{"GET", "/api/v1/nodes", nil, RoleViewer},
		{"GET", "/api/v1/live?since=0", nil, RoleViewer},
		{"GET", "/api/v1/traffic?sort=calls&limit=5", nil, RoleViewer},
		{"GET", "/api/v1/rollouts", nil, RoleViewer},
		{"GET", "/api/v1/shadow", nil, RoleViewer},
		{"POST", "/api/v1/deployments", ApplyRequest{Config: v2, File: "t.yaml"}, RoleDeployer},
		{"POST", "/api/v1/rollback", RollbackRequest{To: 1}, RoleDeployer},
		{"POST", "/api/v1/routes/off", RouteRequest{Match: "GET /user/{id}"}, RoleDeployer},
		{"POST", "/api/v1/routes/on", RouteRequest{Match: "GET /user/{id}"}, RoleDeployer},
	}
	tokens := []struct {
		tok  string
		role Role
	}{
		{"", RoleNone}, {wrongToken, RoleNone},
		{viewerToken, RoleViewer}, {deployerToken, RoleDeployer}, {adminToken, RoleAdmin},
	}
	for _, c := range calls {
		for _, tk := range tokens {
			// An apply of the active config stores nothing (200): put v1
			// back first.
			if c.path == "/api/v1/deployments" && c.method == "POST" && tk.role >= c.need {
				f.request(t, "POST", c.path, adminToken, ApplyRequest{Config: v1})
			}
			// Route off/on refuse a route already in that state: put it in
			// the other state first.
			if strings.HasPrefix(c.path, "/api/v1/routes/") && tk.role >= c.need {
				other := map[string]string{"/api/v1/routes/on": "/api/v1/routes/off", "/api/v1/routes/off": "/api/v1/routes/on"}[c.path]
				f.request(t, "POST", other, adminToken, RouteRequest{Match: "GET /user/{id}"})
			}
			resp, body := f.request(t, c.method, c.path, tk.tok, c.body)
			want := http.StatusOK
			switch {
			case tk.role == RoleNone:
				want = http.StatusUnauthorized
			case tk.role < c.need:
				want = http.StatusForbidden
			case c.method == "POST":
				want = http.StatusCreated
			}
			if resp.StatusCode != want {
				t.Errorf("%s %s as %v: status %d, want %d: %s", c.method, c.path, tk.role, resp.StatusCode, want, body)
			}
			if want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", c.method, c.path)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: content type %q", c.method, c.path, ct)
			}
		}
	}

	// Health and unknown paths need no token.
	if resp, _ := f.request(t, "GET", "/api/v1/healthz", "", nil); resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	if resp, _ := f.request(t, "GET", "/healthz", "", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
}

func TestWrongTokenSameLength(t *testing.T) {
	f := newFixture(t, nil)
	// Differs from a valid token in its last byte only: the comparison is
	// on SHA-256 sums, in constant time, against every credential.
	near := adminToken[:len(adminToken)-1] + "1"
	for _, tok := range []string{near, wrongToken} {
		resp, _ := f.request(t, "GET", "/api/v1/audit", tok, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: status %d, want 401", tok, resp.StatusCode)
		}
	}
	evs, _ := f.store.AuditLog(context.Background(), 0)
	if len(evs) != 2 || evs[0].Actor != "unknown" || evs[0].Result != "denied" {
		t.Fatalf("audit = %+v", evs)
	}
	if resp, _ := f.request(t, "GET", "/api/v1/audit", "Bearer", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("malformed header: %d", resp.StatusCode)
	}
}

func TestRefusalsAudited(t *testing.T) {
	f := newFixture(t, nil)
	f.request(t, "GET", "/api/v1/status", "", nil)
	f.request(t, "POST", "/api/v1/rollback", wrongToken, RollbackRequest{})
	f.request(t, "POST", "/api/v1/deployments", viewerToken, ApplyRequest{Config: v1})
	f.request(t, "GET", "/api/v1/audit", deployerToken, nil)

	evs, err := f.store.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ actor, action string }{
		{"ci", "audit"}, {"viewer", "apply"}, {"unknown", "rollback"}, {"anonymous", "status"},
	}
	if len(evs) != len(want) {
		t.Fatalf("audit = %+v", evs)
	}
	for i, w := range want {
		e := evs[i]
		if e.Actor != w.actor || e.Action != w.action || e.Result != "denied" || e.Remote == "" || e.Detail == "" {
			t.Errorf("event %d = %+v, want %s %s denied", i, e, w.actor, w.action)
		}
	}
	raw, _ := json.Marshal(evs)
	for _, tok := range []string{wrongToken, viewerToken, deployerToken} {
		if bytes.Contains(raw, []byte(tok)) {
			t.Errorf("audit trail contains a token")
		}
	}
	if f.activeID(t) != 1 {
		t.Fatal("a refused request changed the active deployment")
	}
}

func TestMutationsAudited(t *testing.T) {
	f := newFixture(t, nil)
	c := &Client{BaseURL: f.srv.URL, Token: deployerToken}
	ctx := context.Background()
	d, err := c.RouteOff(ctx, "GET /user/{id}", "users down")
	if err != nil {
		t.Fatal(err)
	}
	if d.Author != "ci" || d.Cause != "route off GET /user/{id}" {
		t.Fatalf("deployment = %+v", d)
	}
	_, err = c.RouteOff(ctx, "GET /user/{id}", "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("second route off: %v, want 409", err)
	}
	_, err = c.Deployment(ctx, 42)
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("deployment 42: %v, want 404", err)
	}
	_, err = c.RouteOn(ctx, "GET /nope", "")
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !strings.Contains(ae.Message, "GET /user/{id}") {
		t.Fatalf("route on unknown: %v, want 404 listing the routes", err)
	}

	evs, _ := f.store.AuditLog(ctx, 0)
	if len(evs) != 3 {
		t.Fatalf("audit = %+v", evs)
	}
	if e := evs[2]; e.Result != "ok" || e.Action != "route.off" || e.Deployment != 2 || e.Actor != "ci" || !strings.Contains(e.Detail, "users down") {
		t.Errorf("ok event = %+v", e)
	}
	if e := evs[1]; e.Result != "invalid" || e.Action != "route.off" {
		t.Errorf("conflict event = %+v", e)
	}
	if e := evs[0]; e.Result != "invalid" || e.Action != "route.on" {
		t.Errorf("unknown route event = %+v", e)
	}
}

func TestApplyInvalidReturnsAllErrors(t *testing.T) {
	f := newFixture(t, nil)
	c := &Client{BaseURL: f.srv.URL, Token: deployerToken}
	_, err := c.Apply(context.Background(), ApplyRequest{Config: invalidConfig, File: "bad.yaml"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("err = %v, want 400", err)
	}
	if len(ae.Errors) != 2 {
		t.Fatalf("errors = %+v", ae.Errors)
	}
	for _, fe := range ae.Errors {
		if !strings.HasPrefix(fe.Pos, "bad.yaml:") || strings.Count(fe.Pos, ":") != 2 || fe.Message == "" {
			t.Errorf("field error %+v lacks file:line:col", fe)
		}
	}
	if ae.Errors[0].Pos != "bad.yaml:3:10" {
		t.Errorf("first error at %s", ae.Errors[0].Pos)
	}
	if f.activeID(t) != 1 {
		t.Fatal("invalid apply changed the active deployment")
	}
	evs, _ := f.store.AuditLog(context.Background(), 1)
	if len(evs) != 1 || evs[0].Result != "invalid" || evs[0].Action != "apply" {
		t.Fatalf("audit = %+v", evs)
	}

	// Malformed JSON and an empty config are 400 too.
	resp, _ := f.request(t, "POST", "/api/v1/deployments", deployerToken, []byte("{"))
	if resp.StatusCode != 400 {
		t.Errorf("malformed JSON: %d", resp.StatusCode)
	}
	resp, _ = f.request(t, "POST", "/api/v1/deployments", deployerToken, ApplyRequest{})
	if resp.StatusCode != 400 {
		t.Errorf("empty config: %d", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	big := v1 + "# " + strings.Repeat("x", 2048) + "\n"
	resp, body := f.request(t, "POST", "/api/v1/deployments", deployerToken, ApplyRequest{Config: big})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", resp.StatusCode, body)
	}
	var er ErrorResponse
	if json.Unmarshal(body, &er) != nil || !strings.Contains(er.Error, "1024") {
		t.Errorf("body = %s", body)
	}
	// Just under the limit is fine.
	resp, body = f.request(t, "POST", "/api/v1/deployments", deployerToken, ApplyRequest{Config: v2})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("small apply: %d %s", resp.StatusCode, body)
	}
}

func TestActivateFailureReported(t *testing.T) {
	f := newFixture(t, nil)
	f.svc.Activate = func(context.Context, deploy.Deployment, *config.Config) error { return errors.New("boom") }
	c := &Client{BaseURL: f.srv.URL, Token: deployerToken}
	_, err := c.Apply(context.Background(), ApplyRequest{Config: v2})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Deployment == nil || ae.Deployment.ID != 2 || !strings.Contains(ae.Message, "boom") {
		t.Fatalf("err = %#v", err)
	}
}

func TestClientReads(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	c := &Client{BaseURL: f.srv.URL + "/", Token: adminToken}
	if _, err := c.Apply(ctx, ApplyRequest{Config: strings.Replace(v1, "9100", "9101", 1), Message: "move users"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Active.ID != 2 || len(st.Routes) != 2 {
		t.Fatalf("status = %+v, %v", st, err)
	}
	// Targets in the words of a serving node: origins by name.
	if got, want := st.Routes[0], (turnout.RouteStatus{Match: "GET /user/{id}", Target: "users", WhenOn: "users", WhenOff: "legacy", Fallback: "legacy", CanSwitchOff: true, Stage: turnout.StageMigrated}); got != want {
		t.Errorf("status route = %+v, want %+v", got, want)
	}
	if got := st.Routes[0].Targets(); got != "on → users; off → legacy" {
		t.Errorf("Targets() = %q", got)
	}
	l, err := c.Deployments(ctx, 0, 1)
	if err != nil || len(l) != 1 || l[0].ID != 2 || l[0].Message != "move users" {
		t.Fatalf("deployments = %+v, %v", l, err)
	}
	act, err := c.ActiveDeployment(ctx)
	if err != nil || act.ID != 2 || !strings.Contains(act.Config, "9101") {
		t.Fatalf("active = %+v, %v", act, err)
	}
	r, err := c.Diff(ctx, 0, 0)
	if err != nil || r.A != 1 || r.B != 2 || len(r.Origins) != 1 || !strings.Contains(r.Unified, "+    url: http://127.0.0.1:9101") {
		t.Fatalf("diff = %+v, %v", r, err)
	}
	if _, err := c.Diff(ctx, 1, 9); err == nil {
		t.Fatal("diff with a missing id succeeded")
	}
	evs, err := c.Audit(ctx, 10)
	if err != nil || len(evs) != 1 || evs[0].Actor != "ops" {
		t.Fatalf("audit = %+v, %v", evs, err)
	}
	resp, _ := f.request(t, "GET", "/api/v1/deployments?limit=x", adminToken, nil)
	if resp.StatusCode != 400 {
		t.Errorf("bad limit: %d", resp.StatusCode)
	}
}

func TestStatusFromGateway(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Status = func(ctx context.Context) (Status, error) {
			return Status{Origins: []turnout.OriginStatus{{Name: "legacy", Instances: []turnout.InstanceStatus{{URL: "http://127.0.0.1:9000", Healthy: true}}}}}, nil
		}
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") })
	})
	c := &Client{BaseURL: f.srv.URL, Token: viewerToken}
	st, err := c.Status(context.Background())
	if err != nil || st.Active.ID != 1 || len(st.Origins) != 1 || !st.Origins[0].Instances[0].Healthy {
		t.Fatalf("status = %+v, %v", st, err)
	}
	resp, body := f.request(t, "GET", "/metrics", "", nil)
	if resp.StatusCode != 200 || string(body) != "up 1\n" {
		t.Fatalf("metrics: %d %q", resp.StatusCode, body)
	}
}

func TestGeneratedTokenFile(t *testing.T) {
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "turnout.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &deploy.Service{Store: st}
	svc.Seed(context.Background(), []byte(v1), "turnout.yaml")
	tokenFile := filepath.Join(dir, "turnout.db.token")

	var logs bytes.Buffer
	opts := Options{Service: svc, TokenFile: tokenFile, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := New(opts); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %04o, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(tokenFile)
	tok := strings.TrimSpace(string(raw))
	if b, err := hex.DecodeString(tok); err != nil || len(b) != 32 {
		t.Fatalf("token %q is not 32 hex-encoded bytes", tok)
	}
	if strings.Contains(logs.String(), tok) || !strings.Contains(logs.String(), tokenFile) {
		t.Fatalf("log must name the file and not the token: %s", logs.String())
	}

	// A later start reuses the same token.
	s2, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if raw2, _ := os.ReadFile(tokenFile); string(raw2) != string(raw) {
		t.Fatal("token file rewritten on second start")
	}
	hs := httptest.NewServer(s2.Handler())
	defer hs.Close()
	c := &Client{BaseURL: hs.URL, Token: tok}
	if _, err := c.Audit(context.Background(), 1); err != nil {
		t.Fatalf("generated token is not an admin token: %v", err)
	}
	d, err := c.Rollback(context.Background(), 1, "")
	if err == nil || d.ID != 0 {
		t.Fatalf("rollback to active: %v", err)
	}

	// A token file others can read is refused.
	if err := os.Chmod(tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(opts); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file: err = %v", err)
	}
}

func TestTokenConfigErrors(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "turnout.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &deploy.Service{Store: st}
	t.Setenv("TEST_EMPTY_TOKEN", "")
	cases := []struct {
		tok  config.Token
		want string
	}{
		{config.Token{Name: "a", Role: "admin", Env: "TEST_EMPTY_TOKEN"}, "TEST_EMPTY_TOKEN is empty"},
		{config.Token{Name: "a", Role: "root", SHA256: hash("x")}, "unknown role"},
		{config.Token{Name: "a", Role: "admin", SHA256: "abc"}, "64 hex digits"},
		{config.Token{Name: "a", Role: "admin"}, "set sha256 or env"},
	}
	for _, c := range cases {
		_, err := New(Options{Service: svc, Tokens: []config.Token{c.tok}, Logger: testkit.QuietLogger()})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("token %+v: err = %v, want %q", c.tok, err, c.want)
		}
	}
}
