package diff

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// orders10KB is a ~10 KB JSON answer: a list of orders as an API returns
// them. change alters three values (a total, a status and a nested
// timestamp) as a shadow that differs a little would.
func orders10KB(change bool) []byte {
	var b strings.Builder
	b.WriteString(`{"generatedAt":"2026-12-06T09:00:00Z","customer":{"id":"c-1042","name":"Ann Example","tier":"gold"},"orders":[`)
	for i := 0; b.Len() < 10_000-260; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		total, status, ts := fmt.Sprintf("%d.%02d", 10+i*3, i%100), "shipped", fmt.Sprintf("2026-11-%02dT10:00:00Z", 1+i%28)
		if change && i == 3 {
			total = fmt.Sprintf("%d.%02d", 11+i*3, i%100)
		}
		if change && i == 11 {
			status = "pending"
		}
		if change && i == 17 {
			ts = "2026-11-30T10:00:00Z"
		}
		fmt.Fprintf(&b, `{"id":"o-%05d","total":%s,"currency":"EUR","status":%q,"items":[{"sku":"SKU-%d","qty":%d,"price":%d.5}],"shipping":{"at":%q,"carrier":"dhl"}}`,
			i, total, status, i*7, 1+i%3, i, ts)
	}
	b.WriteString(`],"page":{"next":null,"size":50}}`)
	return []byte(b.String())
}

// BenchmarkCompareJSON10KB compares two 10 KB JSON answers with three
// differences, as the mirror does for each shadowed request. Measured on
// the shared 2-core VM (both cores busy with other work):
//
//	go test -run XXX -bench CompareJSON10KB -benchmem -count 5 ./internal/shadow/diff/
func BenchmarkCompareJSON10KB(b *testing.B) {
	x, y := orders10KB(false), orders10KB(true)
	h := http.Header{"Content-Type": {"application/json"}}
	r, err := Compile([]string{"$.generatedAt"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	a, c := &Answer{Status: 200, Header: h, Body: x}, &Answer{Status: 200, Header: h, Body: y}
	if d := r.Compare(a, c).Differences; len(d) != 3 {
		b.Fatalf("%d differences: %q", len(d), d)
	}
	b.SetBytes(int64(len(x) + len(y)))
	b.ReportAllocs()
	for b.Loop() {
		r.Compare(a, c)
	}
}

// BenchmarkDecodeAny is what decoding the same two bodies with
// encoding/json into any (numbers kept as json.Number) costs, before any
// comparing: the reason the package parses into a flat tree instead.
func BenchmarkDecodeAny(b *testing.B) {
	x, y := orders10KB(false), orders10KB(true)
	b.SetBytes(int64(len(x) + len(y)))
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range [][]byte{x, y} {
			d := json.NewDecoder(strings.NewReader(string(body)))
			d.UseNumber()
			var v any
			if err := d.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCompareJSON1MBReordered is the costly shape of a large answer:
// two 1.4 MB objects with the same 50,000 members in opposite orders:
// equal, every member paired through the name index (~11 ms, linear).
func BenchmarkCompareJSON1MBReordered(b *testing.B) {
	const n = 50_000
	var x, y strings.Builder
	x.WriteString("{")
	y.WriteString("{")
	for i := range n {
		if i > 0 {
			x.WriteString(",")
			y.WriteString(",")
		}
		fmt.Fprintf(&x, `"member-%06d":"value %d"`, i, i)
		fmt.Fprintf(&y, `"member-%06d":"value %d"`, n-1-i, n-1-i)
	}
	x.WriteString("}")
	y.WriteString("}")
	a := &Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(x.String())}
	c := &Answer{Status: 200, Header: a.Header, Body: []byte(y.String())}
	r, err := Compile(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if d := r.Compare(a, c).Differences; len(d) != 0 {
		b.Fatalf("differences: %q", d[:1])
	}
	b.SetBytes(int64(len(a.Body) + len(c.Body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Compare(a, c)
	}
}
