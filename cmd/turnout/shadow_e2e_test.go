package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/shadow"
	"github.com/turnout/turnout/internal/testkit"
)

// legacyItems is the legacy catalogue the items function was ported from:
// the same document, with its own fresh timestamp and random id per call,
// and a session cookie that must not reach a shadow report.
func legacyItems(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
		if err != nil {
			http.NotFound(w, r)
			return
		}
		random := make([]byte, 8)
		rand.Read(random)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "sid=legacy-secret-4; HttpOnly")
		json.NewEncoder(w).Encode(map[string]any{
			"requestId": hex.EncodeToString(random), "generatedAt": time.Now().UTC().Format(time.RFC3339Nano),
			"tags": []string{"a", "b"}, "price": float64(id) + 0.5, "name": "Item " + strconv.Itoa(id), "id": id,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// shadowSummary reads route's shadow report from node n's admin API.
func shadowSummary(t *testing.T, n *node, route string) (shadow.Summary, []byte) {
	t.Helper()
	resp, body, err := n.api("GET", "/shadow?route="+url.QueryEscape(route)+"&since=1h", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /shadow: %v %s", err, body)
	}
	var out struct{ Routes []shadow.Summary }
	if err := json.Unmarshal(body, &out); err != nil || len(out.Routes) != 1 {
		t.Fatalf("GET /shadow?route=%s: %v %s", route, err, body)
	}
	return out.Routes[0], body
}

// TestShadowEndToEnd mirrors two routes of a legacy catalogue to two
// aws-lambda-go ports of it. The faithful port differs only in a timestamp
// and a random id: once the primary's own second answers have taught those
// two paths as noise, every comparison matches. The other port renamed a
// field and sends a number as a string: every comparison differs, at those
// paths, counted and with examples. Clients get the legacy's answers
// throughout, and no secret from a request or response header reaches the
// report.
func TestShadowEndToEnd(t *testing.T) {
	dir := t.TempDir()
	legacy := legacyItems(t)
	items := filepath.Join(functionDir, "items")
	cfgPath := writeNodeConfig(t, dir, "127.0.0.1:0", fmt.Sprintf(`origins:
  legacy: {url: %s}
functions:
  items: {handler: %s}
  items-renamed: {handler: %s, env: {ITEMS_MODE: rename}}
routes:
  - match: GET /items/{id}
    origin: legacy
    shadow: {to: items, noise: 50%%, redact: [X-Internal-Token]}
  - match: GET /v2/items/{id}
    origin: legacy
    shadow: {to: items-renamed, redact: [X-Internal-Token]}
  - {match: /, origin: legacy}
`, legacy.URL, items, items))
	n := startNode(t, cfgPath)
	send := func(path string, count int) {
		for i := range count {
			req, _ := http.NewRequest("GET", "http://"+n.public+fmt.Sprintf("%s/%d", path, i%7), nil)
			req.Header.Set("Authorization", "Bearer tok-secret-1")
			req.Header.Set("Cookie", "session=cookie-secret-2")
			req.Header.Set("X-Internal-Token", "internal-secret-3")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 || doc["name"] == nil {
				t.Fatalf("GET %s: %d %v %v; want the legacy's document", path, resp.StatusCode, doc, err)
			}
			resp.Body.Close()
		}
	}
	compared := func(route string, want int64) func() bool {
		return func() bool { s, _ := shadowSummary(t, n, route); return s.Compared+s.ShadowError >= want }
	}

	// The faithful port: learn, then match.
	send("/items", 60)
	testkit.Eventually(t, 30*time.Second, "60 comparisons", compared("GET /items/{id}", 60))
	before, _ := shadowSummary(t, n, "GET /items/{id}")
	send("/items", 100)
	testkit.Eventually(t, 30*time.Second, "160 comparisons", compared("GET /items/{id}", 160))
	after, body := shadowSummary(t, n, "GET /items/{id}")
	var noise []string
	for _, p := range after.Noise {
		noise = append(noise, p.Path)
	}
	slices.Sort(noise)
	if after.ShadowError != 0 || after.Diff != before.Diff || after.Match+after.NoiseOnly-before.Match-before.NoiseOnly != 100 ||
		!slices.Equal(noise, []string{"$.generatedAt", "$.requestId"}) {
		t.Fatalf("faithful port: before %d diff / %d compared, after %d diff, %d match, %d noise only, %d errors; noise %q; want the 100 later ones all matching, noise at $.generatedAt and $.requestId",
			before.Diff, before.Compared, after.Diff, after.Match, after.NoiseOnly, after.ShadowError, noise)
	}
	t.Logf("faithful port: %d compared, %d diff while learning, then 100 of 100 matching; match rate %.1f%%", after.Compared, after.Diff, after.MatchRate)

	// The renamed port: every comparison differs, at the three paths.
	send("/v2/items", 50)
	testkit.Eventually(t, 30*time.Second, "50 comparisons", compared("GET /v2/items/{id}", 50))
	v2, body2 := shadowSummary(t, n, "GET /v2/items/{id}")
	paths := map[string]shadow.PathCount{}
	for _, p := range v2.Paths {
		paths[p.Path] = p
	}
	if v2.Diff != 50 || v2.MatchRate != 0 {
		t.Fatalf("renamed port: %d diff of %d compared, match rate %v; want all 50", v2.Diff, v2.Compared, v2.MatchRate)
	}
	for path, kind := range map[string]string{"$.name": "missing", "$.title": "added", "$.price": "type"} {
		if p := paths[path]; p.Count != 50 || p.Kind != kind || len(p.Examples) == 0 {
			t.Errorf("renamed port: path %s: %+v; want 50 %s, with examples", path, p, kind)
		}
	}
	if len(v2.Examples) == 0 || v2.Examples[0].Shadow == nil || !strings.Contains(v2.Examples[0].Shadow.Body, `"title"`) {
		t.Errorf("renamed port: no example with both answers: %+v", v2.Examples)
	}

	// Redaction: no secret from a header, sent or answered, in the report.
	for _, b := range [][]byte{body, body2} {
		if strings.Contains(string(b), "secret") {
			i := strings.Index(string(b), "secret")
			t.Fatalf("the report holds a secret: …%s…", b[max(0, i-80):min(len(b), i+40)])
		}
	}
	if !strings.Contains(string(body), `"Authorization":"[redacted]"`) && !strings.Contains(string(body), `"Authorization": "[redacted]"`) {
		t.Errorf("the examples do not show the Authorization header as redacted: %.400s", body)
	}
}
