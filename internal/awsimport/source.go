package awsimport

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxSourceBytes bounds a source file: the largest CloudFormation template
// AWS accepts is 1 MB, a distribution config far less.
const MaxSourceBytes = 8 << 20

// maxNodes bounds the YAML nodes walked, aliases counted at each use, so a
// small file cannot expand into a large one.
const maxNodes = 1_000_000

// Values fills placeholders: by name (--set NAME=VALUE), and with template
// defaults when UseDefaults (--use-defaults).
type Values struct {
	Set         map[string]string
	UseDefaults bool
}

// doc is one parsed source file and the placeholders met reading it.
type doc struct {
	file   string
	root   *yaml.Node
	values Values
	// params are a template's Parameters: name → default (when declared).
	params   map[string]*yaml.Node
	missing  map[string]Placeholder
	defaults map[string]Placeholder
	// pseudo and resource names a template may !Ref.
	resources map[string]bool
}

// parseDoc reads data as YAML (JSON is YAML), keeping every node's line.
// CloudFormation's short intrinsic tags (!Ref, !Sub, ...) are kept as node
// tags, which yaml.v3 accepts whatever they are.
func parseDoc(file string, data []byte, v Values) (*doc, error) {
	if len(data) > MaxSourceBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d this import reads", file, len(data), MaxSourceBytes)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty document", file)
	}
	if n := countNodes(&root, 0); n > maxNodes {
		return nil, fmt.Errorf("%s: more than %d values (aliases counted at each use)", file, maxNodes)
	}
	return &doc{file: file, root: root.Content[0], values: v, missing: map[string]Placeholder{}, defaults: map[string]Placeholder{}}, nil
}

func countNodes(n *yaml.Node, c int) int {
	if c > maxNodes {
		return c
	}
	c++
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return countNodes(n.Alias, c)
	}
	for _, k := range n.Content {
		c = countNodes(k, c)
	}
	return c
}

// val is a node and where it is.
type val struct {
	d   *doc
	n   *yaml.Node // nil when absent
	ptr string
}

func (d *doc) top() val { return val{d: d, n: d.root} }

func (v val) ok() bool { return v.n != nil }

func (v val) loc() Loc {
	l := Loc{File: v.d.file, Pointer: v.ptr}
	if v.n != nil {
		l.Line = v.n.Line
	}
	if l.Pointer == "" {
		l.Pointer = "/"
	}
	return l
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func escapePtr(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// get returns the value of key in a mapping.
func (v val) get(key string) val {
	n := deref(v.n)
	out := val{d: v.d, ptr: v.ptr + "/" + escapePtr(key)}
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			out.n = deref(n.Content[i+1])
			return out
		}
	}
	return out
}

// keys returns a mapping's keys in file order.
func (v val) keys() []string {
	n := deref(v.n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var ks []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		ks = append(ks, n.Content[i].Value)
	}
	return ks
}

func (v val) isMap() bool { n := deref(v.n); return n != nil && n.Kind == yaml.MappingNode }

// items returns a list's items. CloudFront's API wraps lists as
// {Quantity, Items}; CloudFormation writes them bare: both are read.
func (v val) items() []val {
	n := deref(v.n)
	if n != nil && n.Kind == yaml.MappingNode {
		it := v.get("Items")
		n, v = it.n, it
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]val, len(n.Content))
	for i, c := range n.Content {
		out[i] = val{d: v.d, n: deref(c), ptr: v.ptr + "/" + strconv.Itoa(i)}
	}
	return out
}

// raw returns a plain scalar's text, "" for anything else.
func (v val) raw() string {
	n := deref(v.n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") {
		return "" // absent, not a scalar, or an intrinsic (!Ref x)
	}
	return n.Value
}

func (v val) boolean() bool {
	b, _ := strconv.ParseBool(v.raw())
	return b
}

func (v val) integer() (int, bool) {
	i, err := strconv.Atoi(v.raw())
	return i, err == nil
}

// present reports whether v holds something other than null, "" or false.
func (v val) present() bool {
	n := deref(v.n)
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") {
		return true // an intrinsic
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value != "" && n.Tag != "!!null" && n.Value != "false"
	case yaml.SequenceNode:
		return len(n.Content) > 0
	case yaml.MappingNode:
		if q := v.get("Quantity"); q.ok() {
			i, _ := q.integer()
			return i > 0 || v.get("Enabled").boolean()
		}
		if e := v.get("Enabled"); e.ok() {
			return e.boolean()
		}
		return len(n.Content) > 0
	}
	return false
}

// intrinsic returns the CloudFormation function v calls and its argument:
// the short form (!Sub x) or the long one ({"Fn::Sub": x}, {"Ref": x}).
func (v val) intrinsic() (fn string, arg val, ok bool) {
	n := deref(v.n)
	if n == nil {
		return "", val{}, false
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		fn = strings.TrimPrefix(n.Tag, "!")
		if fn != "Ref" && fn != "Condition" {
			fn = "Fn::" + fn
		}
		m := *n
		m.Tag = ""
		return fn, val{d: v.d, n: &m, ptr: v.ptr}, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		if k == "Ref" || strings.HasPrefix(k, "Fn::") {
			return k, v.get(k), true
		}
	}
	return "", val{}, false
}

