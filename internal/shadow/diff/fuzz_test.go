package diff

import (
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
)

var jsonSeeds = []string{
	`{"id":1,"items":[{"etag":"a","n":1.5e3}],"s":"\u00e9\n","t":true,"f":false,"z":null}`,
	`[1,2,[3,[4,{"a":{"b":[]}}]]]`,
	`{"a.b":{"c d":-0.0E-2}}`,
	`"x"`, `0`, `-1`, `1e999999999999999999999`, ` [ ] `, `{"a":1,"a":2}`,
	`{"a":`, `[1,]`, `{"a" 1}`, `01`, `1.`, `.5`, `"\x"`, `"\u12"`, "\"\x01\"", `tru`, `nul`, `[1 2]`,
}

// FuzzParse holds the parser to encoding/json's idea of valid JSON, within
// the depth the parser takes.
func FuzzParse(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := getParser()
		defer putParser(p)
		err := p.parse(b)
		if err == errDepth {
			return
		}
		if got, want := err == nil, json.Valid(b); got != want {
			t.Fatalf("parse(%q) = %v, json.Valid = %v", b, err, want)
		}
		if err != nil {
			return
		}
		// Every node's span is a valid JSON value, and its next sibling
		// index stays within the tree.
		for i, n := range p.nodes {
			if !json.Valid(b[n.start:n.end]) || int(n.next) <= i || int(n.next) > len(p.nodes) {
				t.Fatalf("node %d %+v of %q", i, n, b)
			}
		}
	})
}

// FuzzNumEqual holds numEqual to exact rational arithmetic.
func FuzzNumEqual(f *testing.F) {
	for _, s := range [][2]string{{"1", "1.0"}, {"1e2", "100"}, {"0", "-0.0e5"}, {"9007199254740993", "9007199254740992"}, {"12.50", "1.25e1"}, {"1e-3", "0.001"}, {"-5", "5"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !validNumber(a) || !validNumber(b) || len(a) > 40 || len(b) > 40 {
			return
		}
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		if ra == nil || rb == nil {
			t.Fatalf("big.Rat cannot read %q or %q", a, b)
		}
		if got, want := numEqual([]byte(a), []byte(b)), ra.Cmp(rb) == 0; got != want {
			t.Fatalf("numEqual(%s, %s) = %v, want %v", a, b, got, want)
		}
	})
}

func validNumber(s string) bool {
	p := parser{b: []byte(s)}
	if p.num() != nil || p.i != len(s) {
		return false
	}
	// Keep big.Rat's work small: exponents of at most three digits.
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e := strings.TrimLeft(s[i+1:], "+-")
		if len(strings.TrimLeft(e, "0")) > 3 {
			return false
		}
	}
	return true
}

// FuzzCompare compares arbitrary bodies under several content types and
// rules: no panic, the list bounded, an answer equal to itself.
func FuzzCompare(f *testing.F) {
	for i, s := range jsonSeeds {
		f.Add([]byte(s), []byte(jsonSeeds[(i+1)%len(jsonSeeds)]), uint8(i))
	}
	f.Add([]byte(strings.Repeat("[", 100)), []byte(strings.Repeat("[", 100)+"]"), uint8(0))
	f.Add([]byte("a\nb\nc"), []byte("a\nc\n"), uint8(1))
	rules := []*Rules{}
	for _, ig := range [][]string{nil, {"$.items[*].etag", "$.a.*"}, {"$[0]"}} {
		r, err := Compile(ig, nil)
		if err != nil {
			f.Fatal(err)
		}
		rules = append(rules, r)
	}
	red, err := rules[1].WithRedact([]string{"$.id", "X-Secret"})
	if err != nil {
		f.Fatal(err)
	}
	rules = append(rules, red)
	var noise Noise
	noise.Learn(Result{Differences: []Difference{{Path: "$.items[*]"}, {Path: "$.t"}, {Path: "body:line 2"}, {Path: "$"}}})
	types := []string{"application/json", "text/plain", "application/octet-stream", ""}
	f.Fuzz(func(t *testing.T, a, b []byte, sel uint8) {
		r := rules[int(sel)%len(rules)]
		ct := types[int(sel/4)%len(types)]
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		x := &Answer{Status: 200, Header: h, Body: a}
		y := &Answer{Status: 200, Header: h, Body: b}
		res := r.Compare(x, y)
		if len(res.Differences) > MaxDifferences+1 {
			t.Fatalf("%d differences", len(res.Differences))
		}
		if n := r.CompareNoise(x, y, &noise); len(n.Differences) > len(res.Differences) || len(n.Noise) > MaxDifferences+1 {
			t.Fatalf("with noise %d differences and %d noise, without %d", len(n.Differences), len(n.Noise), len(res.Differences))
		}
		for _, d := range res.Differences {
			if len(d.A) > maxValue+len("…") || len(d.B) > maxValue+len("…") || d.Path == "" || d.Kind == "" {
				t.Fatalf("difference %+v", d)
			}
		}
		if same := r.Compare(x, x); !same.Equal() {
			t.Fatalf("an answer differs from itself: %+v", same.Differences)
		}
		_ = RedactJSON(a, []string{"$.a", "$[*]", "$.*"})
	})
}
