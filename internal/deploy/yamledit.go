package deploy

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The edits turnout makes to a stored config on its own authority (route
// off|on, rollout steps) change a line or two of the file as the operator
// wrote it, so that the diff between two deployments is the change and
// comments, blank lines and quoting stay. textDoc makes those line edits;
// encodeTree is the fallback for layouts a line edit cannot handle safely
// (flow style, a key on an item's first line), which keeps comments but not
// blank lines. Either way the caller parses the result again and compares it
// with the config it expects, so a wrong edit is refused, never stored.

// textDoc is a config's source split into lines, for edits placed by the
// positions of its parsed YAML nodes. Edits return a new source and leave
// the textDoc as it was; make one edit per textDoc (positions move).
type textDoc struct {
	src   []byte
	lines [][]byte
	eol   string
}

func newTextDoc(src []byte) *textDoc {
	t := &textDoc{src: src, lines: splitKeepEOL(src), eol: "\n"}
	if bytes.Contains(src, []byte("\r\n")) {
		t.eol = "\r\n"
	}
	return t
}

// offset returns the byte offset of node n's first character.
func (t *textDoc) offset(n *yaml.Node) (int, bool) {
	if n.Line < 1 || n.Line > len(t.lines) {
		return 0, false
	}
	start := 0
	for _, l := range t.lines[:n.Line-1] {
		start += len(l)
	}
	line := t.lines[n.Line-1]
	b := 0
	for c := 1; c < n.Column; c++ {
		if b >= len(line) {
			return 0, false
		}
		_, size := utf8.DecodeRune(line[b:])
		b += size
	}
	return start + b, true
}

// firstOnLine reports whether n starts its line (only spaces before it),
// so that the line is n's alone.
func (t *textDoc) firstOnLine(n *yaml.Node) bool {
	if n.Line < 1 || n.Line > len(t.lines) {
		return false
	}
	line := t.lines[n.Line-1]
	o, _ := t.offset(&yaml.Node{Line: n.Line, Column: 1})
	at, ok := t.offset(n)
	return ok && len(bytes.TrimLeft(line[:at-o], " ")) == 0
}

// replaceScalar replaces the text of plain scalar v with text.
func (t *textDoc) replaceScalar(v *yaml.Node, text string) ([]byte, bool) {
	if v.Kind != yaml.ScalarNode || v.Style != 0 {
		return nil, false
	}
	at, ok := t.offset(v)
	if !ok || !bytes.HasPrefix(t.src[at:], []byte(v.Value)) {
		return nil, false
	}
	out := append([]byte{}, t.src[:at]...)
	out = append(out, text...)
	return append(out, t.src[at+len(v.Value):]...), true
}

// insertLineAfter inserts text as a line of its own after line (0: before
// the first), indented to column (1-based).
func (t *textDoc) insertLineAfter(line, column int, text string) ([]byte, bool) {
	if line < 0 || line > len(t.lines) || column < 1 {
		return nil, false
	}
	var out []byte
	if line == 0 {
		out = append(out, strings.Repeat(" ", column-1)+text+t.eol...)
	}
	for i, l := range t.lines {
		out = append(out, l...)
		if i == line-1 {
			if !bytes.HasSuffix(l, []byte("\n")) {
				out = append(out, t.eol...)
			}
			out = append(out, strings.Repeat(" ", column-1)+text+t.eol...)
		}
	}
	return out, true
}

// setKey sets key to text in block mapping m: the value's text replaced
// when the key is there with a plain scalar value, or a line inserted
// before m's first key when that key starts its line, or after it when its
// line is an item's ("- match: ...") and its value a scalar on that line.
func (t *textDoc) setKey(m *yaml.Node, key, text string) ([]byte, bool) {
	if m == nil || m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 || len(m.Content) < 2 {
		return nil, false
	}
	if i := mapIndex(m, key); i >= 0 {
		return t.replaceScalar(m.Content[i+1], text)
	}
	k, v := m.Content[0], m.Content[1]
	switch {
	case t.firstOnLine(k):
		return t.insertLineAfter(k.Line-1, k.Column, key+": "+text)
	case v.Kind == yaml.ScalarNode && v.Line == k.Line:
		return t.insertLineAfter(k.Line, k.Column, key+": "+text)
	}
	return nil, false
}

// deleteKey deletes key's line from block mapping m, when key and its
// scalar value have the line to themselves.
func (t *textDoc) deleteKey(m *yaml.Node, key string) ([]byte, bool) {
	i := mapIndex(m, key)
	if i < 0 || m.Style&yaml.FlowStyle != 0 {
		return nil, false
	}
	k, v := m.Content[i], m.Content[i+1]
	if !t.firstOnLine(k) || v.Kind != yaml.ScalarNode || v.Line != k.Line {
		return nil, false
	}
	var out []byte
	for n, l := range t.lines {
		if n != k.Line-1 {
			out = append(out, l...)
		}
	}
	return out, true
}

// parseRoute parses src and finds the mapping node of the route whose
// match is want (findRoute), with the document holding it.
func parseRoute(src []byte, want string) (doc, m *yaml.Node, err error) {
	doc = &yaml.Node{}
	if err := yaml.Unmarshal(src, doc); err != nil {
		return nil, nil, err
	}
	m, err = findRoute(doc, want)
	return doc, m, err
}

// splitKeepEOL splits src into lines, each keeping its line ending.
func splitKeepEOL(src []byte) [][]byte {
	var lines [][]byte
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			lines = append(lines, src)
			break
		}
		lines = append(lines, src[:i+1])
		src = src[i+1:]
	}
	return lines
}

// encodeTree encodes doc again, keeping the file's indentation where it
// can tell it.
func encodeTree(doc *yaml.Node) ([]byte, error) {
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	indent, compact := layout(doc)
	enc.SetIndent(indent)
	if compact {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// layout guesses the file's indentation (spaces per mapping level, default
// 2) and whether block sequences are "compact". yaml.v3 counts a sequence's
// "- " as indentation when compact, so it writes the "-" indent-2 columns in
// from the key (at the key's column with indent 2), or indent columns in
// otherwise.
func layout(doc *yaml.Node) (indent int, compact bool) {
	indent = 2
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return indent, false
	}
	root := doc.Content[0]
	dash := -1 // columns from a key to its sequence's "-"
	found := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if v.Style&yaml.FlowStyle != 0 || len(v.Content) == 0 {
			continue
		}
		switch v.Kind {
		case yaml.MappingNode:
			if !found && v.Content[0].Column > k.Column {
				indent, found = v.Content[0].Column-k.Column, true
			}
		case yaml.SequenceNode:
			// A block sequence item starts two columns after its "-".
			if dash < 0 && v.Content[0].Column-2 >= k.Column {
				dash = v.Content[0].Column - 2 - k.Column
			}
		}
	}
	if !found && dash >= 0 {
		return max(dash, 2), dash == 0
	}
	return indent, dash >= 0 && dash == indent-2
}
