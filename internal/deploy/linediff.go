package deploy

import (
	"fmt"
	"strings"
)

// maxLCSCells bounds the LCS table (lines of a × lines of b, after trimming
// the common prefix and suffix). Past it the differing middle is shown as
// one replacement, which is still a correct diff, just not a minimal one.
const maxLCSCells = 4 << 20

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

// diffLines returns the edit script turning a into b: the common prefix and
// suffix, and a longest-common-subsequence alignment of the middle.
func diffLines(a, b []string) []lineOp {
	var pre, suf int
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []lineOp
	for _, l := range a[:pre] {
		ops = append(ops, lineOp{' ', l})
	}
	ops = append(ops, lcsOps(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, lineOp{' ', l})
	}
	return ops
}

func lcsOps(a, b []string) []lineOp {
	var ops []lineOp
	n, m := len(a), len(b)
	if n*m > maxLCSCells {
		for _, l := range a {
			ops = append(ops, lineOp{'-', l})
		}
		for _, l := range b {
			ops = append(ops, lineOp{'+', l})
		}
		return ops
	}
	// t[i][j] is the LCS length of a[i:] and b[j:].
	t := make([][]int32, n+1)
	for i := range t {
		t[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, lineOp{' ', a[i]})
			i, j = i+1, j+1
		case t[i+1][j] >= t[i][j+1]:
			ops = append(ops, lineOp{'-', a[i]})
			i++
		default:
			ops = append(ops, lineOp{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, lineOp{'-', a[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, lineOp{'+', b[j]})
	}
	return ops
}
