package diff

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestNoise(t *testing.T) {
	answer := func(ts, id, etag, total string) *Answer {
		return &Answer{Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}, "Etag": {etag}},
			Body:   []byte(`{"generatedAt":"` + ts + `","requestId":"` + id + `","items":[{"id":1,"etag":"` + id + `a"},{"id":2,"etag":"` + id + `b"}],"total":` + total + `}`)}
	}
	r := mustCompile(t, nil, nil)
	var noise Noise
	if got := r.CompareNoise(answer("t1", "r1", "e1", "5"), answer("t2", "r2", "e2", "5"), &noise); len(got.Noise) != 0 || len(got.Differences) != 5 {
		t.Fatalf("before learning: %q", got)
	}
	// Two answers of the primary to one request teach the noise.
	noise.Learn(r.Compare(answer("t1", "r1", "e1", "5"), answer("t2", "r2", "e2", "5")))
	noise.Learn(r.Compare(answer("t3", "r3", "e1", "5"), answer("t4", "r4", "e1", "5")))
	places, dropped := noise.Places()
	want := []NoisePlace{{"$.generatedAt", 2}, {"$.requestId", 2}, {"$.items[*].etag", 2}, {"header:Etag", 1}}
	if !reflect.DeepEqual(places, want) || dropped != 0 {
		t.Errorf("places %v (%d dropped), want %v", places, dropped, want)
	}

	// A shadow that differs only there answers as the primary does.
	got := r.CompareNoise(answer("t1", "r1", "e1", "5"), answer("t9", "r9", "e9", "5"), &noise)
	if len(got.Differences) != 0 || len(got.Noise) != 5 || got.Noise[0] != (Difference{"header:Etag", "changed", "e1", "e9"}) {
		t.Errorf("noise only: %q", got)
	}
	// A real difference is still counted, with the noise beside it.
	got = r.CompareNoise(answer("t1", "r1", "e1", "5"), answer("t9", "r9", "e1", `"5"`), &noise)
	if want := []Difference{{"$.total", "type", "5", `"5"`}}; !reflect.DeepEqual(got.Differences, want) || len(got.Noise) != 4 {
		t.Errorf("real and noise: %q", got)
	}

	for path, want := range map[string]bool{
		"$.items[7].etag":      true,
		"$.items[7].etag.x":    true,
		"$.items[7]":           false,
		"$.requestId":          true,
		"header:Etag":          true,
		"header:Date":          false,
		"$.items[*].etag":      false,
		`$["generatedAt"]`:     true,
		"$.generatedAtOther":   false,
		"status":               false,
		"not a path [1":        false,
		`$["bad`:               false,
		"$.items[01x].etag":    false,
		"$.total":              false,
		"$.items[7][\"etag\"]": true,
	} {
		if got := noise.Covers(path); got != want {
			t.Errorf("Covers(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestNoiseBounded(t *testing.T) {
	r := mustCompile(t, nil, nil)
	var a, b strings.Builder
	a.WriteString("{")
	b.WriteString("{")
	for i := range 300 {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		fmt.Fprintf(&a, `"k%d":%d`, i, i)
		fmt.Fprintf(&b, `"k%d":%d`, i, i+1)
	}
	a.WriteString("}")
	b.WriteString("}")
	var all Noise
	all.Learn(Result{Differences: func() []Difference {
		var d []Difference
		for i := range 300 {
			d = append(d, Difference{Path: fmt.Sprintf("$.k%d", i), Kind: KindChanged})
		}
		return d
	}()})
	places, dropped := all.Places()
	if len(places) != MaxNoise || dropped != 300-MaxNoise {
		t.Errorf("%d places, %d dropped; want %d and %d", len(places), dropped, MaxNoise, 300-MaxNoise)
	}
	// Noise does not fill the list of differences: with the first 256
	// members noise, the 44 others are still found.
	got := r.CompareNoise(jsonAnswer(a.String()), jsonAnswer(b.String()), &all)
	if len(got.Differences) != 300-MaxNoise || len(got.Noise) != MaxDifferences+1 || got.Noise[MaxDifferences].Kind != KindMore {
		t.Errorf("%d differences, %d noise", len(got.Differences), len(got.Noise))
	}
}

// TestNoiseConcurrent learns and compares at once, for -race.
func TestNoiseConcurrent(t *testing.T) {
	r := mustCompile(t, nil, nil)
	var noise Noise
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				a := jsonAnswer(fmt.Sprintf(`{"f%d":%d,"x":1}`, (g*200+i)%50, i))
				b := jsonAnswer(fmt.Sprintf(`{"f%d":%d,"x":2}`, (g*200+i)%50, i+1))
				if g%2 == 0 {
					noise.Learn(r.Compare(a, b))
				} else {
					r.CompareNoise(a, b, &noise)
					noise.Covers("$.x")
					noise.Places()
				}
			}
		})
	}
	wg.Wait()
	if !noise.Covers("$.x") {
		t.Error("$.x not learned")
	}
}
