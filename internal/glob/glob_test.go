package glob

import (
	"path"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		fold bool
		want bool
	}{
		{"*", "", false, true},
		{"*", "anything/at:all", false, true},
		{"a*c", "abbbc", false, true},
		{"a*c", "abbbd", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"arn:aws:execute-api:*:*:api/*/GET/*", "arn:aws:execute-api:us-east-1:1:api/$default/GET/orders/1", false, true},
		{"arn:aws:execute-api:*:*:api/*/GET/*", "arn:aws:execute-api:us-east-1:1:api/$default/POST/orders/1", false, false},
		// A "*" in the subject is a byte like any other: the pattern's
		// star still matches across it (this failed when a literal match
		// was tried before the wildcard).
		{"*/GET/*", "api/$default/GET/files/*", false, true},
		{"*x", "*abx", false, true},
		{"execute-api:invoke", "execute-api:Invoke", true, true},
		{"execute-api:invoke", "execute-api:Invoke", false, false},
		{"/images/*.jpg", "/images/a/b.jpg", false, true},
		{"/images/*.jpg", "/images/a.png", false, false},
	} {
		if got := Match(tc.p, tc.s, tc.fold); got != tc.want {
			t.Errorf("Match(%q, %q, %v) = %v, want %v", tc.p, tc.s, tc.fold, got, tc.want)
		}
	}
}

// FuzzMatch checks Match against path.Match on ASCII patterns without the
// characters path.Match treats specially and Match does not ([, \), with
// "/" kept out of both, where path.Match's "*" stops. (path.Match's "?" is
// a rune; Match's a byte, as AWS documents neither for non-ASCII.)
func FuzzMatch(f *testing.F) {
	f.Add("a*b?c", "axxbyc")
	f.Add("*", "*")
	f.Fuzz(func(t *testing.T, p, s string) {
		for i := 0; i < len(p); i++ {
			if p[i] == '[' || p[i] == '\\' || p[i] == '/' || p[i] >= 0x80 {
				return
			}
		}
		for i := 0; i < len(s); i++ {
			if s[i] == '/' || s[i] >= 0x80 {
				return
			}
		}
		want, err := path.Match(p, s)
		if err != nil {
			return
		}
		if got := Match(p, s, false); got != want {
			t.Fatalf("Match(%q, %q) = %v, path.Match says %v", p, s, got, want)
		}
	})
}
