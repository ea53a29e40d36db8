package route

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"GET  /user/{id}", "GET /user/{id}"},
		{"ANY /api/{proxy+}", "ANY /api/{proxy...}"},
		{"API.Example.COM./x", "api.example.com/x"},
		{"GET Api.example.com/x/{rest+}", "GET api.example.com/x/{rest...}"},
	} {
		if got := Canonical(tc.in); got != tc.want {
			t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		patterns []string
		want     []string // "index/other: substring"
	}{
		{"ok", []string{"/", "GET /user/{id}", "GET /user/{id}/orders", "POST /orders", "api.example.com/"}, nil},
		{"duplicate", []string{"/a", "/a"}, []string{"1/0: duplicate route"}},
		{"duplicate after canonical", []string{"/api/{p+}", "/api/{p...}"}, []string{"1/0: duplicate route"}},
		{"conflict", []string{"GET /user/{id}", "GET /{x}/orders"}, []string{"1/0: conflicts with \"GET /user/{id}\""}},
		{"method vs path conflict", []string{"GET /{x}", "/a"}, []string{"1/0: conflicts"}},
		{"bad method", []string{"G@T /x"}, []string{"0/-1: invalid route pattern"}},
		{"no slash", []string{"user"}, []string{"0/-1: invalid route pattern"}},
		{"bad wildcard", []string{"/a/{b"}, []string{"0/-1: invalid route pattern"}},
		{"multi not last", []string{"/a/{b...}/c"}, []string{"0/-1: invalid route pattern"}},
		{"all errors at once", []string{"/a", "/a", "bad", "/b/{x", "/a"}, []string{"1/0: duplicate", "2/-1: invalid", "3/-1: invalid", "4/0: duplicate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Check(tc.patterns), tc.want)
		})
	}
}

// checkErrors holds Check's errors to want, each "index/other: substring".
func checkErrors(t *testing.T, errs []*PatternError, want []string) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(want))
	}
	for i, e := range errs {
		got := fmt.Sprintf("%d/%d: %s", e.Index, e.Other, e.Msg)
		idx, sub, _ := strings.Cut(want[i], ": ")
		if !strings.HasPrefix(got, idx+": ") || !strings.Contains(got, sub) {
			t.Errorf("error %d = %q, want %q", i, got, want[i])
		}
	}
}

func TestMatch(t *testing.T) {
	patterns := []string{
		"/",
		"GET /user/{id}",
		"GET /user/{id}/orders",
		"GET /user/me",
		"POST /orders",
		"/static/",
		"/api/{proxy+}",
		"api.example.com/",
		"GET api.example.com/user/{id}",
		"GET /exact/{$}",
	}
	tab, err := Compile(patterns)
	if err != nil {
		t.Fatal(err)
	}
	checkMatches(t, tab, []matchCase{
		{"", "GET", "/user/42", "GET /user/{id}", []string{"42"}},
		{"", "HEAD", "/user/42", "GET /user/{id}", []string{"42"}},
		{"", "POST", "/user/42", "/", nil},
		{"", "GET", "/user/me", "GET /user/me", nil},
		{"", "GET", "/user/42/orders", "GET /user/{id}/orders", []string{"42"}},
		{"", "GET", "/user/%C3%A9", "GET /user/{id}", []string{"é"}},
		{"", "POST", "/orders", "POST /orders", nil},
		{"", "GET", "/orders", "/", nil},
		{"", "GET", "/static/css/a.css", "/static/", nil},
		{"", "GET", "/static", "/", nil}, // ServeMux would redirect; the table falls through
		{"", "DELETE", "/api/a/b", "/api/{proxy...}", []string{"a/b"}},
		{"", "GET", "/api/", "/api/{proxy...}", []string{""}},
		{"api.example.com", "GET", "/user/7", "GET api.example.com/user/{id}", []string{"7"}},
		{"api.example.com", "GET", "/other", "api.example.com/", nil},
		{"other.example.com", "GET", "/user/7", "GET /user/{id}", []string{"7"}},
		{"", "GET", "/exact/", "GET /exact/{$}", nil},
		{"", "GET", "/exact/x", "/", nil},
	})
	// Without a catch-all, an unmatched request matches nothing.
	tab2, _ := Compile([]string{"GET /user/{id}"})
	if _, _, ok := tab2.Match("", "POST", "/user/1", nil); ok {
		t.Error("POST /user/1 matched GET /user/{id}")
	}
	if !tab.HasHost("api.example.com") || tab.HasHost("evil.example.com") {
		t.Error("HasHost wrong")
	}
}

