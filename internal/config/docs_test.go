package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The configuration reference a person reads, kept in step with the binary.
const configurationDoc = "../../docs/configuration.md"

const (
	defaultBegin = "<!-- default-config: begin (generated; do not edit by hand) -->\n```yaml\n"
	defaultEnd   = "```\n<!-- default-config: end -->"
)

// TestConfigurationDoc keeps docs/configuration.md true to the parser:
//   - its copy of `turnout default-config` is the embedded default, byte for
//     byte (-update rewrites it);
//   - every key its tables document is a key the parser accepts;
//   - every key the parser accepts is documented: in a table row of its own,
//     or named in the row of the mapping that holds it
//     (`origins.NAME.timeouts` … `{dial: 2s, response_header: 30s, …}`).
//
// The keys the parser accepts are read from the parser itself: a probe key
// is placed under each mapping, and the "unknown key … (valid keys: …)"
// error lists the mapping's keys. So a key added to the decoder shows up
// here without anyone listing it twice.
func TestConfigurationDoc(t *testing.T) {
	raw, err := os.ReadFile(configurationDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)

	// The embedded default, verbatim.
	i, j := strings.Index(doc, defaultBegin), strings.Index(doc, defaultEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no default-config block between %q and %q", configurationDoc, defaultBegin, defaultEnd)
	}
	if got, want := doc[i+len(defaultBegin):j], string(Default()); got != want {
		if *update {
			doc = doc[:i+len(defaultBegin)] + want + doc[j:]
			if err := os.WriteFile(configurationDoc, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Errorf("%s: the default config differs from `turnout default-config`; run go test ./internal/config -run TestConfigurationDoc -update", configurationDoc)
		}
	}

	rows := docKeyRows(doc[:i])
	if len(rows) < 50 {
		t.Fatalf("%s: found %d documented keys in its tables; has the table format changed?", configurationDoc, len(rows))
	}
	keys := parserKeys(t)
	if len(keys) < 50 {
		t.Fatalf("found %d keys by probing the parser; has its unknown-key message changed?", len(keys))
	}

	// Every documented key is real.
	for k := range rows {
		if _, ok := keys[k]; !ok {
			t.Errorf("%s documents %q, which the parser does not accept", configurationDoc, k)
		}
	}
	// Every real key is documented.
	for k, leaf := range keys {
		if !leaf {
			continue
		}
		if _, ok := rows[k]; !ok && !namedInParentRow(k, rows) && !hasDocumentedChild(k, rows) {
			t.Errorf("%s does not document the key %q: add a row to its tables (or name it in its parent's row)", configurationDoc, k)
		}
	}
}

// namedInParentRow reports whether a row documenting an ancestor of key names
// key's last part as a word ("dial" in the `origins.NAME.timeouts` row).
func namedInParentRow(key string, rows map[string]string) bool {
	last := key[strings.LastIndexAny(key, ".]")+1:]
	word := regexp.MustCompile(`(^|[^A-Za-z0-9_])` + regexp.QuoteMeta(last) + `($|[^A-Za-z0-9_])`)
	for a := parentKey(key); a != ""; a = parentKey(a) {
		if row, ok := rows[a]; ok && word.MatchString(row) {
			return true
		}
	}
	return false
}

// hasDocumentedChild covers a key probed as a leaf whose parts are
// documented one by one (a free-form mapping).
func hasDocumentedChild(key string, rows map[string]string) bool {
	for k := range rows {
		if strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[].") {
			return true
		}
	}
	return false
}

// parentKey returns "a.b" for "a.b.c" and "a" for "a[].b", "" at the top.
// Name placeholders go with their mapping: the parent of
// "origins.NAME.url" is "origins.NAME".
func parentKey(k string) string {
	i := strings.LastIndex(k, ".")
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(k[:i], "[]")
}

var (
	docRow  = regexp.MustCompile("^\\| *`([^`]+)`(.*)$")
	docName = regexp.MustCompile("`([^`]+)`")
)

