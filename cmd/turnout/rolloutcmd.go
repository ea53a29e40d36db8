package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/judge"
	"github.com/turnout/turnout/internal/rollout"
)

// cmdRollout shows the routes' progressive rollouts (`rollout status
// [ROUTE]`) or acts on one (`rollout start|pause|resume|promote|abort
// ROUTE`), each action a deployment as `route off` is.
func cmdRollout(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("rollout",
		"rollout status [ROUTE] [-o table|json]\n       turnout rollout start|pause|resume|promote|abort ROUTE [-m MESSAGE] [--wait [--wait-timeout D]]", stderr)
	cf.waitFlags(fs)
	msg := fs.String("m", "", "deployment `message` (the actions)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if cf.output == "table" { // as `traffic --output table` calls it
		cf.output = "text"
	}
	if len(pos) == 0 {
		return usageError(fs, "want status or an action (%s)", strings.Join(admin.RolloutActions, ", "))
	}
	// An unquoted "GET /user/{id}" arrives as two arguments.
	verb, match := pos[0], strings.Join(pos[1:], " ")
	if verb == "status" {
		if *msg != "" || cf.wait || cf.waitTimeout != 0 {
			return usageError(fs, "status takes no -m, --wait or --wait-timeout: they are for the actions")
		}
		return cf.rolloutStatus(stdout, stderr, match)
	}
	if !slices.Contains(admin.RolloutActions, verb) {
		return usageError(fs, "unknown rollout command %q: want status, %s", verb, strings.Join(admin.RolloutActions, ", "))
	}
	if match == "" {
		return usageError(fs, `want the route's match, e.g. turnout rollout %s "GET /user/{id}"`, verb)
	}
	return cf.deploy(stdout, stderr, func(ctx context.Context, c *admin.Client, wait time.Duration) (admin.Applied, error) {
		return c.Rollout(ctx, verb, match, *msg, wait)
	})
}

// rolloutStatus prints every rollout, or match's: one row per side, the
// rollout's position and its last verdict on the baseline's.
func (cf *clientFlags) rolloutStatus(stdout, stderr io.Writer, match string) error {
	var list []rollout.Status
	err := cf.call(stderr, func(ctx context.Context, c *admin.Client) (err error) {
		list, err = c.Rollouts(ctx, match)
		return err
	})
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return printJSON(stdout, admin.Rollouts{Rollouts: list})
	}
	if len(list) == 0 {
		if match != "" {
			return fmt.Errorf("route %q has no rollout: `turnout rollout status` lists the routes that have one, `turnout status` every route", match)
		}
		fmt.Fprintln(stdout, "no rollouts: no route has a rollout plan and a canary")
		return nil
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tSTATE\tSTEP\tWEIGHT\tIN STEP\tSIDE\tTARGET\tREQUESTS\tERROR RATE\tP50\tP99\tLAST VERDICT")
	for _, st := range list {
		var base, canary *judge.SideStats
		verdict := "none yet"
		if v := st.Verdict; v != nil {
			base, canary = &v.Baseline, &v.Canary
			verdict = v.Decision.String() + ": " + v.Reason
			if !st.Judged.IsZero() {
				verdict += " (" + st.Judged.Local().Format(time.TimeOnly) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s of %s\tbaseline\t%s\t%s\t%s\n", cell(st.Route), cell(st.State), st.Step, len(st.Steps),
			percent(st.Weight), span(st.InStep), span(st.StepFor), cell(st.Baseline), sideFigures(base), cell(verdict))
		fmt.Fprintf(tw, "\t\t\t\t\tcanary\t%s\t%s\t\n", cell(st.Canary), sideFigures(canary))
	}
	tw.Flush()
	// Why a gated rollout has not started (its shadow's evidence so far).
	for _, st := range list {
		if st.Waiting != "" {
			fmt.Fprintf(&b, "%s: %s\n", cell(st.Route), cell(st.Waiting))
		}
	}
	// The canary's row ends in the empty verdict cell: no trailing blanks.
	for line := range strings.Lines(b.String()) {
		if _, err := io.WriteString(stdout, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// sideFigures are a side's REQUESTS, ERROR RATE, P50 and P99 cells; dashes
// before the first verdict.
func sideFigures(s *judge.SideStats) string {
	if s == nil {
		return "-\t-\t-\t-"
	}
	return fmt.Sprintf("%d\t%.2f%%\t%s\t%s", s.Requests, 100*s.ErrorRate, millis(s.P50), millis(s.P99))
}

// percent writes a weight as the config does: 5%, 0.5%, 12.25%.
func percent(w float64) string { return strconv.FormatFloat(w, 'f', -1, 64) + "%" }

// millis writes a latency: "412 ms", "3.2 ms", "0.045 ms"; "-" for none.
func millis(d time.Duration) string {
	m := float64(d) / float64(time.Millisecond)
	switch {
	case d <= 0:
		return "-"
	case m >= 10:
		return fmt.Sprintf("%.0f ms", m)
	case m >= 1:
		return fmt.Sprintf("%.1f ms", m)
	}
	return fmt.Sprintf("%.2g ms", m)
}

// span writes a step's time to the second, units that are zero at the end
// left out: 1m03s, 5m, 1h30m, 45s; under a second as Go writes it (200ms).
func span(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0 && s > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case h > 0 && m > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case h > 0:
		return fmt.Sprintf("%dh", h)
	case m > 0 && s > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}
