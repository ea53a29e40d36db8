package traffic

import (
	"bufio"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/templates.golden with the current templates")

type goldenLine struct {
	text        string // the line as read, for comments and blank lines
	input, want string
	isCase      bool
}

func readGolden(t testing.TB) []goldenLine {
	t.Helper()
	f, err := os.Open("testdata/templates.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []goldenLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		in, want, ok := strings.Cut(l, "\t")
		if strings.HasPrefix(l, "#") || !ok {
			lines = append(lines, goldenLine{text: l})
			continue
		}
		lines = append(lines, goldenLine{text: l, input: in, want: want, isCase: true})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestTemplateGolden(t *testing.T) {
	lines := readGolden(t)
	cases := 0
	var out strings.Builder
	for _, l := range lines {
		if !l.isCase {
			out.WriteString(l.text + "\n")
			continue
		}
		cases++
		got := Template(l.input)
		out.WriteString(l.input + "\t" + got + "\n")
		if !*update && got != l.want {
			t.Errorf("Template(%q) = %q, want %q", l.input, got, l.want)
		}
	}
	if cases < 60 {
		t.Errorf("golden file has %d cases, want at least 60", cases)
	}
	if *update {
		if err := os.WriteFile("testdata/templates.golden", []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func segments(p string) int { return strings.Count(p, "/") + 1 }

func checkTemplateProperties(t *testing.T, p string) {
	t.Helper()
	got := Template(p)
	if again := Template(got); again != got {
		t.Fatalf("not idempotent: Template(%q) = %q, Template(%q) = %q", p, got, got, again)
	}
	if segments(got) != segments(p) {
		t.Fatalf("Template(%q) = %q: %d segments, want %d", p, got, segments(got), segments(p))
	}
	if len(got) > 8*len(p)+1 {
		t.Fatalf("Template(%q) = %q: output %d bytes from %d", p, got, len(got), len(p))
	}
}

func TestTemplateProperties(t *testing.T) {
	for _, l := range readGolden(t) {
		if l.isCase {
			checkTemplateProperties(t, l.input)
		}
	}
}

// FuzzTemplate checks, on any input, that Template does not panic, keeps
// the number of segments, and is idempotent. Seeds: testdata/fuzz/FuzzTemplate
// and every input of the golden file.
func FuzzTemplate(f *testing.F) {
	for _, l := range readGolden(f) {
		if l.isCase {
			f.Add(l.input)
		}
	}
	f.Fuzz(checkTemplateProperties)
}

func TestTemplateAllocs(t *testing.T) {
	var buf [256]byte
	allocs := testing.AllocsPerRun(100, func() {
		appendTemplate(buf[:0], "/api/v1/users/42/orders/550e8400-e29b-41d4-a716-446655440000/items/%34%32")
	})
	if allocs != 0 {
		t.Errorf("appendTemplate allocates %.0f times per call, want 0", allocs)
	}
}