var (
	subVar    = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)
	plainVar  = regexp.MustCompile(`\$\{([A-Za-z0-9_.:\-]+)\}|__([A-Z][A-Z0-9_]*)__|\{\{resolve:[^}]*\}\}`)
	pseudoRef = map[string]bool{"AWS::AccountId": true, "AWS::Region": true, "AWS::StackName": true, "AWS::StackId": true, "AWS::Partition": true, "AWS::URLSuffix": true, "AWS::NoValue": true, "AWS::NotificationARNs": true}
)

// text returns v for a message: a plain scalar as it is, an intrinsic as
// the template writes it. Unlike str it records no placeholder, for values
// that only appear in findings (aliases, header names).
func (v val) text() string {
	if fn, arg, ok := v.intrinsic(); ok {
		if a := arg.raw(); a != "" {
			return fn + "(" + a + ")"
		}
		return fn + "(…)"
	}
	return v.raw()
}

// str resolves v to a string: a plain scalar, or an intrinsic whose
// references are filled from Values. A value it cannot fill is recorded as
// a placeholder and ok is false.
func (v val) str() (string, bool) {
	if fn, arg, ok := v.intrinsic(); ok {
		return v.call(fn, arg)
	}
	n := deref(v.n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", v.n == nil
	}
	return v.fillPlain(n.Value)
}

// fillPlain fills ${NAME}, __NAME__ and {{resolve:...}} left in a plain
// string by whatever templating produced the file.
func (v val) fillPlain(s string) (string, bool) {
	if !strings.Contains(s, "${") && !strings.Contains(s, "__") && !strings.Contains(s, "{{resolve:") {
		return s, true
	}
	ok := true
	out := plainVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m
		switch {
		case strings.HasPrefix(m, "${"):
			name = m[2 : len(m)-1]
		case strings.HasPrefix(m, "__"):
			name = m[2 : len(m)-2]
		}
		r, filled := v.fill(name, false)
		ok = ok && filled
		return r
	})
	return out, ok
}

// fill gives name's value: --set, or (with UseDefaults) a template
// parameter's default. ref says name came from a !Ref or ${} in !Sub.
func (v val) fill(name string, ref bool) (string, bool) {
	if s, ok := v.d.values.Set[name]; ok {
		return s, true
	}
	p := Placeholder{Name: name, Loc: v.loc()}
	if def, ok := v.d.params[name]; ok && def != nil {
		p.Default, p.HasDefault = def.Value, true
		if v.d.values.UseDefaults {
			if _, seen := v.d.defaults[name]; !seen {
				v.d.defaults[name] = p
			}
			return def.Value, true
		}
	}
	if _, seen := v.d.missing[name]; !seen {
		v.d.missing[name] = p
	}
	return "${" + name + "}", false
}

func (v val) call(fn string, arg val) (string, bool) {
	switch fn {
	case "Ref":
		return v.fill(arg.raw(), true)
	case "Fn::GetAtt":
		name := arg.raw()
		if it := arg.items(); len(it) == 2 {
			name = it[0].raw() + "." + it[1].raw()
		}
		return v.fill(name, true)
	case "Fn::ImportValue":
		s, ok := arg.str()
		if !ok {
			return s, false
		}
		return v.fill("ImportValue:"+s, true)
	case "Fn::Sub":
		tmpl, vars := arg, val{}
		if it := arg.items(); len(it) == 2 {
			tmpl, vars = it[0], it[1]
		}
		s := tmpl.raw()
		ok := true
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			name := m[2 : len(m)-1]
			if vv := vars.get(name); vv.ok() {
				r, filled := vv.str()
				ok = ok && filled
				return r
			}
			r, filled := tmpl.fill(name, true)
			ok = ok && filled
			return r
		})
		return strings.ReplaceAll(out, "${!", "${"), ok
	case "Fn::Join":
		it := arg.items()
		if len(it) != 2 {
			break
		}
		sep := it[0].raw()
		var parts []string
		ok := true
		for _, p := range it[1].items() {
			s, filled := p.str()
			ok = ok && filled
			parts = append(parts, s)
		}
		return strings.Join(parts, sep), ok
	}
	// Fn::If, Fn::Select, Fn::FindInMap ...: a value only the stack knows.
	return v.fill(strings.TrimPrefix(v.ptr, "/"), true)
}

// placeholders returns the values left unfilled and the defaults used, in
// name order.
func (d *doc) placeholders() (missing, defaults []Placeholder) {
	for _, p := range d.missing {
		missing = append(missing, p)
	}
	for _, p := range d.defaults {
		defaults = append(defaults, p)
	}
	byName := func(ps []Placeholder) {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	}
	byName(missing)
	byName(defaults)
	return missing, defaults
}