// matchCase is a request and the pattern it should match, with the values
// of its wildcards.
type matchCase struct {
	host, method, path string
	want               string
	values             []string
}

func checkMatches(t *testing.T, tab *Table, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		r, v, ok := tab.Match(tc.host, tc.method, tc.path, nil)
		if !ok {
			t.Errorf("%s %s%s: no match, want %q", tc.method, tc.host, tc.path, tc.want)
			continue
		}
		if got := tab.Pattern(r).Canonical; got != tc.want {
			t.Errorf("%s %s%s matched %q, want %q", tc.method, tc.host, tc.path, got, tc.want)
		}
		if fmt.Sprint(v) != fmt.Sprint(tc.values) {
			t.Errorf("%s %s%s values %q, want %q", tc.method, tc.host, tc.path, v, tc.values)
		}
	}
}

// TestMatchAgreesWithServeMux holds Table to ServeMux's precedence on random
// pattern sets and paths (outside the redirects that Table deliberately
// omits); its case-insensitive run holds a case-insensitive Table to
// ServeMux given the folded patterns and the folded path: ignoring case is
// exactly matching the folded spellings.
func TestMatchAgreesWithServeMux(t *testing.T) {
	for _, tc := range agreements {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed[0], tc.seed[1]))
			for round := 0; round < 300; round++ {
				tc.check(t, rng, 12, 60)
			}
		})
	}
}

// agreements are the checks of Table against ServeMux, each with the seed
// of its test run.
var agreements = []struct {
	name  string
	check func(t *testing.T, rng *rand.Rand, npat, nreq int)
	seed  [2]uint64
}{
	{"case-sensitive", checkAgainstServeMux, [2]uint64{1, 2}},
	{"case-insensitive", checkFoldedAgainstServeMux, [2]uint64{3, 4}},
}

func FuzzMatchAgreesWithServeMux(f *testing.F) {
	fuzzAgreement(f, checkAgainstServeMux, [2]uint64{1, 2}, [2]uint64{7, 99})
}

func FuzzCaseInsensitiveAgreesWithServeMux(f *testing.F) {
	fuzzAgreement(f, checkFoldedAgainstServeMux, [2]uint64{3, 4})
}

func fuzzAgreement(f *testing.F, check func(t *testing.T, rng *rand.Rand, npat, nreq int), seeds ...[2]uint64) {
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		check(t, rand.New(rand.NewPCG(a, b)), 10, 30)
	})
}

// randPath returns a random path of up to three segments from lits. With
// patternEnd it is a pattern: a segment is a wildcard one time in three,
// and patternEnd writes its end given the segment count; otherwise it is a
// request path, which ends in "/" one time in three.
func randPath(rng *rand.Rand, lits []string, patternEnd func(sb *strings.Builder, n int)) string {
	n := rng.IntN(4)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteByte('/')
		if patternEnd != nil && rng.IntN(3) == 0 {
			fmt.Fprintf(&sb, "{w%d}", i)
			continue
		}
		sb.WriteString(lits[rng.IntN(len(lits))])
	}
	if patternEnd != nil {
		patternEnd(&sb, n)
	} else if rng.IntN(3) == 0 {
		sb.WriteString("/")
	}
	if sb.Len() == 0 {
		return "/"
	}
	return sb.String()
}

