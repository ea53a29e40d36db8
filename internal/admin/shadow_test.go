package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/shadow"
	"github.com/turnout/turnout/internal/shadow/diff"
)

// shadowReport is a real shadow.Report of two routes: GET /items/{rest...}
// whose shadow renamed a field on one request of two, and GET /user/{id}
// whose shadow matched.
func shadowReport() *shadow.Report {
	rep := &shadow.Report{}
	answer := func(body string) diff.Answer {
		return diff.Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
	}
	add := func(route, id, primary, shadowBody string) {
		s := answer(shadowBody)
		rep.Mirrored(&shadow.Mirrored{Route: route, Target: "function:f", Settings: &config.Shadow{}, Time: time.Now(), RequestID: id,
			Method: "GET", Path: "/x", Header: http.Header{"Authorization": {"Bearer s3cret"}}, Primary: answer(primary), Shadow: &s})
	}
	add("GET /items/{rest...}", "r1", `{"total": 3}`, `{"sum": 3}`)
	add("GET /items/{rest...}", "r2", `{"total": 3}`, `{"total": 3}`)
	add("GET /user/{id}", "r3", `{"id": 1}`, `{"id": 1}`)
	return rep
}

// TestShadowList: GET /api/v1/shadow answers the report's summaries, all
// or one route's by its canonical match, over since; the client reads them
// back, and no secret header reaches the answer.
func TestShadowList(t *testing.T) {
	rep := shadowReport()
	var asked []time.Duration
	f := newFixture(t, func(o *Options) {
		o.Shadow = func(route string, since time.Duration) []shadow.Summary {
			asked = append(asked, since)
			return rep.Summaries(route, since)
		}
	})
	c := &Client{BaseURL: f.srv.URL, Token: viewerToken}
	ctx := context.Background()

	got, err := c.Shadow(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Route != "GET /items/{rest...}" || got[1].Route != "GET /user/{id}" {
		t.Fatalf("summaries: %+v", got)
	}
	items := got[0]
	if items.Compared != 2 || items.Match != 1 || items.Diff != 1 || items.MatchRate != 50 || items.Target != "function:f" {
		t.Errorf("items: compared %d match %d diff %d rate %v target %q", items.Compared, items.Match, items.Diff, items.MatchRate, items.Target)
	}
	if len(items.Paths) == 0 || items.Paths[0].Count != 1 || len(items.Paths[0].Examples) != 1 || items.Paths[0].Examples[0] != "r1" {
		t.Errorf("items paths: %+v", items.Paths)
	}
	if len(items.Examples) != 2 || items.Examples[0].Shadow == nil || items.Examples[len(items.Examples)-1].RequestID != "r1" {
		t.Errorf("items examples: %+v", items.Examples)
	}
	if len(asked) != 1 || asked[0] != time.Hour {
		t.Errorf("since asked without one: %v, want 1h", asked)
	}

	// The filter compares canonical matches: spacing and {x+} do not matter.
	for _, q := range []string{"GET /items/{rest+}", "GET  /items/{rest...}"} {
		got, err = c.Shadow(ctx, q, 15*time.Minute)
		if err != nil || len(got) != 1 || got[0].Route != "GET /items/{rest...}" {
			t.Errorf("shadow of %q = %+v, %v", q, got, err)
		}
	}
	if asked[len(asked)-1] != 15*time.Minute {
		t.Errorf("since asked: %v, want 15m", asked[len(asked)-1])
	}
	got, err = c.Shadow(ctx, "GET /nope", 0)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("shadow of a route without one = %#v, %v; want an empty list", got, err)
	}

	resp, body := f.request(t, "GET", "/api/v1/shadow?route=GET%20/nope", viewerToken, nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "{\n  \"routes\": []\n}" {
		t.Errorf("filtered to nothing: %d %s", resp.StatusCode, body)
	}
	resp, body = f.request(t, "GET", "/api/v1/shadow?since=24h", viewerToken, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"match_rate": 50`) || !strings.Contains(string(body), `"request_id": "r1"`) {
		t.Errorf("answer: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "s3cret") {
		t.Errorf("a request's Authorization reached the answer:\n%s", body)
	}

	// Bad input: 400 saying what is wanted, Options.Shadow not asked.
	n := len(asked)
	for _, q := range []string{"since=1", "since=-1h", "since=0s", "since=25h", "since=soon", "route="} {
		resp, body = f.request(t, "GET", "/api/v1/shadow?"+q, viewerToken, nil)
		want := "at most 24h"
		if q == "route=" {
			want = "route is empty"
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
	if len(asked) != n {
		t.Errorf("a refused request asked the report")
	}
	_, err = c.Shadow(ctx, "", 48*time.Hour)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("since 48h: %v, want 400", err)
	}
	if resp, _ := f.request(t, "GET", "/api/v1/shadow", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
}

// TestShadowListWithoutReport: a server with no Options.Shadow lists none,
// and still refuses a bad since.
func TestShadowListWithoutReport(t *testing.T) {
	f := newFixture(t, nil)
	c := &Client{BaseURL: f.srv.URL, Token: viewerToken}
	got, err := c.Shadow(context.Background(), "GET /user/{id}", 0)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("shadow = %#v, %v; want an empty list", got, err)
	}
	resp, body := f.request(t, "GET", "/api/v1/shadow?since="+url.QueryEscape("1h30x"), viewerToken, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad since: %d %s", resp.StatusCode, body)
	}
}
