package traffic

import (
	"testing"

	"github.com/turnout/turnout"
)

func TestRouteTemplate(t *testing.T) {
	cases := []struct{ route, path, want string }{
		{"GET /hello/{name}", "/hello/n0", "/hello/{name}"},
		{"GET api.example.com/user/{id}/orders", "/user/abc/orders", "/user/{id}/orders"},
		{"/files/{path...}", "/files/a/42/b.txt", "/files/a/{id}/b.txt"},
		{"/static/", "/static/app.3f9a1c2b.js", "/static/app.{hex}.js"},
		{"/", "/user/42", "/user/{id}"},
		{"", "/user/42", "/user/{id}"},
		{"GET /items/{$}", "/items/", "/items/"},
		{"POST /user/{id}", "/user/7", "/user/{id}"},
		// The raw path does not line up with the pattern (normalised): infer.
		{"GET /hello/{name}", "//hello/n0", "//hello/n0"},
		{"GET /hello/{name}", "/%68ello/42", "/%68ello/{id}"},
		{"GET /a/{x}/b", "/a/1/b/c", "/a/{id}/b/c"},
	}
	for _, c := range cases {
		got := string(appendRouteTemplate(nil, c.route, c.path))
		if got != c.want {
			t.Errorf("route %q path %q: template %q, want %q", c.route, c.path, got, c.want)
		}
	}
}

func TestObserveUsesRoutePattern(t *testing.T) {
	tb := NewTable(Options{})
	for _, name := range []string{"n0", "n1", "alice", "bob"} {
		tb.Observe(&turnout.Observation{Method: "GET", Path: "/hello/" + name, Route: "GET /hello/{name}", Status: 200})
	}
	tb.Observe(&turnout.Observation{Method: "GET", Path: "/hello/carol"}) // a log line: no route
	rep := tb.Report(Query{})
	if len(rep.Rows) != 2 || rep.Rows[0].Template != "/hello/{name}" || rep.Rows[0].Calls != 4 {
		t.Fatalf("rows %+v, want /hello/{name} with 4 calls and /hello/carol", rep.Rows)
	}
}

func TestHostsAreOneRow(t *testing.T) {
	cases := map[string]string{
		"api.example.com": "api.example.com", "API.Example.com:443": "api.example.com", "api.example.com.": "api.example.com",
		"127.0.0.1:8080": "127.0.0.1", "[::1]:8080": "[::1]", "[::1]": "[::1]", "::1": "::1", "": "",
	}
	for in, want := range cases {
		tb := NewTable(Options{})
		tb.Observe(&turnout.Observation{Method: "GET", Host: in, Path: "/a"})
		if got := tb.Report(Query{}).Rows[0].Host; got != want {
			t.Errorf("host %q: row host %q, want %q", in, got, want)
		}
	}
	tb := NewTable(Options{})
	for _, h := range []string{"api.example.com", "API.example.com:443", "api.example.com."} {
		tb.Observe(&turnout.Observation{Method: "GET", Host: h, Path: "/a"})
	}
	if rows := tb.Report(Query{}).Rows; len(rows) != 1 || rows[0].Calls != 3 {
		t.Fatalf("rows %+v, want one row with 3 calls", rows)
	}
}
