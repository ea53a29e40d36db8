package deploy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/route"
)

// DiffResult compares two deployments: what changed in meaning (origins,
// routes, other settings, compared with defaults applied so that writing out
// a default is no change), and a unified line diff of their YAML sources.
type DiffResult struct {
	A uint64 `json:"a"`
	B uint64 `json:"b"`
	// Origins changed, by name.
	Origins []ItemChange `json:"origins,omitempty"`
	// Routes changed, by canonical match.
	Routes []ItemChange `json:"routes,omitempty"`
	// Settings are the other changed settings, by YAML path ("limits.idle_timeout").
	Settings []FieldChange `json:"settings,omitempty"`
	// Unified is the line diff of the two sources; "" when they are identical.
	Unified string `json:"unified,omitempty"`
}

// ItemChange is one origin or route added, removed or changed.
type ItemChange struct {
	Name   string `json:"name"`
	Change string `json:"change"` // "added", "removed" or "changed"
	// Fields are the changed fields; for an added item, its settings (From
	// empty); for a removed one, none.
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one setting's old and new value, "" when absent.
type FieldChange struct {
	Field string `json:"field"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

func (f FieldChange) String() string {
	switch {
	case f.From == "":
		return f.Field + ": " + f.To
	case f.To == "":
		return f.Field + ": " + f.From + " → (none)"
	}
	return f.Field + ": " + f.From + " → " + f.To
}

// Empty reports whether the two deployments have the same meaning.
func (r DiffResult) Empty() bool {
	return len(r.Origins) == 0 && len(r.Routes) == 0 && len(r.Settings) == 0
}

// Text renders r for people: the semantic changes, then the line diff.
func (r DiffResult) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deployment %d → deployment %d\n", r.A, r.B)
	if r.Empty() {
		b.WriteString("no change in meaning\n")
	}
	section := func(title string, items []ItemChange) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:\n", title)
		for _, it := range items {
			mark := map[string]string{"added": "+", "removed": "-", "changed": "~"}[it.Change]
			fmt.Fprintf(&b, "  %s %s (%s)\n", mark, it.Name, it.Change)
			for _, f := range it.Fields {
				fmt.Fprintf(&b, "      %s\n", f)
			}
		}
	}
	section("origins", r.Origins)
	section("routes", r.Routes)
	if len(r.Settings) > 0 {
		b.WriteString("\nsettings:\n")
		for _, f := range r.Settings {
			mark := "~"
			switch {
			case f.From == "":
				mark = "+"
			case f.To == "":
				mark = "-"
			}
			fmt.Fprintf(&b, "  %s %s\n", mark, f)
		}
	}
	if r.Unified != "" {
		b.WriteString("\n")
		b.WriteString(r.Unified)
	}
	return b.String()
}

// Diff compares deployments a and b. b == 0 means the active deployment and
// a == 0 the one before b. Both configs must still parse; an error wrapping
// ErrNotFound names a missing id.
func (s *Service) Diff(ctx context.Context, a, b uint64) (DiffResult, error) {
	if b == 0 {
		act, err := s.Store.Active(ctx)
		if err != nil {
			return DiffResult{}, fmt.Errorf("diff: %w", err)
		}
		b = act.ID
	}
	if a == 0 {
		if b <= 1 {
			return DiffResult{}, errorf(ErrInvalid, "diff: deployment %d has no deployment before it; name two ids", b)
		}
		a = b - 1
	}
	da, err := s.get(ctx, a)
	if err != nil {
		return DiffResult{}, err
	}
	db, err := s.get(ctx, b)
	if err != nil {
		return DiffResult{}, err
	}
	ca, err := config.Parse(configName(a), []byte(da.Config))
	if err != nil {
		return DiffResult{}, fmt.Errorf("diff: deployment %d does not parse any more: %w", a, err)
	}
	cb, err := config.Parse(configName(b), []byte(db.Config))
	if err != nil {
		return DiffResult{}, fmt.Errorf("diff: deployment %d does not parse any more: %w", b, err)
	}
	r := diffConfigs(ca.WithDefaults(), cb.WithDefaults())
	r.A, r.B = a, b
	r.Unified = UnifiedDiff(fmt.Sprintf("deployment %d", a), fmt.Sprintf("deployment %d", b), da.Config, db.Config)
	return r, nil
}

func (s *Service) get(ctx context.Context, id uint64) (Deployment, error) {
	d, err := s.Store.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Deployment{}, errorf(ErrNotFound, "deployment %d does not exist (see `turnout history`)", id)
		}
		return Deployment{}, err
	}
	return d, nil
}

// diffConfigs compares two configs (with defaults applied).
func diffConfigs(a, b *config.Config) DiffResult {
	var r DiffResult

	// Origins, by name: removed and changed in a's order, then added.
	ob := make(map[string]config.Origin, len(b.Origins))
	for _, o := range b.Origins {
		ob[o.Name] = o
	}
	oa := make(map[string]bool, len(a.Origins))
	for _, o := range a.Origins {
		oa[o.Name] = true
		n, ok := ob[o.Name]
		if !ok {
			r.Origins = append(r.Origins, ItemChange{Name: o.Name, Change: "removed"})
			continue
		}
		if f := diffFields(flatten(o, "name"), flatten(n, "name")); len(f) > 0 {
			r.Origins = append(r.Origins, ItemChange{Name: o.Name, Change: "changed", Fields: f})
		}
	}
	for _, o := range b.Origins {
		if !oa[o.Name] {
			r.Origins = append(r.Origins, ItemChange{Name: o.Name, Change: "added", Fields: diffFields(nil, flatten(o, "name"))})
		}
	}

	// Routes, by canonical match.
	rb := make(map[string]config.Route, len(b.Routes))
	for _, rt := range b.Routes {
		rb[route.Canonical(rt.Match)] = rt
	}
	ra := make(map[string]bool, len(a.Routes))
	for _, rt := range a.Routes {
		m := route.Canonical(rt.Match)
		ra[m] = true
		n, ok := rb[m]
		if !ok {
			r.Routes = append(r.Routes, ItemChange{Name: m, Change: "removed"})
			continue
		}
		if f := diffFields(routeFields(rt), routeFields(n)); len(f) > 0 {
			r.Routes = append(r.Routes, ItemChange{Name: m, Change: "changed", Fields: f})
		}
	}
	for _, rt := range b.Routes {
		if m := route.Canonical(rt.Match); !ra[m] {
			r.Routes = append(r.Routes, ItemChange{Name: m, Change: "added", Fields: diffFields(nil, addedRouteFields(rt))})
		}
	}

	r.Settings = diffFields(flatten(*a, "origins", "routes"), flatten(*b, "origins", "routes"))
	return r
}

// routeFields lists what a route does: its target, fallback and switch in
// the words of `turnout status`, then every other setting by YAML path.
func routeFields(r config.Route) []field {
	target := ""
	switch {
	case r.Function != "":
		target = "function " + r.Function
	case r.Origin != "":
		target = "origin " + r.Origin
	}
	fs := []field{{"target", target}, {"fallback", r.Fallback}, {"off", strconv.FormatBool(r.Off)}}
	if r.NoBreaker {
		fs = append(fs, field{"circuit_breaker", "off"})
	}
	return append(fs, flatten(r, "match", "origin", "function", "fallback", "off")...)
}

// addedRouteFields is routeFields without the default "off: false".
func addedRouteFields(r config.Route) []field {
	var fs []field
	for _, f := range routeFields(r) {
		if f != (field{"off", "false"}) {
			fs = append(fs, f)
		}
	}
	return fs
}

// field is one flattened setting: its YAML path and formatted value.
type field struct{ path, value string }

// diffFields returns the fields whose values differ, in a's order followed
// by those only in b.
func diffFields(a, b []field) []FieldChange {
	bv := make(map[string]string, len(b))
	for _, f := range b {
		bv[f.path] = f.value
	}
	seen := make(map[string]bool, len(a))
	var out []FieldChange
	for _, f := range a {
		seen[f.path] = true
		if to := bv[f.path]; to != f.value {
			out = append(out, FieldChange{Field: f.path, From: f.value, To: to})
		}
	}
	for _, f := range b {
		if !seen[f.path] && f.value != "" {
			out = append(out, FieldChange{Field: f.path, To: f.value})
		}
	}
	return out
}

// flatten lists the non-zero settings of struct v by YAML path, skipping
// the top-level keys in skip. Slices of scalars are one value ("[a b]");
// slices of structs with a Name are keyed by it ("admin.tokens[ci].role").
func flatten(v any, skip ...string) []field {
	var out []field
	flattenValue(reflect.ValueOf(v), "", skip, &out)
	return out
}

var durationType = reflect.TypeFor[config.Duration]()

func flattenValue(v reflect.Value, prefix string, skip []string, out *[]field) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || contains(skip, name) {
			continue
		}
		path := prefix + name
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.Pointer:
			// Optional settings (queue_size, rate_limit, auto_rollback):
			// nil is unset; otherwise what it points to.
			if fv.IsNil() {
				continue
			}
			if e := fv.Elem(); e.Kind() == reflect.Struct && e.Type() != durationType {
				flattenValue(e, path+".", nil, out)
			} else {
				*out = append(*out, field{path, fmt.Sprint(e.Interface())})
			}
		case fv.Type() == durationType:
			if d := fv.Interface().(config.Duration); d != 0 {
				*out = append(*out, field{path, d.String()})
			}
		case fv.Kind() == reflect.Struct:
			flattenValue(fv, path+".", nil, out)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for j := 0; j < fv.Len(); j++ {
				el := fv.Index(j)
				key := strconv.Itoa(j)
				if n := el.FieldByName("Name"); n.IsValid() && n.Kind() == reflect.String {
					key = n.String()
				}
				flattenValue(el, path+"["+key+"].", []string{"name"}, out)
			}
		case fv.Kind() == reflect.Slice:
			if fv.Len() > 0 {
				parts := make([]string, fv.Len())
				for j := range parts {
					parts[j] = fmt.Sprint(fv.Index(j).Interface())
				}
				*out = append(*out, field{path, "[" + strings.Join(parts, " ") + "]"})
			}
		default:
			if !fv.IsZero() {
				*out = append(*out, field{path, fmt.Sprint(fv.Interface())})
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
