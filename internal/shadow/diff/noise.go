package diff

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// MaxNoise is the most places a Noise learns; a primary whose answers
// differ in more places (objects keyed by random ids) stops teaching, and
// Places says how many were dropped.
const MaxNoise = 256

// Noise is what a route learned by comparing two answers of its primary
// to one request (issue 17, "Cancel noise", after Diffy): the places
// where they differ though nothing changed — timestamps, random ids,
// lists in no order — with indexes generalised ("$.items[*].etag"), so
// that one field of every element is one place. A shadow's difference at
// or below a noise place is noise: CompareNoise lists it in Result.Noise,
// not in Differences. Places are JSON paths, or "status", "header:Name",
// "body" and "body:line N" matched as they are. The zero Noise is empty
// and ready; it is safe for concurrent use.
type Noise struct {
	mu      sync.RWMutex
	count   map[string]int
	order   []string  // places in the order learned
	json    []pattern // the JSON places, compiled; append-only, so a snapshot shares it
	other   []string  // the other places; append-only
	dropped int
}

// NoisePlace is one learned place and in how many comparisons two
// answers of the primary differed there.
type NoisePlace struct {
	Path  string
	Count int
}

// Learn records the places of r, a comparison of two answers of the
// primary; a place counts once per comparison, however many elements
// differ there.
func (n *Noise) Learn(r Result) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.count == nil {
		n.count = map[string]int{}
	}
	once := make(map[string]bool, len(r.Differences))
	for _, d := range r.Differences {
		if d.Kind == KindMore {
			continue
		}
		p := Generalize(d.Path)
		if once[p] {
			continue
		}
		once[p] = true
		if _, ok := n.count[p]; !ok {
			if len(n.order) == MaxNoise {
				n.dropped++
				continue
			}
			if strings.HasPrefix(p, "$") {
				pt, err := parsePattern(p)
				if err != nil { // not a path Compare writes
					n.dropped++
					continue
				}
				n.json = append(n.json, pt)
			} else {
				n.other = append(n.other, p)
			}
			n.order = append(n.order, p)
		}
		n.count[p]++
	}
}

// Places returns the learned places, the most frequent first, and the
// number of places not learned because MaxNoise were.
func (n *Noise) Places() ([]NoisePlace, int) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]NoisePlace, 0, len(n.order))
	for _, p := range n.order {
		out = append(out, NoisePlace{Path: p, Count: n.count[p]})
	}
	slices.SortStableFunc(out, func(a, b NoisePlace) int { return cmp.Compare(b.Count, a.Count) })
	return out, n.dropped
}

// Covers reports whether a difference at path is noise.
func (n *Noise) Covers(path string) bool {
	s := n.snapshot()
	if !strings.HasPrefix(path, "$") {
		return slices.Contains(s.other, Generalize(path))
	}
	segs, ok := pathSegs(path)
	return ok && matchAny(s.json, segs)
}

// noiseSet is a Noise as one comparison reads it.
type noiseSet struct {
	json  []pattern
	other []string
}

func (n *Noise) snapshot() noiseSet {
	if n == nil {
		return noiseSet{}
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return noiseSet{json: n.json, other: n.other}
}

// pathSegs reads a path Compare wrote back into its steps.
func pathSegs(path string) ([]seg, bool) {
	pt, err := parsePattern(path)
	if err != nil {
		return nil, false
	}
	segs := make([]seg, 0, len(pt))
	for _, p := range pt {
		switch p.kind {
		case segKey:
			segs = append(segs, seg{key: []byte(p.key)})
		case segIndex:
			segs = append(segs, seg{isIdx: true, index: p.index})
		default: // a generalised path: * stands for itself
			return nil, false
		}
	}
	return segs, true
}
