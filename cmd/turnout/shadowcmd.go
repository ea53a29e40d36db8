package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/route"
	"github.com/turnout/turnout/internal/shadow"
)

// Bounds of `turnout shadow`'s text: what a terminal shows of a report.
const (
	shadowTopPaths   = 10 // differing paths listed per route
	shadowTopNoise   = 10 // learned noise paths listed per route
	shadowExamples   = 3  // examples shown side by side, with a ROUTE
	shadowColumn     = 48 // width of each answer's column
	shadowBodyLines  = 20 // lines of a body shown
	shadowDiffsShown = 8  // differences listed per example
)

// cmdShadow prints the shadowed routes' reports (`shadow [ROUTE] [--since
// D] [-o text|json]`): each route's counts and match rate, where its
// shadow differs and what is noise, and with a ROUTE the latest examples,
// both answers side by side.
func cmdShadow(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("shadow", "shadow [ROUTE] [--since D] [-o text|json]", stderr)
	since := fs.Duration("since", admin.DefaultShadowSince, "the span `counted`, up to now: at most 24h")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *since <= 0 || *since > admin.MaxShadowSince {
		return usageError(fs, "--since %s: want a duration above 0 and at most 24h, e.g. 15m or 1h", *since)
	}
	// An unquoted "GET /user/{id}" arrives as two arguments.
	match := strings.Join(pos, " ")
	var list []shadow.Summary
	var hasShadow, known bool
	err = cf.call(stderr, func(ctx context.Context, c *admin.Client) (err error) {
		if list, err = c.Shadow(ctx, match, *since); err != nil || match == "" || len(list) > 0 {
			return err
		}
		hasShadow, known = routeHasShadow(ctx, c, match)
		return nil
	})
	if err != nil {
		return err
	}
	if match != "" && len(list) == 0 {
		switch {
		case !known:
			return fmt.Errorf("route %q has no shadow report on this node: it has no shadow, or none of its requests was mirrored yet; `turnout shadow` lists the routes that have one", match)
		case !hasShadow:
			return fmt.Errorf("route %q has no shadow: add `shadow: {to: FUNCTION-or-ORIGIN}` to it (docs/shadow.md); `turnout shadow` lists the routes that have one", match)
		}
	}
	if cf.output == "json" {
		return printJSON(stdout, admin.Shadows{Routes: list})
	}
	var b strings.Builder
	if len(list) == 0 {
		if match != "" {
			fmt.Fprintf(&b, "%s: none of its requests was mirrored on this node yet\n", match)
		} else {
			fmt.Fprintln(&b, "no shadow reports: no route with a shadow has had a request mirrored on this node")
		}
	}
	for i, s := range list {
		if i > 0 {
			b.WriteString("\n")
		}
		writeShadowSummary(&b, s, *since, match != "")
	}
	// Tables end in padded cells: no trailing blanks.
	for line := range strings.Lines(b.String()) {
		if _, err := io.WriteString(stdout, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// routeHasShadow reads the active deployment's config for whether route
// match has a shadow; known is false when that cannot be told (no such
// route, a config that no longer parses here).
func routeHasShadow(ctx context.Context, c *admin.Client, match string) (has, known bool) {
	d, err := c.ActiveDeployment(ctx)
	if err != nil {
		return false, false
	}
	cfg, err := config.Parse("active deployment", []byte(d.Config))
	if err != nil {
		return false, false
	}
	want := route.Canonical(match)
	for _, r := range cfg.Routes {
		if route.Canonical(r.Match) == want {
			return r.Shadow != nil, true
		}
	}
	return false, false
}

// writeShadowSummary writes one route's report; examples when asked.
func writeShadowSummary(b *strings.Builder, s shadow.Summary, since time.Duration, examples bool) {
	fmt.Fprintf(b, "%s → shadow %s (since %s, last %s)\n", s.Route, s.Target, s.Since.Local().Format(time.TimeOnly), span(since))
	row := func(label string, n int64, note string) { fmt.Fprintf(b, "  %-14s %8d  %s\n", label, n, note) }
	row("compared", s.Compared, "both sides answered")
	row("identical", s.Match, "match")
	row("noise only", s.NoiseOnly, "differ only where the primary differs from itself")
	row("different", s.Diff, "diff")
	row("shadow errors", s.ShadowError, "the shadow gave no answer")
	row("dropped", s.Dropped, "not sent: the route's shadow queue was full")
	rate := "-"
	if s.Compared > 0 {
		rate = strconv.FormatFloat(s.MatchRate, 'f', 2, 64) + "%"
	}
	fmt.Fprintf(b, "  %-14s %8s  (identical + noise only) / compared\n", "match rate", rate)

	if len(s.Paths) > 0 {
		fmt.Fprintf(b, "\n  where the shadow differs (since the shadow started, most often first):\n")
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    COUNT\tKIND\tPATH\tEXAMPLE REQUESTS")
		for _, p := range s.Paths[:min(len(s.Paths), shadowTopPaths)] {
			fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\n", p.Count, cell(p.Kind), cell(p.Path), cell(strings.Join(p.Examples, " ")))
		}
		tw.Flush()
		if n := len(s.Paths) - shadowTopPaths; n > 0 {
			fmt.Fprintf(b, "    … and %d more paths (-o json lists them all)\n", n)
		}
	}
	if len(s.Noise) > 0 {
		fmt.Fprintf(b, "\n  learned noise (the primary differs from itself here; turn these into ignore: rules):\n")
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    COUNT\tPATH")
		for _, p := range s.Noise[:min(len(s.Noise), shadowTopNoise)] {
			fmt.Fprintf(tw, "    %d\t%s\n", p.Count, cell(p.Path))
		}
		tw.Flush()
		if n := len(s.Noise) - shadowTopNoise; n > 0 {
			fmt.Fprintf(b, "    … and %d more paths (-o json lists them all)\n", n)
		}
	}
	if !examples {
		return
	}
	if len(s.Examples) == 0 {
		fmt.Fprintf(b, "\n  no examples kept yet\n")
		return
	}
	for _, e := range s.Examples[:min(len(s.Examples), shadowExamples)] {
		writeShadowExample(b, e)
	}
	if n := len(s.Examples) - shadowExamples; n > 0 {
		fmt.Fprintf(b, "\n  … and %d more examples (-o json shows them all)\n", n)
	}
}

// writeShadowExample writes one example: the request, its differences,
// then both answers side by side, headers and bodies cut to the column.
func writeShadowExample(b *strings.Builder, e shadow.Example) {
	target := e.Path
	if e.Query != "" {
		target += "?" + e.Query
	}
	fmt.Fprintf(b, "\n  example %s: %s %s  %s  %s\n", cell(e.RequestID), cell(e.Method), cell(target), e.Result, e.Time.Local().Format(time.TimeOnly))
	for _, d := range e.Differences[:min(len(e.Differences), shadowDiffsShown)] {
		fmt.Fprintf(b, "    %s %s: %s → %s\n", d.Kind, cell(d.Path), clipped(orDash(d.A), shadowColumn), clipped(orDash(d.B), shadowColumn))
	}
	if n := len(e.Differences) - shadowDiffsShown; n > 0 {
		fmt.Fprintf(b, "    … and %d more differences\n", n)
	}
	if len(e.Noise) > 0 {
		fmt.Fprintf(b, "    noise: %s\n", cell(strings.Join(e.Noise, " ")))
	}
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	line := func(label, a, s string) {
		fmt.Fprintln(tw, "    "+label+"\t"+clipped(a, shadowColumn)+"\t"+clipped(s, shadowColumn))
	}
	line("", "PRIMARY", "SHADOW")
	p, s := e.Primary, e.Shadow
	var sl []string
	if s == nil { // no answer: the error in its column, nothing under it
		line("status", strconv.Itoa(p.Status), "error: "+cell(e.Error))
		s = &shadow.AnswerView{}
	} else {
		line("status", strconv.Itoa(p.Status), strconv.Itoa(s.Status))
		sl = bodyLines(*s)
	}
	for _, name := range headerNames(p.Header, s.Header) {
		line(name, orDash(p.Header[name]), orDash(s.Header[name]))
	}
	pl := bodyLines(p)
	for i := range max(len(pl), len(sl)) {
		label := ""
		if i == 0 {
			label = "body"
		}
		line(label, at(pl, i), at(sl, i))
	}
	tw.Flush()
}

// headerNames are both answers' header names, sorted, each once.
func headerNames(a, b map[string]string) []string {
	seen := map[string]bool{}
	var names []string
	for _, h := range []map[string]string{a, b} {
		for k := range h {
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	return names
}

// bodyLines are a body's first lines for the terminal, the last one saying
// what was left out.
func bodyLines(a shadow.AnswerView) []string {
	if a.Body == "" {
		return []string{"(empty)"}
	}
	body := a.Body
	// JSON one line per member, so that the columns show the values.
	var ind bytes.Buffer
	if !a.Truncated && json.Indent(&ind, []byte(body), "", "  ") == nil {
		body = ind.String()
	}
	var out []string
	for l := range strings.Lines(body) {
		if len(out) == shadowBodyLines {
			out = append(out, "…")
			return out
		}
		out = append(out, l)
	}
	if a.Truncated {
		out = append(out, "… (truncated)")
	}
	return out
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clipped keeps s on one line of at most n runes, control characters
// shown as spaces: an answer's text must not move the terminal around.
func clipped(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, strings.TrimRight(s, "\r\n"))
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
