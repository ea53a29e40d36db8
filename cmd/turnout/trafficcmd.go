package main

import (
	"context"
	"fmt"
	"io"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/traffic"
)

// cmdTraffic prints a running gateway's traffic by path template: what to
// migrate next (--sort calls), what nobody calls (--unused-for), and the
// function-readiness risks of each template (--risky).
func cmdTraffic(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("traffic",
		"traffic [--sort calls|errors|p99|last_seen|template] [--limit N] [--unused-for DURATION] [--risky] [--output table|json|csv]", stderr)
	sort := fs.String("sort", traffic.SortCalls, "row `order`: calls, errors, p99, last_seen or template")
	limit := fs.Int("limit", 50, "show the first `N` rows (0: all)")
	unusedFor := fs.Duration("unused-for", 0, "only templates not seen for `DURATION` (e.g. 24h, 720h): unused endpoints")
	risky := fs.Bool("risky", false, "only templates with a function-readiness risk")
	output := fs.String("output", "", "output `format`: table, json or csv (default: table, or json with -o json)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	out := *output
	if out == "" {
		out = map[string]string{"text": "table", "json": "json"}[cf.output]
		if out == "" {
			out = cf.output
		}
	}
	write := map[string]func(io.Writer, traffic.Report) error{
		"table": traffic.WriteTable, "json": traffic.WriteJSON, "csv": traffic.WriteCSV,
	}[out]
	if write == nil {
		return fmt.Errorf("--output %q: use table, json or csv", out)
	}
	q := traffic.Query{Sort: *sort, Limit: *limit, UnusedFor: *unusedFor, Risky: *risky}
	if err := q.Validate(); err != nil {
		return err
	}
	cf.output = "text" // the format is --output's; -o only chose its default
	var rep traffic.Report
	err := cf.call(stderr, func(ctx context.Context, c *admin.Client) (err error) {
		rep, err = c.Traffic(ctx, q)
		return err
	})
	if err != nil {
		return err
	}
	return write(stdout, rep)
}