// matchBoth matches a request for path on host with tab, and the same
// request at muxPath with mux: it returns the canonical pattern tab chose
// ("" for none) and the one ServeMux chose, or redirect when ServeMux
// answers with a redirect of its own, which Table falls through on purpose.
func matchBoth(tab *Table, mux *http.ServeMux, method, host, path, muxPath string) (got, pat string, redirect bool) {
	req := httptest.NewRequest(method, "http://"+host+muxPath, nil)
	h, pat := mux.Handler(req)
	if _, ours := h.(marker); pat != "" && !ours {
		return "", "", true
	}
	if r, _, ok := tab.Match(host, method, path, nil); ok {
		got = tab.Pattern(r).Canonical
	}
	return got, pat, false
}

func checkFoldedAgainstServeMux(t *testing.T, rng *rand.Rand, npat, nreq int) {
	t.Helper()
	lits := []string{"a", "A", "user", "User", "USER", "%C3%A9", "%C3%89", "adm%C4%B1n", "ADMIN"}
	end := func(sb *strings.Builder, _ int) {
		if rng.IntN(4) == 0 {
			sb.WriteString("/{rest...}")
		} else if rng.IntN(3) == 0 {
			sb.WriteString("/")
		}
	}
	ci := Options{CaseInsensitive: true}
	var accepted []string
	for range npat {
		p := []string{"", "GET "}[rng.IntN(2)] + randPath(rng, lits, end)
		if len(ci.Check(append(accepted, p))) == 0 {
			accepted = append(accepted, p)
		}
	}
	tab, err := ci.Compile(accepted)
	if err != nil {
		t.Fatalf("Compile(%q): %v", accepted, err)
	}
	mux := http.NewServeMux()
	folded := map[string]string{} // folded pattern → pattern
	for _, p := range accepted {
		pp, err := Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := registerMarker(mux, pp.folded()); err != nil {
			t.Fatalf("folded %q: %v", pp.folded(), err)
		}
		folded[pp.folded()] = pp.Canonical
	}
	for range nreq {
		method := []string{"GET", "POST"}[rng.IntN(2)]
		path := randPath(rng, lits, nil)
		var fp strings.Builder
		for _, seg := range strings.Split(path, "/")[1:] {
			fp.WriteString("/" + url.PathEscape(foldKey(unescape(seg))))
		}
		got, pat, redirect := matchBoth(tab, mux, method, "h.test", path, fp.String())
		if redirect {
			continue
		}
		if got != folded[pat] {
			t.Fatalf("patterns %q\n%s %s: table %q, ServeMux on %s %q", accepted, method, path, got, fp.String(), folded[pat])
		}
	}
}

func checkAgainstServeMux(t *testing.T, rng *rand.Rand, npat, nreq int) {
	t.Helper()
	lits := []string{"a", "b", "user", "%C3%A9"}
	end := func(sb *strings.Builder, n int) {
		switch rng.IntN(5) {
		case 0:
			sb.WriteString("/")
		case 1:
			sb.WriteString("/{rest...}")
		case 2:
			if n > 0 {
				sb.WriteString("/{$}")
			}
		}
	}
	methods := []string{"", "", "GET ", "POST "}
	hosts := []string{"", "", "h.test"}
	mux := http.NewServeMux()
	var accepted []string
	for i := 0; i < npat; i++ {
		p := methods[rng.IntN(len(methods))] + hosts[rng.IntN(len(hosts))] + randPath(rng, lits, end)
		if registerMarker(mux, p) == nil {
			accepted = append(accepted, p)
		}
	}
	tab, err := Compile(accepted)
	if err != nil {
		t.Fatalf("Compile(%q): %v", accepted, err)
	}
	for i := 0; i < nreq; i++ {
		method := []string{"GET", "HEAD", "POST", "PUT"}[rng.IntN(4)]
		host := []string{"h.test", "x.test"}[rng.IntN(2)]
		path := randPath(rng, lits, nil)
		got, pat, redirect := matchBoth(tab, mux, method, host, path, path)
		if redirect {
			continue
		}
		if got != pat {
			t.Fatalf("patterns %q\n%s %s%s: table %q, ServeMux %q", accepted, method, host, path, got, pat)
		}
	}
}

