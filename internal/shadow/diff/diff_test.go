package diff

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func jsonAnswer(body string) *Answer {
	return &Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

func mustCompile(t testing.TB, ignore, headers []string) *Rules {
	t.Helper()
	r, err := Compile(ignore, headers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCompareJSON(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ignore []string
		a, b   string
		want   []Difference
	}{
		{name: "key order ignored",
			a: `{"id":1,"name":"x","tags":["a","b"],"o":{"p":1,"q":2}}`,
			b: `{ "o": {"q":2, "p":1}, "tags":["a","b"], "name":"x", "id":1 }`},
		{name: "numbers as numbers",
			a: `[1, 1.0, 100, 0, -0, 12.50, 1e2, 9007199254740993]`,
			b: `[1.0, 1e0, 1E+2, 0.0, 0, 1.25e1, 100, 9007199254740993.0]`},
		{name: "big integers keep their digits",
			a:    `{"n":9007199254740993}`,
			b:    `{"n":9007199254740992}`,
			want: []Difference{{"$.n", "changed", "9007199254740993", "9007199254740992"}}},
		{name: "huge exponents",
			a:    `[1e99999999999999999999, 10e99999999999999999998, 1e99999999999999999999]`,
			b:    `[10e99999999999999999998, 1e99999999999999999999, 1e99999999999999999998]`,
			want: []Difference{{"$[2]", "changed", "1e99999999999999999999", "1e99999999999999999998"}}},
		{name: "strings by decoded text",
			a: `{"s":"é/\"a\""}`,
			b: `{"s":"\u00e9\/\u0022a\""}`},
		{name: "number vs string is a type change",
			a:    `{"orders":[{"total":10}]}`,
			b:    `{"orders":[{"total":"10"}]}`,
			want: []Difference{{"$.orders[0].total", "type", "10", `"10"`}}},
		{name: "renamed field is missing and added",
			a: `{"id":1,"userName":"ann"}`,
			b: `{"id":1,"user_name":"ann"}`,
			want: []Difference{
				{"$.userName", "missing", `"ann"`, ""},
				{"$.user_name", "added", "", `"ann"`},
			}},
		{name: "arrays index by index",
			a: `{"a":[1,2,3]}`,
			b: `{"a":[1,5]}`,
			want: []Difference{
				{"$.a[1]", "changed", "2", "5"},
				{"$.a[2]", "missing", "3", ""},
			}},
		{name: "added elements",
			a:    `[]`,
			b:    `[{"x":1}]`,
			want: []Difference{{"$[0]", "added", "", `{"x":1}`}}},
		{name: "odd keys in brackets",
			a:    `{"a.b":{"c d":1,"*":2,"é":3}}`,
			b:    `{"a.b":{"c d":2,"*":3,"é":4}}`,
			want: []Difference{{`$["a.b"]["c d"]`, "changed", "1", "2"}, {`$["a.b"]["*"]`, "changed", "2", "3"}, {`$["a.b"]["é"]`, "changed", "3", "4"}}},
		{name: "escaped keys pair with plain ones",
			a: `{"na\u006de":1}`,
			b: `{"name":1}`},
		{name: "bool null and containers",
			a: `{"t":true,"n":null,"o":{},"l":[]}`,
			b: `{"t":false,"n":0,"o":[],"l":{}}`,
			want: []Difference{
				{"$.t", "changed", "true", "false"},
				{"$.n", "type", "null", "0"},
				{"$.o", "type", "{}", "[]"},
				{"$.l", "type", "[]", "{}"},
			}},
		{name: "ignore with [*] and .*",
			ignore: []string{"$.generatedAt", "$.items[*].etag", "$.meta.*"},
			a:      `{"generatedAt":"1","items":[{"id":1,"etag":"a"},{"id":2,"etag":"b"}],"meta":{"x":1,"y":[1]}}`,
			b:      `{"generatedAt":"2","items":[{"id":1,"etag":"c"},{"id":3,"etag":"d"}],"meta":{"x":2,"y":[2]}}`,
			want:   []Difference{{"$.items[1].id", "changed", "2", "3"}}},
		{name: "ignore covers missing and added below",
			ignore: []string{"$.debug"},
			a:      `{"debug":{"a":1}}`,
			b:      `{"debug":{"b":1}}`},
		{name: "ignore a given index",
			ignore: []string{"$[0]"},
			a:      `[1,2]`,
			b:      `[3,4]`,
			want:   []Difference{{"$[1]", "changed", "2", "4"}}},
		{name: "ignore the whole body",
			ignore: []string{"$"},
			a:      `[1,2]`,
			b:      `[3]`},
		{name: "not JSON on one side",
			a:    `{"a":1}`,
			b:    `<html>oops</html>`,
			want: []Difference{{"body", "type", `{"a":1}`, `<html>oops</html>`}}},
		{name: "large object out of order",
			a:    bigObject(40, false, 7),
			b:    bigObject(40, true, 8),
			want: []Difference{{"$.k7", "changed", "7", "8"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCompile(t, tc.ignore, nil)
			got := r.Compare(jsonAnswer(tc.a), jsonAnswer(tc.b)).Differences
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// bigObject is {"k0":0,...} with n members, reversed when asked, and the
// value of member odd set to v.
func bigObject(n int, reversed bool, v int) string {
	parts := make([]string, n)
	for i := range n {
		val := i
		if i == 7 {
			val = v
		}
		parts[i] = fmt.Sprintf(`"k%d":%d`, i, val)
	}
	if reversed {
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestCompareBounded(t *testing.T) {
	r := mustCompile(t, nil, nil)
	var a, b strings.Builder
	a.WriteString("[")
	b.WriteString("[")
	for i := range 500 {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		fmt.Fprintf(&a, "%d", i)
		fmt.Fprintf(&b, "%d", i+1)
	}
	a.WriteString("]")
	b.WriteString("]")
	got := r.Compare(jsonAnswer(a.String()), jsonAnswer(b.String())).Differences
	if len(got) != MaxDifferences+1 {
		t.Fatalf("%d differences, want %d", len(got), MaxDifferences+1)
	}
	if last := got[MaxDifferences]; last != (Difference{Path: "...", Kind: KindMore}) {
		t.Errorf("last difference %+v", last)
	}

	long := strings.Repeat("é", 200)
	got = r.Compare(jsonAnswer(`{"s":"`+long+`"}`), jsonAnswer(`{"s":"x"}`)).Differences
	if len(got) != 1 || len(got[0].A) > maxValue+len("…") || !strings.HasSuffix(got[0].A, "…") || !strings.HasPrefix(got[0].A, `"éé`) {
		t.Errorf("long value not cut: %q", got)
	}

	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65)
	deep2 := strings.Repeat("[", 65) + "1" + strings.Repeat("]", 65)
	got = r.Compare(jsonAnswer(deep), jsonAnswer(deep2)).Differences
	if len(got) != 1 || got[0].Path != "body" || got[0].Kind != "changed" {
		t.Errorf("too deep: %q", got)
	}
	got = r.Compare(jsonAnswer(deep), jsonAnswer("[]")).Differences
	if len(got) != 1 || got[0].Path != "body" || got[0].Kind != "changed" {
		t.Errorf("too deep on one side: %q", got)
	}
	ok := strings.Repeat("[", 64) + strings.Repeat("]", 64)
	ok2 := strings.Repeat("[", 64) + "1" + strings.Repeat("]", 64)
	got = r.Compare(jsonAnswer(ok), jsonAnswer(ok2)).Differences
	if len(got) != 1 || got[0].Path != "$"+strings.Repeat("[0]", 64) || got[0].Kind != "added" {
		t.Errorf("64 deep: %q", got)
	}
}

func TestCompareStatusAndBodies(t *testing.T) {
	r := mustCompile(t, nil, nil)
	text := func(s string) *Answer {
		return &Answer{Status: 200, Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, Body: []byte(s)}
	}
	bin := func(s string) *Answer {
		return &Answer{Status: 200, Header: http.Header{"Content-Type": {"image/png"}}, Body: []byte(s)}
	}
	trunc := func(body, whole string) *Answer {
		return &Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body), Truncated: true, Hash: sha256.Sum256([]byte(whole))}
	}
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hashValue(h) }
	for _, tc := range []struct {
		name string
		a, b *Answer
		want []Difference
	}{
		{"status", &Answer{Status: 200}, &Answer{Status: 502}, []Difference{{"status", "changed", "200", "502"}}},
		{"nil answers", nil, nil, nil},
		{"text lines", text("a\nb\nc\nd\n"), text("a\nB\nc\nd\n"), []Difference{{"body:line 2", "changed", "b", "B"}}},
		{"text inserted line", text("a\nb\nc\n"), text("a\nb\nnew\nc\n"), []Difference{{"body:line 3", "added", "", "new"}}},
		{"text removed lines", text("a\r\nb\r\nc\r\nd\r\n"), text("a\r\nd\r\n"), []Difference{{"body:line 2", "missing", "b", ""}, {"body:line 3", "missing", "c", ""}}},
		{"text first line gone", text("x\ny"), text("y"), []Difference{{"body:line 1", "missing", "x", ""}}},
		{"text empty lines", text("a\n\nb"), text("a\nb\n\n"), []Difference{{"body:line 2", "changed", "", "b"}, {"body:line 3", "changed", "b", ""}}},
		{"text from nothing", text(""), text("a\n"), []Difference{{"body:line 1", "changed", "", "a"}}},
		{"text crlf vs lf", text("a\r\nb\r\n"), text("a\nb"), nil},
		{"binary by hash", bin("\x89PNG1"), bin("\x89PNG2"), []Difference{{"body", "changed", hash("\x89PNG1"), hash("\x89PNG2")}}},
		{"binary equal", bin("\x89PNG1"), bin("\x89PNG1"), nil},
		{"truncated by hash", trunc(`{"a":`, `{"a":1}`), trunc(`{"a":`, `{"a":2}`), []Difference{{"body", "changed", hash(`{"a":1}`), hash(`{"a":2}`)}}},
		{"truncated equal", trunc(`{"a":`, `{"a":1}`), trunc(`{"a":`, `{"a":1}`), nil},
		{"one side truncated", trunc(`{"a":`, `{"a":1}`), jsonAnswer(`{"a":`), []Difference{{"body", "changed", hash(`{"a":1}`), hash(`{"a":`)}}},
		{"sniffed JSON", &Answer{Body: []byte(`{"a":1}`)}, &Answer{Body: []byte(`{"a":2}`)}, []Difference{{"$.a", "changed", "1", "2"}}},
		{"sniffed text", &Answer{Body: []byte("x\ny")}, &Answer{Body: []byte("x\nz")}, []Difference{{"body:line 2", "changed", "y", "z"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.Compare(tc.a, tc.b).Differences
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}

	var a, b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&a, "line %d\n", i)
		fmt.Fprintf(&b, "LINE %d\n", i)
	}
	got := r.Compare(text(a.String()), text(b.String())).Differences
	if len(got) != maxLines+1 || got[maxLines].Kind != KindMore || got[0] != (Difference{"body:line 1", "changed", "line 0", "LINE 0"}) {
		t.Errorf("text not bounded: %d differences, %q", len(got), got[0])
	}
}

func TestCompareHeaders(t *testing.T) {
	a := &Answer{Status: 200, Header: http.Header{
		"Content-Type":    {"application/json; charset=UTF-8"},
		"Date":            {"Sun, 06 Dec 2026 09:00:00 GMT"},
		"Server":          {"nginx"},
		"X-Request-Id":    {"r1"},
		"X-Amzn-Trace-Id": {"Root=1"},
		"Cache-Control":   {"no-store"},
		"X-Only-A":        {"a"},
		"Set-Cookie":      {"sid=abc; Path=/", "theme=dark"},
		"Etag":            {`"1"`},
		"X-Api-Key":       {"secret-a"},
	}}
	b := &Answer{Status: 200, Header: http.Header{
		"Content-Type":    {"Application/JSON;charset=utf-8"},
		"Date":            {"Sun, 06 Dec 2026 09:00:01 GMT"},
		"Server":          {"turnout"},
		"X-Request-Id":    {"r2"},
		"X-Amzn-Trace-Id": {"Root=2"},
		"Cache-Control":   {"max-age=60"},
		"X-Only-B":        {"b"},
		"Set-Cookie":      {"theme=light", "sid=xyz; HttpOnly"},
		"Etag":            {`"1"`},
		"X-Api-Key":       {"secret-b"},
	}}
	r := mustCompile(t, nil, nil)
	want := []Difference{
		{"header:Cache-Control", "changed", "no-store", "max-age=60"},
		{"header:X-Api-Key", "changed", Redacted, Redacted},
	}
	if got := r.Compare(a, b).Differences; !reflect.DeepEqual(got, want) {
		t.Errorf("default set:\ngot  %q\nwant %q", got, want)
	}

	b.Header.Set("Content-Type", "application/json; charset=latin1")
	b.Header.Add("Set-Cookie", "csrf=1")
	want = []Difference{
		{"header:Cache-Control", "changed", "no-store", "max-age=60"},
		{"header:Content-Type", "changed", "application/json; charset=UTF-8", "application/json; charset=latin1"},
		{"header:Set-Cookie", "changed", "sid, theme", "csrf, sid, theme"},
		{"header:X-Api-Key", "changed", Redacted, Redacted},
	}
	if got := r.Compare(a, b).Differences; !reflect.DeepEqual(got, want) {
		t.Errorf("content type and cookie names:\ngot  %q\nwant %q", got, want)
	}

	b.Header.Del("Content-Type")
	if got := r.Compare(a, b).Differences; len(got) == 0 || got[1] != (Difference{"header:Content-Type", "missing", "application/json; charset=UTF-8", ""}) {
		t.Errorf("Content-Type only in a: %q", got)
	}

	var zero *Rules // redacts too
	if got := zero.Compare(a, b).Differences; !strings.Contains(fmt.Sprint(got), "header:X-Api-Key changed [redacted] [redacted]") {
		t.Errorf("nil rules: %q", got)
	}

	r = mustCompile(t, nil, []string{"date", "x-only-b", "X-Only-A", "etag", "x-absent"})
	want = []Difference{
		{"header:Date", "changed", "Sun, 06 Dec 2026 09:00:00 GMT", "Sun, 06 Dec 2026 09:00:01 GMT"},
		{"header:X-Only-B", "added", "", "b"},
		{"header:X-Only-A", "missing", "a", ""},
	}
	if got := r.Compare(a, b).Differences; !reflect.DeepEqual(got, want) {
		t.Errorf("configured headers:\ngot  %q\nwant %q", got, want)
	}

	r, err := mustCompile(t, nil, []string{"Cache-Control"}).WithRedact([]string{"cache-control", "$.token"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Compare(a, b).Differences; len(got) != 1 || got[0].A != Redacted || got[0].B != Redacted {
		t.Errorf("redacted configured header: %q", got)
	}
	a.Body, b.Body = []byte(`{"token":{"v":"s1"},"n":1}`), []byte(`{"token":{"v":"s2"},"n":2}`)
	a.Header.Set("Content-Type", "application/json")
	got := r.Compare(a, b).Differences
	want = []Difference{
		{"header:Cache-Control", "changed", Redacted, Redacted},
		{"$.token.v", "changed", Redacted, Redacted},
		{"$.n", "changed", "1", "2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("redacted paths:\ngot  %q\nwant %q", got, want)
	}

	// A value shown whole is redacted inside, and a body not walked is
	// shown by hash.
	r, err = mustCompile(t, nil, nil).WithRedact([]string{"$.users[*].password"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ a, b string }{
		{`{"users":[]}`, `{"users":[{"name":"n","password":"s3cret"}]}`},
		{`{"users":[{"password":"s3cret"}]}`, `{"users":"none"}`},
		{`{"users":null}`, `{"users":[{"password":"s3cret"}]}`},
		{`{}`, `{"users":[{"password":"s3cret"}]}`},
		{`{"users":[]}`, `{"users":[{"password":"s3cret"` + strings.Repeat("[", 70)},
		{`{"users":[]}`, `{"users":[{"password":"s3cret"}]`},
	} {
		got := r.Compare(jsonAnswer(tc.a), jsonAnswer(tc.b)).Differences
		if len(got) == 0 || strings.Contains(fmt.Sprint(got), "s3cret") {
			t.Errorf("%s vs %s: %q", tc.a, tc.b, got)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		ignore, headers []string
		want            string
	}{
		{ignore: []string{"generatedAt"}, want: `ignore "generatedAt": a JSON path starts with $`},
		{ignore: []string{"$..id"}, want: "recursive descent"},
		{ignore: []string{"$.items[x]"}, want: `index "x" at byte 7`},
		{ignore: []string{"$.items[-1]"}, want: `index "-1"`},
		{ignore: []string{"$.items[1"}, want: "unterminated ["},
		{ignore: []string{`$["a`}, want: `unterminated ["name"]`},
		{ignore: []string{"$.a."}, want: "empty member name"},
		{ignore: []string{"$a"}, want: `'a' at byte 1`},
		{ignore: []string{"$.a]"}, want: `']' at byte 3`},
		{headers: []string{"X Bad"}, want: `header "X Bad": not a valid header name`},
	} {
		_, err := Compile(tc.ignore, tc.headers)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%q, %q) = %v, want an error with %q", tc.ignore, tc.headers, err, tc.want)
		}
	}
	for _, p := range []string{"$", "$.a", "$.a-b.c_d", `$["a.b"][0][*].*`, "$.items[*].etag"} {
		if err := CheckPattern(p); err != nil {
			t.Errorf("CheckPattern(%q) = %v", p, err)
		}
	}
	if _, err := mustCompile(t, nil, nil).WithRedact([]string{"$.a[", "X-Secret"}); err == nil || !strings.Contains(err.Error(), `redact "$.a["`) {
		t.Errorf("WithRedact with a bad path: %v", err)
	}
	if _, err := mustCompile(t, nil, nil).WithRedact([]string{"a b"}); err == nil || !strings.Contains(err.Error(), `redact "a b": neither`) {
		t.Errorf("WithRedact with a bad name: %v", err)
	}
}

func TestGeneralize(t *testing.T) {
	for in, want := range map[string]string{
		"$.items[3].etag":       "$.items[*].etag",
		"$[0][12][*]":           "$[*][*][*]",
		"$.a":                   "$.a",
		`$["a[3]"][4]`:          `$["a[3]"][*]`,
		`$["x\"[1]"].y[2]`:      `$["x\"[1]"].y[*]`,
		"status":                "status",
		"header:X-Foo":          "header:X-Foo",
		"$.a[]":                 "$.a[]",
		`$["unterminated[1]`:    `$["unterminated[1]`,
		"$.items[10].tags[0].v": "$.items[*].tags[*].v",
	} {
		if got := Generalize(in); got != want {
			t.Errorf("Generalize(%q) = %q, want %q", in, got, want)
		}
	}
	// A generalised path is an ignore rule that drops the difference.
	a, b := jsonAnswer(`{"i":[{"e.t":1},{"e.t":2}]}`), jsonAnswer(`{"i":[{"e.t":1},{"e.t":3}]}`)
	d := mustCompile(t, nil, nil).Compare(a, b).Differences
	if len(d) != 1 {
		t.Fatalf("differences %q", d)
	}
	g := Generalize(d[0].Path)
	if g != `$.i[*]["e.t"]` {
		t.Errorf("generalised %q", g)
	}
	if d := mustCompile(t, []string{g}, nil).Compare(a, b).Differences; len(d) != 0 {
		t.Errorf("ignoring %q left %q", g, d)
	}
}

func TestRedact(t *testing.T) {
	h := http.Header{
		"Authorization":       {"Bearer s1"},
		"Cookie":              {"sid=s2"},
		"Set-Cookie":          {"sid=s3", "x=s4"},
		"Proxy-Authorization": {"Basic s5"},
		"X-Api-Key":           {"s6"},
		"X-Session":           {"s7"},
		"x-lower":             {"s8"},
		"Accept":              {"text/html"},
	}
	got := RedactHeader(h, []string{"x-session", "X-Lower"})
	for k, v := range got {
		for _, s := range v {
			if strings.Contains(s, "s") && s != "text/html" && s != Redacted {
				t.Errorf("%s: %q not redacted", k, s)
			}
		}
	}
	if len(got["Set-Cookie"]) != 2 || got.Get("Accept") != "text/html" || h.Get("Authorization") != "Bearer s1" {
		t.Errorf("redacted %v, from %v", got, h)
	}

	for _, tc := range []struct {
		body  string
		paths []string
		want  string
	}{
		{`{"user":{"password":"p","name":"n"},"token":"t"}`, []string{"$.user.password", "$.token"},
			`{"user":{"password":"[redacted]","name":"n"},"token":"[redacted]"}`},
		{`{"cards": [ {"pan": "4111", "exp": "12/30"}, {"pan": 4222} ]}`, []string{"$.cards[*].pan"},
			`{"cards": [ {"pan": "[redacted]", "exp": "12/30"}, {"pan": "[redacted]"} ]}`},
		{`{"a":{"b":[1,2]}}`, []string{"$.a"}, `{"a":"[redacted]"}`},
		{`{"a":1}`, []string{"$.b", "bad"}, `{"a":1}`},
		{`not json "secret"`, []string{"$"}, `not json "secret"`},
		{`{"k\u0065y":"v"}`, []string{"$.key"}, `{"k\u0065y":"[redacted]"}`},
	} {
		if got := string(RedactJSON([]byte(tc.body), tc.paths)); got != tc.want {
			t.Errorf("RedactJSON(%s, %q) = %s, want %s", tc.body, tc.paths, got, tc.want)
		}
	}

	hs, ps := SplitRedact([]string{"X-Secret", "$.password", "cookie"})
	if !reflect.DeepEqual(hs, []string{"X-Secret", "cookie"}) || !reflect.DeepEqual(ps, []string{"$.password"}) {
		t.Errorf("SplitRedact: %q %q", hs, ps)
	}
}

func TestNumEqual(t *testing.T) {
	long := func(n int) string { return strings.Repeat("9", n) }
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1", "1.0", true},
		{"-0", "0e7", true},
		{"0.1e1", "1", true},
		{"1.5", "-1.5", false},
		{"123e-2", "1.23", true},
		{"1e" + long(100), "10e" + long(99) + "8", true},
		{"1e" + long(101), "1e" + long(101), true},
		{"1e" + long(101), "10e" + long(101), false},
		{"1e" + long(101), "1.0e" + long(101), false}, // equal, but past the bound: as written
		{"1e" + long(1<<20), "2e" + long(1<<20), false},
	} {
		if got := numEqual([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("numEqual(%.30s, %.30s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
