package deploy

import (
	"fmt"
	"strings"

	"github.com/aymanbagabas/go-udiff/lcs"
)

// contextLines is the number of unchanged lines around each hunk.
const contextLines = 3

type lineOp struct {
	kind byte // ' ', '-', '+'
	text string
}

// UnifiedDiff returns a unified diff of a and b by line, with the usual
// "--- nameA", "+++ nameB" header and three lines of context, or "" when
// they are equal.
func UnifiedDiff(nameA, nameB, a, b string) string {
	if a == b {
		return ""
	}
	ops := diffLines(splitLines(a), splitLines(b))
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)

	// Walk the ops, grouping changes that are at most 2*context apart into
	// one hunk.
	i := 0
	lineA, lineB := 1, 1 // line numbers at ops[i]
	for i < len(ops) {
		// Find the next change.
		j := i
		la, lb := lineA, lineB
		for j < len(ops) && ops[j].kind == ' ' {
			j, la, lb = j+1, la+1, lb+1
		}
		if j == len(ops) {
			break
		}
		// Hunk starts contextLines before the change.
		start := max(j-contextLines, i)
		startA, startB := la-(j-start), lb-(j-start)
		// Extend the hunk while changes are close together.
		end := j
		for k := j; k < len(ops); {
			if ops[k].kind != ' ' {
				k++
				end = k
				continue
			}
			run := k
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-k > 2*contextLines {
				break
			}
			k = run
		}
		stop := min(end+contextLines, len(ops))
		var countA, countB int
		for _, op := range ops[start:stop] {
			if op.kind != '+' {
				countA++
			}
			if op.kind != '-' {
				countB++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(startA, countA), hunkRange(startB, countB))
		for _, op := range ops[start:stop] {
			out.WriteByte(op.kind)
			out.WriteString(op.text)
			out.WriteByte('\n')
		}
		// Advance line counters to stop.
		lineA, lineB = startA+countA, startB+countB
		i = stop
	}
	return out.String()
}

// hunkRange formats a unified-diff range; an empty range names the line
// before it, as diff(1) does.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start-1)
	case 1:
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, count)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// diffLines returns the edit script turning a into b. The alignment is
// Myers' (go-udiff's copy of x/tools' lcs package), which works in space
// linear in the lines rather than the lines of a times the lines of b, and
// gives up on minimality, not correctness, when the inputs differ a lot.
// Each replacement lists its removed lines before its added ones.
func diffLines(a, b []string) []lineOp {
	ops := make([]lineOp, 0, max(len(a), len(b)))
	i := 0 // next line of a not yet in ops
	for _, d := range lcs.DiffLines(a, b) {
		for ; i < d.Start; i++ {
			ops = append(ops, lineOp{' ', a[i]})
		}
		for _, l := range a[d.Start:d.End] {
			ops = append(ops, lineOp{'-', l})
		}
		for _, l := range b[d.ReplStart:d.ReplEnd] {
			ops = append(ops, lineOp{'+', l})
		}
		i = d.End
	}
	for ; i < len(a); i++ {
		ops = append(ops, lineOp{' ', a[i]})
	}
	return ops
}