// docKeyRows returns the keys in the first column of the doc's tables, each
// with its whole row. A first cell may name siblings after the first key in
// short form: "`functions.NAME.args[]`, `env{}`". Trailing [] (a list) and
// {} (a map) are dropped.
func docKeyRows(doc string) map[string]string {
	rows := map[string]string{}
	for _, line := range strings.Split(doc, "\n") {
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), " |")
		var base string
		for _, n := range docName.FindAllStringSubmatch(first, -1) {
			k := strings.TrimSuffix(strings.TrimSuffix(n[1], "[]"), "{}")
			if base == "" {
				base = parentKey(n[1])
				if strings.Contains(n[1], "[].") {
					base = n[1][:strings.LastIndex(n[1], ".")]
				}
			} else if !strings.Contains(k, ".") && base != "" {
				k = base + "." + k
			}
			if !regexp.MustCompile(`^[a-z_][a-z0-9_]*((\.|\[\]\.)([a-z_][a-z0-9_]*|NAME))*$`).MatchString(k) {
				continue // not a key: a metric, a command, a value
			}
			rows[k] = line
		}
	}
	return rows
}

// parserKeys discovers every key path the parser accepts, as the doc writes
// them ("routes[].match", "origins.NAME.url"), mapped to whether it is a
// leaf (true) or a mapping or list of mappings (false).
func parserKeys(t *testing.T) map[string]bool {
	keys := map[string]bool{}
	var walk func(path []string)
	walk = func(path []string) {
		for _, shape := range []string{"mapping", "names", "list"} {
			children, ok := probe(t, path, shape)
			if !ok {
				continue
			}
			if len(path) > 0 {
				keys[docPath(path)] = false
			}
			for _, c := range children {
				switch shape {
				case "names":
					walk(append(slices.Clone(path), "NAME", c))
				case "list":
					walk(append(slices.Clone(path), "[]", c))
				default:
					walk(append(slices.Clone(path), c))
				}
			}
			return
		}
		keys[docPath(path)] = true
	}
	walk(nil)
	return keys
}

// docPath writes a probe path the way the doc does.
func docPath(path []string) string {
	var b strings.Builder
	for i, p := range path {
		switch {
		case p == "[]":
			b.WriteString("[]")
		case i > 0:
			b.WriteString("." + p)
		default:
			b.WriteString(p)
		}
	}
	return b.String()
}

var validKeys = regexp.MustCompile(`unknown key "zz_probe" in .*\(valid keys: ([^)]*)\)`)

// probe places a probe key at path, shaped as a mapping
// (path: {zz_probe: …}), a mapping of names (path: {NAME: {zz_probe: …}}) or
// a list of mappings (path: [{zz_probe: …}]), and returns the valid keys the
// parser lists when it refuses the probe at that depth.
func probe(t *testing.T, path []string, shape string) ([]string, bool) {
	var b bytes.Buffer
	indent := ""
	for _, p := range path {
		switch p {
		case "NAME":
			fmt.Fprintf(&b, "%szz_name:\n", indent)
		case "[]":
			fmt.Fprintf(&b, "%s-\n", indent)
		default:
			fmt.Fprintf(&b, "%s%s:\n", indent, p)
		}
		indent += "  "
	}
	probeLine := strings.Count(b.String(), "\n") + 1
	switch shape {
	case "mapping":
		fmt.Fprintf(&b, "%szz_probe: 1\n", indent)
	case "names":
		fmt.Fprintf(&b, "%szz_name:\n%s  zz_probe: 1\n", indent, indent)
		probeLine++
	case "list":
		fmt.Fprintf(&b, "%s- zz_probe: 1\n", indent)
	}
	_, err := Parse("probe.yaml", b.Bytes())
	var list ErrorList
	if !errors.As(err, &list) {
		return nil, false
	}
	for _, e := range list {
		if m := validKeys.FindStringSubmatch(e.Msg); m != nil && e.Pos.Line == probeLine {
			return strings.Split(m[1], ", "), true
		}
	}
	return nil, false
}
