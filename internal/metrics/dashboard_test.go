package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardPanel is the part of a Grafana panel the check reads.
type dashboardPanel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's panels
}

var (
	metricName = regexp.MustCompile(`turnout_[a-z_]+`)
	// selector matches one metric name and its label matchers.
	selector = regexp.MustCompile(`(turnout_[a-z_]+)\s*\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)`)
	grouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// TestGrafanaDashboard checks examples/grafana/turnout.json against the
// metrics this package defines: every metric an expression names exists
// (histograms through _bucket, _sum and _count), and every label it
// matches or groups by belongs to one of the expression's metrics.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../../examples/grafana/turnout.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		SchemaVersion int              `json:"schemaVersion"`
		Panels        []dashboardPanel `json:"panels"`
		Templating    struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Query      json.RawMessage `json:"query"`
				Definition string          `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("turnout.json: %v", err)
	}
	if d.SchemaVersion < 38 {
		t.Errorf("schemaVersion %d, want 38 or later", d.SchemaVersion)
	}
	labels := map[string][]string{}
	for _, f := range slices.Concat(Families(), EdgeFamilies(), NodeFamilies()) {
		labels[f.Name] = append(f.Labels, "le") // le: histograms' _bucket
	}
	family := func(name string) (string, bool) {
		if _, ok := labels[name]; ok {
			return name, true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				if _, ok := labels[base]; ok {
					return base, true
				}
			}
		}
		return "", false
	}
	checkExpr := func(where, expr string) {
		var known []string
		for _, name := range metricName.FindAllString(expr, -1) {
			base, ok := family(name)
			if !ok {
				t.Errorf("%s: %s names %s, which turnout does not expose", where, expr, name)
				continue
			}
			known = append(known, labels[base]...)
		}
		for _, m := range selector.FindAllStringSubmatch(expr, -1) {
			base, ok := family(m[1])
			if !ok {
				continue
			}
			for _, l := range matcher.FindAllStringSubmatch(m[2], -1) {
				if !slices.Contains(labels[base], l[1]) {
					t.Errorf("%s: %s has no label %q", where, m[1], l[1])
				}
			}
		}
		for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
			for _, l := range strings.Split(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && l != "instance" && !slices.Contains(known, l) {
					t.Errorf("%s: %s groups by %q, which none of its metrics has", where, expr, l)
				}
			}
		}
	}

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			checkExpr("variable "+v.Name, v.Definition)
			if !strings.Contains(string(v.Query), "label_values(turnout_") {
				t.Errorf("variable %s: query %s is not a label_values over a turnout metric", v.Name, v.Query)
			}
		}
	}
	if vars["datasource"] != "datasource" || vars["route"] != "query" {
		t.Errorf("template variables %v, want datasource (a datasource variable) and route (a query)", vars)
	}
	if !strings.Contains(string(data), `"query": "prometheus"`) {
		t.Errorf("the datasource variable does not select Prometheus data sources")
	}

	var walk func([]dashboardPanel)
	exprs := 0
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q uses data source %q, not the $datasource variable", p.Title, p.Datasource.UID)
			}
			for _, tg := range p.Targets {
				exprs++
				if !metricName.MatchString(tg.Expr) {
					t.Errorf("panel %q: %s names no turnout metric", p.Title, tg.Expr)
				}
				checkExpr("panel "+p.Title, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	if exprs < 15 {
		t.Errorf("only %d queries in the dashboard", exprs)
	}

	// Every family turnout exposes is on the dashboard somewhere.
	for _, f := range slices.Concat(Families(), EdgeFamilies(), NodeFamilies()) {
		if !strings.Contains(string(data), f.Name) {
			t.Errorf("no panel shows %s", f.Name)
		}
	}
}
