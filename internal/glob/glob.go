// Package glob matches the wildcard patterns AWS writes in two places
// turnout reads: IAM policies (actions and resource ARNs) and CloudFront
// cache behaviours' path patterns. "*" stands for any run of bytes, "/"
// and ":" included, and "?" for any one byte; nothing else is special.
package glob

// Match reports whether s matches pattern p; fold compares ASCII letters
// without case. It runs in O(len(p)·len(s)) at worst with the classic
// last-star backtracking, without recursion. A "*" in p is always a
// wildcard, also where s has a "*" itself.
func Match(p, s string, fold bool) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || same(p[pi], s[si], fold)):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func same(a, b byte, fold bool) bool {
	if a == b {
		return true
	}
	if !fold {
		return false
	}
	if 'A' <= a && a <= 'Z' {
		a += 'a' - 'A'
	}
	if 'A' <= b && b <= 'Z' {
		b += 'a' - 'A'
	}
	return a == b
}
