package config

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
)

var (
	originPath = regexp.MustCompile(`origins\.[A-Za-z0-9_.-]+`)
	pathIndex  = regexp.MustCompile(`\[\d+\]`)
)

// Error is one problem in a config file, reported at the key or value that
// causes it. Msg says what is wrong and what to write instead.
type Error struct {
	Pos Pos
	Msg string
}

// Error formats e as "file:line:col: msg", the form editors and CI
// annotations recognise.
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem Parse found in one file, sorted by position.
// Parse returns it as its error so that a user fixes a file in one pass
// instead of one error per run; use errors.As to get at the entries.
type ErrorList []*Error

// Error returns one "file:line:col: msg" line per entry.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the entries, so errors.As can find an *Error in the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// normalize drops exact repeats (a value reached through several YAML
// aliases is checked once per use) and sorts by position, keeping the order
// in which problems were found for entries at the same position.
func (l ErrorList) normalize() ErrorList {
	type key struct {
		pos Pos
		msg string
	}
	seen := make(map[key]bool, len(l))
	out := l[:0]
	for _, e := range l {
		// Through an alias, one value is checked under several paths
		// (origins.a.timeouts, origins.b.timeouts); at one position those
		// are one problem.
		k := key{e.Pos, e.Msg}
		if strings.Contains(e.Msg, "[") || strings.Contains(e.Msg, "origins.") {
			k.msg = pathIndex.ReplaceAllString(originPath.ReplaceAllString(e.Msg, "origins.*"), "[*]")
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return out
}
