package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func testdata(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/%s/*.yaml: %v", dir, err)
	}
	return files
}

// parseFile reads the file at path and parses it as the file name; data
// is what it read.
func parseFile(t *testing.T, path, name string) (c *Config, data []byte, err error) {
	t.Helper()
	data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err = Parse(name, data)
	return c, data, err
}

// TestParseValid parses every testdata/valid/*.yaml and compares the result
// with its *.json golden file.
func TestParseValid(t *testing.T) {
	for _, file := range testdata(t, "valid") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, _, err := parseFile(t, file, filepath.Base(file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".json", append(got, '\n'))
		})
	}
}

// TestParseInvalid parses every testdata/invalid/*.yaml and compares the
// errors, one "file:line:col: msg" line each, with its *.errors golden file.
func TestParseInvalid(t *testing.T) {
	for _, file := range testdata(t, "invalid") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, _, err := parseFile(t, file, filepath.Base(file))
			if err == nil {
				t.Fatal("Parse succeeded; want errors")
			}
			if c != nil {
				t.Error("Parse returned a config with its errors")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			for i, e := range list {
				if i > 0 && before(e.Pos, list[i-1].Pos) {
					t.Errorf("errors not sorted: %v before %v", list[i-1].Pos, e.Pos)
				}
				if e.Pos.File != filepath.Base(file) || e.Pos.Line < 1 || e.Pos.Column < 1 {
					t.Errorf("bad position %+v", e.Pos)
				}
				if strings.Contains(e.Msg, "\n") {
					t.Errorf("multi-line message %q", e.Msg)
				}
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".errors", []byte(err.Error()+"\n"))
		})
	}
}

func TestErrorList(t *testing.T) {
	_, err := Parse("t.yaml", []byte("origins:\n  a: {url: http://x}\nlisten: 1\nfoo: 2\n"))
	want := "t.yaml:3:9: listen \"1\" is not a listen address: write host:port or :port, like \":8080\" or \"127.0.0.1:8081\"\n" +
		"t.yaml:4:1: unknown key \"foo\" in the top level (valid keys: listen, http1_server, admin, invoke_api, store, node, limits, tls, trusted_proxies, legacy, served_by_header, origins, functions, authorizers, api_keys, cors, routing, routes)"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Pos != (Pos{"t.yaml", 3, 9}) {
		t.Errorf("errors.As(*Error) = %+v", e)
	}
	if n := len(err.(ErrorList).Unwrap()); n != 2 {
		t.Errorf("Unwrap returned %d errors, want 2", n)
	}
	if got := (&Error{Pos: Pos{Line: 2, Column: 3}, Msg: "m"}).Error(); got != "2:3: m" {
		t.Errorf("Error without file = %q", got)
	}
}

// TestSyntaxErrorPositions checks that syntax errors point at the offending
// character, although yaml itself reports a line for some errors only.
func TestSyntaxErrorPositions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Pos
	}{
		{"a: b: c\n", Pos{"t", 1, 5}},
		// An error that an end of file would also cause points into what is
		// left open.
		{"listen: x\nadmin: {listen: a: b}\n", Pos{"t", 2, 9}},
		{"routes:\n  - match: /\n   origin: x\n", Pos{"t", 3, 4}},
		{"listen: 'x\norigins: {}\n", Pos{"t", 1, 9}},
		{"origins:\n  a:\n\turl: x\n", Pos{"t", 3, 1}},
		{"listen: \"\\q\"\n", Pos{"t", 1, 10}},
		{"a: 1\nb: @x\n", Pos{"t", 2, 4}},
		{"é: 1\né: [\n", Pos{"t", 2, 4}},
	} {
		_, err := Parse("t", []byte(tc.in))
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 {
			t.Errorf("%q: got %v, want one syntax error", tc.in, err)
			continue
		}
		if list[0].Pos != tc.want || !strings.HasPrefix(list[0].Msg, "invalid YAML: ") {
			t.Errorf("%q: got %v, want it at %v", tc.in, list[0], tc.want)
		}
	}
}

// TestPositions checks the positions kept in the Config for later messages
// (a route switched off by name, an origin failing its health check).
func TestPositions(t *testing.T) {
	c, data, err := parseFile(t, "testdata/valid/full.yaml", "full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// at returns the position of the first occurrence of s at or after line.
	at := func(line int, s string) Pos {
		lines := strings.Split(string(data), "\n")
		for i := line - 1; i < len(lines); i++ {
			if j := strings.Index(lines[i], s); j >= 0 {
				return Pos{"full.yaml", i + 1, j + 1}
			}
		}
		t.Fatalf("%q not found after line %d", s, line)
		return Pos{}
	}
	check := func(what string, got, want Pos) {
		t.Helper()
		if got != want {
			t.Errorf("%s at %v, want %v", what, got, want)
		}
	}
	check("token 0", c.Admin.Tokens[0].Pos, at(1, "{name: ci"))
	check("token 2", c.Admin.Tokens[2].Pos, at(1, "name: dashboard"))
	origins := at(1, "origins:").Line
	check("origin legacy", c.Origins[0].Pos, at(origins, "legacy:"))
	check("origin users", c.Origins[1].Pos, at(origins, "users:"))
	check("legacy url 1", c.Origins[0].URLsPos[1], at(1, "http://10.0.0.6"))
	check("users url", c.Origins[1].URLsPos[0], at(1, "https://users"))
	check("route 0", c.Routes[0].Pos, at(1, "match: \"GET /user"))
	check("route 0 match", c.Routes[0].MatchPos, at(1, "\"GET /user/{id}\""))
	check("route 3 match", c.Routes[3].MatchPos, at(at(1, "match: /").Line, "/"))
}

func TestWithDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
origins:
  legacy: {url: http://127.0.0.1:9000, health_check: {path: /healthz}}
  other: {url: http://127.0.0.1:9001, timeouts: {overall: 5s}}
routes:
  - {match: /, origin: legacy}
  - {match: /o/, origin: other}
  - {match: /t/, origin: other, timeout: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := json.Marshal(c)
	d := c.WithDefaults()
	if after, _ := json.Marshal(c); !bytes.Equal(orig, after) {
		t.Errorf("WithDefaults changed its receiver")
	}
	s := time.Second
	want := Config{
		Listen:         ":8080",
		HTTP1Server:    HTTP1ServerTurnout,
		Admin:          Admin{Listen: "127.0.0.1:8081", MaxBodyBytes: 8 << 20},
		Store:          Store{Path: "turnout.db"},
		InvokeAPI:      InvokeAPI{Listen: "127.0.0.1:9001"},
		ServedByHeader: "X-Turnout-Served-By",
		Limits: Limits{
			ReadHeaderTimeout: Duration(10 * s), IdleTimeout: Duration(120 * s),
			MaxHeaderBytes: 64 << 10, MaxBodyBytes: 10 << 20, DrainTimeout: Duration(30 * s),
			BodyTimeout: Duration(30 * s), MaxConnections: 10000, MaxConcurrentStreams: 250,
		},
		Origins: []Origin{{
			Name: "legacy", URLs: []string{"http://127.0.0.1:9000"}, HostHeader: "client",
			Timeouts: OriginTimeouts{Dial: Duration(2 * s), ResponseHeader: Duration(30 * s), Overall: Duration(60 * s)},
			HealthCheck: HealthCheck{Path: "/healthz", Interval: Duration(5 * s), Timeout: Duration(s),
				HealthyThreshold: 2, UnhealthyThreshold: 3, ExpectStatus: "200-399"},
			Passive:      Passive{MaxConnectFailures: 3, EjectFor: Duration(10 * s)},
			MaxIdleConns: 256,
		}, {
			Name: "other", URLs: []string{"http://127.0.0.1:9001"}, HostHeader: "client",
			Timeouts: OriginTimeouts{Dial: Duration(2 * s), ResponseHeader: Duration(30 * s), Overall: Duration(5 * s)},
			// No health check path: the health check stays off and unset.
			Passive:      Passive{MaxConnectFailures: 3, EjectFor: Duration(10 * s)},
			MaxIdleConns: 256,
		}},
		Routes: []Route{
			{Match: "/", Origin: "legacy", Timeout: Duration(60 * s)},
			{Match: "/o/", Origin: "other", Timeout: Duration(5 * s)},
			{Match: "/t/", Origin: "other", Timeout: Duration(s)},
		},
	}
	// Positions are compared elsewhere.
	for i := range d.Origins {
		d.Origins[i].Pos, d.Origins[i].URLsPos = Pos{}, nil
	}
	for i := range d.Routes {
		d.Routes[i].Pos, d.Routes[i].MatchPos = Pos{}, Pos{}
	}
	d.table = nil // the compiled routes are tested in internal/route
	if !reflect.DeepEqual(*d, want) {
		g, _ := json.MarshalIndent(d, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("WithDefaults:\n%s\nwant:\n%s", g, w)
	}
	// The copy shares no slices with the original.
	d.Origins[0].URLs[0] = "changed"
	d.Routes[0].Match = "changed"
	if c.Origins[0].URLs[0] == "changed" || c.Routes[0].Match == "changed" {
		t.Error("WithDefaults shares slices with its receiver")
	}
	// Set values are kept.
	fc, _, err := parseFile(t, "testdata/valid/full.yaml", "full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fd := fc.WithDefaults()
	fc.Origins[1] = fd.Origins[1] // users leaves settings to their defaults
	fc.Routes[1].Timeout, fc.Routes[2].Timeout, fc.Routes[3].Timeout = fd.Routes[1].Timeout, fd.Routes[2].Timeout, fd.Routes[3].Timeout
	fc.InvokeAPI = fd.InvokeAPI // full.yaml leaves the Invoke API at its default
	fc.ServedByHeader = fd.ServedByHeader
	if !reflect.DeepEqual(fc, fd) {
		t.Error("WithDefaults changed values set in full.yaml")
	}
}

func TestLegacyOrigin(t *testing.T) {
	origins := func(names ...string) []Origin {
		var os []Origin
		for _, n := range names {
			os = append(os, Origin{Name: n})
		}
		return os
	}
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"explicit", Config{Legacy: "b", Origins: origins("a", "b"), Routes: []Route{{Match: "/", Origin: "a"}}}, "b"},
		{"catch-all", Config{Origins: origins("a", "b"), Routes: []Route{{Match: "/x", Origin: "a"}, {Match: "/", Origin: "b"}}}, "b"},
		{"catch-all spaced", Config{Origins: origins("a", "b"), Routes: []Route{{Match: " / ", Origin: "b"}}}, "b"},
		{"method is not catch-all", Config{Origins: origins("a", "b"), Routes: []Route{{Match: "GET /", Origin: "b"}}}, ""},
		{"host is not catch-all", Config{Origins: origins("a", "b"), Routes: []Route{{Match: "x.example/", Origin: "b"}}}, ""},
		{"function catch-all", Config{Origins: origins("a"), Routes: []Route{{Match: "/", Function: "f"}}}, "a"},
		{"only origin", Config{Origins: origins("a")}, "a"},
		{"none", Config{}, ""},
	} {
		if got := tc.c.LegacyOrigin(); got != tc.want {
			t.Errorf("%s: LegacyOrigin() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDefault(t *testing.T) {
	c, err := Parse("default.yaml", Default())
	if err != nil {
		t.Fatalf("the embedded default does not parse:\n%v", err)
	}
	d := c.WithDefaults()
	if d.Listen != ":8080" || d.Admin.Listen != "127.0.0.1:8081" || d.Store.Path != "turnout.db" {
		t.Errorf("listeners/store: %q %q %q", d.Listen, d.Admin.Listen, d.Store.Path)
	}
	if len(d.Origins) != 1 || d.Origins[0].Name != "legacy" ||
		!reflect.DeepEqual(d.Origins[0].URLs, []string{"http://127.0.0.1:9000"}) ||
		d.Origins[0].HealthCheck.Path != "/healthz" {
		t.Errorf("origins: %+v", d.Origins)
	}
	if len(d.Routes) != 1 || d.Routes[0].Match != "/" || d.Routes[0].Origin != "legacy" {
		t.Errorf("routes: %+v", d.Routes)
	}
	if got := c.LegacyOrigin(); got != "legacy" {
		t.Errorf("LegacyOrigin() = %q", got)
	}
	// Default returns a fresh copy each time.
	Default()[0] = 'X'
	if Default()[0] == 'X' {
		t.Error("Default returns shared bytes")
	}
}

// TestDefaultShowsRouting: default-config shows routing.case_insensitive
// commented out, at its default, and uncommented it parses.
func TestDefaultShowsRouting(t *testing.T) {
	src := string(Default())
	const block = "# routing:\n#   case_insensitive: false\n"
	if !strings.Contains(src, block) || !strings.Contains(src, "IIS") {
		t.Fatalf("default config lacks the commented routing block %q and its reason", block)
	}
	on := strings.Replace(src, block, "routing:\n  case_insensitive: true\n", 1)
	c, err := Parse("default.yaml", []byte(on))
	if err != nil {
		t.Fatalf("uncommented routing does not parse:\n%v", err)
	}
	if !c.Routing.CaseInsensitive || !c.RouteTable().CaseInsensitive() {
		t.Error("routing.case_insensitive: true did not make the route table case-insensitive")
	}
}

func TestStatusRange(t *testing.T) {
	for in, want := range map[string][2]int{"": {200, 399}, "204": {204, 204}, "200-299": {200, 299}, "bad": {200, 399}} {
		if lo, hi := (HealthCheck{ExpectStatus: in}).StatusRange(); lo != want[0] || hi != want[1] {
			t.Errorf("StatusRange(%q) = %d-%d, want %v", in, lo, hi, want)
		}
	}
}

// TestAliasBomb checks that aliases cannot make a small file expensive to
// walk: each merge below repeats the previous mapping ten times, 10^9 in all.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("origins:\n  legacy: {url: http://x}\nx0: &m0 {match: /, origin: legacy}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "x%d: &m%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 10), ", "))
	}
	b.WriteString("routes: [*m9]\n")
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "aliases expand this file too much") {
		t.Errorf("got %v, want the alias budget error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		for _, file := range testdata(f, dir) {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add(Default())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			c.WithDefaults()
			c.LegacyOrigin()
			return
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("error is %T, not ErrorList: %v", err, err)
		}
		if len(list) == 0 {
			t.Fatal("empty ErrorList")
		}
		for _, e := range list {
			if e.Pos.Line < 1 || e.Pos.Column < 1 {
				t.Fatalf("error without a position: %v", e)
			}
		}
	})
}

// genRoutes returns a config with n routes, each a distinct pattern with a
// wildcard, all served by one origin.
func genRoutes(n int) []byte {
	var b bytes.Buffer
	b.WriteString("origins:\n  legacy:\n    urls: [http://10.0.0.5:8080, http://10.0.0.6:8080]\n  api: {url: http://10.0.0.7:8080}\nlegacy: legacy\nroutes:\n")
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	for i := range n {
		fmt.Fprintf(&b, "  - match: \"%s /svc%d/items/{id}\"\n    origin: api\n    fallback: legacy\n", methods[i%4], i/4)
	}
	b.WriteString("  - match: /\n    origin: legacy\n")
	return b.Bytes()
}

// BenchmarkParse10kRoutes measures Parse on a 10,000-route config. Applying a
// config must take at most 200 ms in total, so parsing must stay well under
// 100 ms.
func BenchmarkParse10kRoutes(b *testing.B) {
	data := genRoutes(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse("bench.yaml", data)
		if err != nil || len(c.Routes) != 10001 {
			b.Fatal(err)
		}
	}
}

func TestFunctionDefaults(t *testing.T) {
	c, err := Parse("f.yaml", []byte("origins: {legacy: {url: http://127.0.0.1:9000}}\nfunctions:\n  f: {handler: ./f}\n  a: {aws: {function: x}}\nroutes:\n  - {match: /f, function: f}\n  - {match: /, origin: legacy}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := c.WithDefaults()
	f := d.Functions[0]
	if f.Timeout.D() != 29*time.Second || f.MemoryMB != 128 || f.Concurrency != max(10, 4*runtime.NumCPU()) || f.IdleTimeout.D() != 5*time.Minute ||
		f.InitTimeout.D() != 10*time.Second || f.QueueSize == nil || *f.QueueSize != f.Concurrency || f.QueueTimeout.D() != time.Second ||
		f.MaxRequestBytes != 6<<20 || f.MaxResponseBytes != 6<<20 {
		t.Errorf("function defaults: %+v", f)
	}
	if c.Functions[0].QueueSize != nil || c.Functions[0].Concurrency != 0 {
		t.Errorf("WithDefaults changed the parsed config: %+v", c.Functions[0])
	}
	// queue_size: 0 is kept: it turns the queue off.
	off, err := Parse("f.yaml", []byte("origins: {legacy: {url: http://127.0.0.1:9000}}\nfunctions:\n  f: {handler: ./f, concurrency: 3, queue_size: 0}\nroutes:\n  - {match: /, origin: legacy}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if q := off.WithDefaults().Functions[0].QueueSize; q == nil || *q != 0 {
		t.Errorf("queue_size 0 became %v", q)
	}
	if d.Functions[1].AWS.Region != "us-east-1" || c.Functions[1].AWS.Region != "" {
		t.Errorf("aws region default %q (original %q)", d.Functions[1].AWS.Region, c.Functions[1].AWS.Region)
	}
	if d.Routes[0].Payload != "2.0" || c.Routes[0].Payload != "" {
		t.Errorf("payload default %q", d.Routes[0].Payload)
	}
}

// TestExampleConfigs keeps the configs the README and docs/ point at valid.
func TestExampleConfigs(t *testing.T) {
	for _, name := range []string{"../../examples/turnout.yaml", "../../examples/shadow.yaml", "../../examples/rollout.yaml"} {
		if _, _, err := parseFile(t, name, name); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestServedBy: the served-by header's name, its default and "off"; the
// default config shows the setting (commented) and it parses as shown.
func TestServedBy(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{"", DefaultServedByHeader},
		{"off", ""},
		{"X-Served", "X-Served"},
	} {
		if got := (&Config{ServedByHeader: c.set}).ServedBy(); got != c.want {
			t.Errorf("served_by_header %q: ServedBy() = %q, want %q", c.set, got, c.want)
		}
	}
	const shown = "# served_by_header: X-Turnout-Served-By\n"
	def := string(Default())
	if !strings.Contains(def, shown) {
		t.Fatalf("turnout default-config does not show %q", shown)
	}
	c, err := Parse("default.yaml", []byte(strings.Replace(def, shown, shown[2:], 1)))
	if err != nil {
		t.Fatalf("the default config with served_by_header uncommented: %v", err)
	}
	if c.ServedBy() != DefaultServedByHeader {
		t.Errorf("uncommented, served_by_header is %q, want the default %q", c.ServedBy(), DefaultServedByHeader)
	}
	if _, err := Parse("t.yaml", []byte("served_by_header: \"X Bad\"\norigins: {a: {url: http://127.0.0.1:1}}\nroutes: [{match: /, origin: a}]\n")); err == nil ||
		!strings.Contains(err.Error(), "is not a header name") {
		t.Errorf("a bad header name: %v", err)
	}
}