// marker tells the handlers registered by the test from ServeMux's own
// redirect handlers.
type marker struct{}

func (marker) ServeHTTP(http.ResponseWriter, *http.Request) {}

func registerMarker(mux *http.ServeMux, p string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	mux.Handle(p, marker{})
	return nil
}

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"/", "/", nil},
		{"/user/42", "/user/42", nil},
		{"/%61dmin", "/admin", nil},
		{"/caf%c3%a9", "/caf%C3%A9", nil},
		{"/caf\xc3\xa9", "/caf%C3%A9", nil},
		{"//admin", "/admin", nil},
		{"/a///b/", "/a/b/", nil},
		{"/a/%3B", "/a/%3B", nil},
		{"/a/b.json", "/a/b.json", nil},
		{"/a/...", "/a/...", nil},
		{"/user/..%2fadmin", "", ErrPathEncodedSlash},
		{"/user/../admin", "", ErrPathDotSegment},
		{"/user/%2e%2e/admin", "", ErrPathDotSegment},
		{"/user/.", "", ErrPathDotSegment},
		{"/./admin", "", ErrPathDotSegment},
		{"/admin;x", "", ErrPathParameter},
		{"/user/..;/admin", "", ErrPathParameter},
		{"/public%00.json", "", ErrPathNUL},
		{"/a\\b", "", ErrPathBackslash},
		{"/a%5cb", "", ErrPathBackslash},
		{"/a%2", "", ErrPathEscape},
		{"/a%zz", "", ErrPathEscape},
		{"/a b", "", ErrPathInvalidByte},
		{"/a#b", "", ErrPathFragmentInURI},
		{"admin", "", ErrPathNotAbsolute},
		{"", "", ErrPathNotAbsolute},
	} {
		got, err := NormalizePath(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzNormalizePath checks the normaliser's promises on any input: the
// output is a fixed point, has no ambiguous spellings left, and decodes to
// the same bytes however it is read.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/user/..%2fadmin", "//admin", "/admin;x", "/user/..;/admin", "/public%00.json", "/%61dmin", "/caf%c3%a9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			return
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not a fixed point: %q -> %q -> %q, %v", in, out, again, err)
		}
		if strings.Contains(out, "//") || strings.ContainsAny(out, ";\\\x00#") || hasDotSegment(out) {
			t.Fatalf("ambiguous output %q from %q", out, in)
		}
		if unescape(in) != unescape(out) && !strings.Contains(in, "//") && strings.IndexFunc(in, func(r rune) bool { return r >= 0x80 }) < 0 {
			t.Fatalf("meaning changed: %q -> %q", in, out)
		}
	})
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"api.example.com":       "api.example.com",
		"API.Example.com.:8443": "api.example.com",
		"api.example.com.":      "api.example.com",
		"[::1]:80":              "[::1]",
		"[::1]":                 "[::1]",
	} {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"/":                       "/",
		"GET /user/{id}":          "/user/{id}",
		"/api/{proxy+}":           "/api/{proxy+}",
		"GET h.test/v2/{rest...}": "/v2/{rest+}",
		"/static/":                "/static/",
		"GET /exact/{$}":          "/exact/",
		"POST /user/{id}/orders":  "/user/{id}/orders",
	} {
		p, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Template(); got != want {
			t.Errorf("Template(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMatchCaseInsensitive: with CaseInsensitive, a path reaches the route
// whose literals it spells in any case, as an IIS or ASP.NET origin would
// serve it, while wildcard values keep the client's case.
func TestMatchCaseInsensitive(t *testing.T) {
	patterns := []string{
		"/",
		"/admin/",
		"GET /user/{id}",
		"GET /user/me",
		"GET /Reports/{year}/Summary",
		"POST /caf%C3%A9",
		"/api/{proxy+}",
		"GET Api.Example.com/x",
		"GET /known",
	}
	tab, err := Options{CaseInsensitive: true}.Compile(patterns)
	if err != nil {
		t.Fatal(err)
	}
	if !tab.CaseInsensitive() {
		t.Error("CaseInsensitive() is false")
	}
	checkMatches(t, tab, []matchCase{
		{"", "GET", "/admin/users", "/admin/", nil},
		{"", "GET", "/ADMIN/users", "/admin/", nil},
		{"", "GET", "/AdMiN/", "/admin/", nil},
		{"", "GET", "/ADMIN", "/", nil}, // as case-sensitively: no redirect
		{"", "GET", "/USER/Ada", "GET /user/{id}", []string{"Ada"}},
		{"", "GET", "/User/ME", "GET /user/me", nil},
		{"", "GET", "/reports/2024/SUMMARY", "GET /Reports/{year}/Summary", []string{"2024"}},
		{"", "POST", "/CAF%C3%89", "POST /caf%C3%A9", nil}, // É folds to é
		{"", "GET", "/Api/A/B", "/api/{proxy...}", []string{"A/B"}},
		{"", "GET", "/adm%C4%B1n/x", "/admin/", nil},                 // dotless ı: .NET's OrdinalIgnoreCase takes it for I
		{"", "GET", "/%E2%84%AAnown", "GET /known", nil},             // the Kelvin sign folds to k, as in Go's EqualFold
		{"", "GET", "/" + strings.Repeat("A", 100) + "/x", "/", nil}, // longer than the fold buffer
		{"api.example.com", "GET", "/X", "GET api.example.com/x", nil},
	})
	// The default stays case-sensitive, as API Gateway is.
	tab, _ = Compile(patterns)
	if tab.CaseInsensitive() {
		t.Error("Compile is case-insensitive")
	}
	if r, _, _ := tab.Match("", "GET", "/ADMIN/users", nil); tab.Pattern(r).Canonical != "/" {
		t.Errorf("case-sensitive table sent /ADMIN/users to %q", tab.Pattern(r).Canonical)
	}
}

// TestCheckCaseInsensitive: patterns that differ only by case are one route
// when matching ignores case, so they are refused as the same.
func TestCheckCaseInsensitive(t *testing.T) {
	ci := Options{CaseInsensitive: true}
	for _, tc := range []struct {
		name     string
		patterns []string
		want     []string // "index/other: substring"
		caseOnly bool
	}{
		{"ok", []string{"/", "GET /admin", "GET /users/{id}"}, nil, false},
		{"same but case", []string{"/", "GET /admin", "GET /Admin"}, []string{`2/1: "GET /Admin" matches the same requests as "GET /admin" once case is ignored`}, true},
		{"non-ASCII", []string{"/caf%C3%A9", "/CAF%C3%89"}, []string{`1/0: once case is ignored`}, true},
		{"different wildcards", []string{"/A/{x}", "/a/{y}"}, []string{`1/0: matches the same requests as "/A/{x}" once case is ignored`}, true},
		{"overlap once folded", []string{"/A/{x}/c", "/a/b/{z}"}, []string{`1/0: conflicts with "/A/{x}/c" once case is ignored: `}, true},
		{"conflict once folded", []string{"GET /A/{x}", "GET /{y}/b", "GET /a/B"}, []string{`1/0: conflicts with "GET /A/{x}"`}, false},
		{"case-sensitive duplicate stays a duplicate", []string{"/a", "/a"}, []string{"1/0: duplicate route"}, false},
		{"invalid stays invalid", []string{"/A/{b"}, []string{"0/-1: invalid route pattern"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := ci.Check(tc.patterns)
			checkErrors(t, errs, tc.want)
			for i, e := range errs {
				if e.CaseOnly != tc.caseOnly {
					t.Errorf("error %d CaseOnly = %v, want %v", i, e.CaseOnly, tc.caseOnly)
				}
			}
			if len(tc.want) > 0 {
				if _, err := ci.Compile(tc.patterns); err == nil {
					t.Error("Compile accepted what Check refused")
				}
			}
		})
	}
	// Case-sensitively the same patterns are distinct routes.
	if errs := Check([]string{"GET /admin", "GET /Admin"}); len(errs) != 0 {
		t.Errorf("case-sensitive Check: %v", errs)
	}
}
