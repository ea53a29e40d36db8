package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/authz"
	"github.com/turnout/turnout/internal/deploy"
)

// The client verbs (apply, rollback, history, diff, status, route) are thin
// clients of the admin API: they parse flags, call admin.Client, and print.

const (
	defaultAdminURL  = "http://127.0.0.1:8081"
	defaultTokenFile = "turnout.db.token"
	clientTimeout    = 60 * time.Second
)

// clientFlags are the flags every client verb takes.
type clientFlags struct {
	admin, token, tokenFile, output string
	// wait and waitTimeout are --wait and --wait-timeout, of the verbs
	// that make a deployment (see waitFlags).
	wait        bool
	waitTimeout time.Duration
}

// waitFlags adds --wait and --wait-timeout to a verb that makes a deployment.
func (cf *clientFlags) waitFlags(fs *flag.FlagSet) {
	fs.BoolVar(&cf.wait, "wait", false, "wait until every live node of the fleet serves the deployment; print each node's propagation; exit 1 naming the nodes that did not ack")
	fs.DurationVar(&cf.waitTimeout, "wait-timeout", 0, "how long --wait waits, at most 10m (default 30s; implies --wait)")
}

// waitFor is how long the server is asked to wait for the nodes' acks: 0
// without --wait.
func (cf *clientFlags) waitFor() (time.Duration, error) {
	switch {
	case cf.waitTimeout < 0 || cf.waitTimeout > admin.MaxWaitTimeout:
		return 0, fmt.Errorf("--wait-timeout %v: want a duration above 0 and at most %v", cf.waitTimeout, admin.MaxWaitTimeout)
	case cf.waitTimeout > 0:
		return cf.waitTimeout, nil
	case cf.wait:
		return admin.DefaultWaitTimeout, nil
	}
	return 0, nil
}

func newClientFlagSet(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *clientFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &clientFlags{}
	adminURL := os.Getenv("TURNOUT_ADMIN")
	if adminURL == "" {
		adminURL = defaultAdminURL
	}
	fs.StringVar(&cf.admin, "admin", adminURL, "admin API `URL` (env TURNOUT_ADMIN)")
	fs.StringVar(&cf.token, "token", os.Getenv("TURNOUT_TOKEN"), "bearer `token` (env TURNOUT_TOKEN; default: read --token-file)")
	fs.StringVar(&cf.tokenFile, "token-file", defaultTokenFile, "`file` holding the token turnout generated next to its store")
	fs.StringVar(&cf.output, "o", "text", "output `format`: text or json")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: turnout %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, cf
}

// parseNoArgs parses the flags of a verb that takes no arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err == nil && len(pos) > 0 {
		err = usageError(fs, "unexpected argument %q", pos[0])
	}
	return err
}

// parseArgs parses flags that may come before, between or after the
// positional arguments, which it returns. "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (cf *clientFlags) client() (*admin.Client, error) {
	if cf.output != "text" && cf.output != "json" {
		return nil, fmt.Errorf("-o %q: use text or json", cf.output)
	}
	tok := cf.token
	if tok == "" {
		b, err := os.ReadFile(cf.tokenFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("no admin token: pass --token, set TURNOUT_TOKEN, or run where the token file %s is (it is generated next to the store on first start)", cf.tokenFile)
		case err != nil:
			return nil, fmt.Errorf("read token file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	return &admin.Client{BaseURL: cf.admin, Token: tok, HTTP: &http.Client{Timeout: clientTimeout}}, nil
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// call runs fn with the admin API client, all its requests bounded by one
// clientTimeout; an error fn returns is reported as apiFailure does.
func (cf *clientFlags) call(stderr io.Writer, fn func(context.Context, *admin.Client) error) error {
	return cf.callFor(stderr, 0, fn)
}

// callFor is call with extra time on top of clientTimeout, for a wait
// that long on the server.
func (cf *clientFlags) callFor(stderr io.Writer, extra time.Duration, fn func(context.Context, *admin.Client) error) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout+extra)
	defer cancel()
	if c.HTTP != nil {
		c.HTTP.Timeout += extra
	}
	if err := fn(ctx, c); err != nil {
		return apiFailure(stderr, err)
	}
	return nil
}

// deploy runs one call that creates a deployment, waiting for the fleet's
// acks with --wait, and prints the result: the shared tail of apply,
// rollback and route off|on.
func (cf *clientFlags) deploy(stdout, stderr io.Writer, create func(context.Context, *admin.Client, time.Duration) (admin.Applied, error)) error {
	wait, err := cf.waitFor()
	if err != nil {
		return err
	}
	var res admin.Applied
	var unchanged, unacked error
	err = cf.callFor(stderr, wait, func(ctx context.Context, c *admin.Client) (err error) {
		res, err = create(ctx, c, wait)
		var ae *admin.APIError
		switch {
		case errors.Is(err, deploy.ErrUnchanged):
			unchanged, err = err, nil
		case errors.As(err, &ae) && ae.Propagation != nil && ae.Deployment != nil:
			// Stored and active, but not served by every node: show
			// where each stands, then fail.
			res = admin.Applied{Deployment: *ae.Deployment, Propagation: ae.Propagation}
			unacked, err = errors.New(ae.Message), nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if cf.output == "json" {
		if unchanged != nil {
			res.Unchanged, res.Detail = true, unchanged.Error()
		}
		if err := printJSON(stdout, res); err != nil {
			return err
		}
		return unacked
	}
	if unchanged != nil {
		// Not a failure: the config is what the active deployment serves.
		fmt.Fprintln(stdout, unchanged)
	} else if err := printDeployment(stdout, cf.output, res.Deployment); err != nil {
		return err
	}
	if res.Propagation != nil {
		printPropagation(stdout, *res.Propagation)
	}
	return unacked
}

// apiFailure prints an invalid config's problems, one "file:line:col: msg"
// per line, and returns the error for main to report.
func apiFailure(stderr io.Writer, err error) error {
	var ae *admin.APIError
	if !errors.As(err, &ae) {
		return err
	}
	for _, f := range ae.Errors {
		fmt.Fprintln(stderr, f)
	}
	return errors.New(ae.Message)
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// cell keeps table cells on one line.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\n", " ", "\t", " ", "\r", " ").Replace(s)
}

// printDeployment reports the deployment an operation created.
func printDeployment(w io.Writer, output string, d deploy.Deployment) error {
	if output == "json" {
		return printJSON(w, d)
	}
	fmt.Fprintf(w, "deployment %d is active: %s (by %s at %s)\n", d.ID, d.Cause, d.Author, localTime(d.Time))
	if d.Message != "" {
		fmt.Fprintf(w, "  %s\n", d.Message)
	}
	return nil
}

func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "turnout %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

// cmdApply validates FILE on the gateway and activates it as a new deployment.
func cmdApply(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("apply", "apply -f FILE [-m MESSAGE] [--wait [--wait-timeout D]]", stderr)
	cf.waitFlags(fs)
	file := fs.String("f", "", "config `file` to apply (- for stdin)")
	msg := fs.String("m", "", "deployment `message`")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usageError(fs, "-f FILE is required")
	}
	var data []byte
	var err error
	name := *file
	if *file == "-" {
		data, err = io.ReadAll(os.Stdin)
		name = "stdin"
	} else {
		data, err = os.ReadFile(*file)
	}
	if err != nil {
		return err
	}
	return cf.deploy(stdout, stderr, func(ctx context.Context, c *admin.Client, wait time.Duration) (admin.Applied, error) {
		return c.ApplyWait(ctx, admin.ApplyRequest{Config: string(data), File: name, Message: *msg}, wait)
	})
}

// cmdRollback re-activates the previous deployment, or deployment --to N.
func cmdRollback(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("rollback", "rollback [--to N] [-m MESSAGE] [--wait [--wait-timeout D]]", stderr)
	cf.waitFlags(fs)
	to := fs.Uint64("to", 0, "deployment `id` to restore (default: the one before the active one)")
	msg := fs.String("m", "", "deployment `message`")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError(fs, "unexpected argument %q (use --to N)", pos[0])
	}
	return cf.deploy(stdout, stderr, func(ctx context.Context, c *admin.Client, wait time.Duration) (admin.Applied, error) {
		return c.RollbackWait(ctx, *to, *msg, wait)
	})
}

// cmdRoute switches one route off (to its fallback or the legacy origin) or
// back on.
func cmdRoute(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("route", "route off|on MATCH [-m MESSAGE] [--wait [--wait-timeout D] | --local]", stderr)
	cf.waitFlags(fs)
	msg := fs.String("m", "", "deployment `message`")
	local := fs.Bool("local", false, "on this node only, without the store (admin token): see routeLocal")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || (pos[0] != "off" && pos[0] != "on") {
		return usageError(fs, `want off or on and the route's match, e.g. turnout route off "GET /user/{id}"`)
	}
	// An unquoted "GET /user/{id}" arrives as two arguments.
	match := strings.Join(pos[1:], " ")
	if *local {
		return cf.routeLocal(stdout, stderr, match, pos[0] == "off", *msg)
	}
	return cf.deploy(stdout, stderr, func(ctx context.Context, c *admin.Client, wait time.Duration) (admin.Applied, error) {
		if pos[0] == "off" {
			return c.RouteOffWait(ctx, match, *msg, wait)
		}
		return c.RouteOnWait(ctx, match, *msg, wait)
	})
}

// cmdHistory lists deployments, newest first, then the audit trail.
func cmdHistory(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("history", "history [--limit N] [--before ID] [--no-audit]", stderr)
	limit := fs.Int("limit", 20, "how many deployments (and audit events) to show")
	before := fs.Uint64("before", 0, "show deployments with ids below `ID`")
	noAudit := fs.Bool("no-audit", false, "do not show the audit trail")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var (
		list     []admin.DeploymentSummary
		activeID uint64
		events   []deploy.AuditEvent
		auditErr error
	)
	err := cf.call(stderr, func(ctx context.Context, c *admin.Client) (err error) {
		if list, err = c.Deployments(ctx, *before, *limit); err != nil {
			return err
		}
		if len(list) > 0 {
			act, err := c.ActiveDeployment(ctx)
			if err != nil {
				return err
			}
			activeID = act.ID
		}
		if *noAudit {
			return nil
		}
		events, err = c.Audit(ctx, *limit)
		var ae *admin.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			auditErr, err = err, nil // the trail needs an admin token; show the rest
		}
		return err
	})
	if err != nil {
		return err
	}

	if cf.output == "json" {
		out := struct {
			Active      uint64                    `json:"active"`
			Deployments []admin.DeploymentSummary `json:"deployments"`
			Audit       []deploy.AuditEvent       `json:"audit,omitempty"`
		}{activeID, list, events}
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tTIME\tAUTHOR\tCAUSE\tMESSAGE")
	for _, d := range list {
		mark := " "
		if d.ID == activeID {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s %d\t%s\t%s\t%s\t%s\n", mark, d.ID, localTime(d.Time), cell(d.Author), cell(d.Cause), cell(d.Message))
	}
	tw.Flush()
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no deployments")
	}
	if *noAudit {
		return nil
	}
	fmt.Fprintln(stdout, "\naudit trail:")
	if auditErr != nil {
		fmt.Fprintf(stdout, "  not shown: %v\n", auditErr)
		return nil
	}
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SEQ\tTIME\tACTOR\tACTION\tRESULT\tDEPLOYMENT\tREMOTE\tDETAIL")
	for _, e := range events {
		dep := "-"
		if e.Deployment != 0 {
			dep = strconv.FormatUint(e.Deployment, 10)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, localTime(e.Time), cell(e.Actor), cell(e.Action), cell(e.Result), dep, cell(e.Remote), cell(e.Detail))
	}
	return tw.Flush()
}

// cmdDiff shows what changed between deployments A and B (default: the
// active one and the one before it; with one id, that id and the active one).
func cmdDiff(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("diff", "diff [A [B]]", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 2 {
		return usageError(fs, "want at most two deployment ids")
	}
	var ids [2]uint64
	for i, p := range pos {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n == 0 {
			return usageError(fs, "%q is not a deployment id", p)
		}
		ids[i] = n
	}
	var r deploy.DiffResult
	err = cf.call(stderr, func(ctx context.Context, c *admin.Client) (err error) {
		if len(pos) == 1 {
			act, err := c.ActiveDeployment(ctx)
			if err != nil {
				return err
			}
			ids[1] = act.ID
		}
		r, err = c.Diff(ctx, ids[0], ids[1])
		return err
	})
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return printJSON(stdout, r)
	}
	_, err = io.WriteString(stdout, r.Text())
	return err
}

// cmdStatus shows the active deployment, the fleet's nodes when there is
// more than one or one refused a deployment, the routes and origin health.
// printAuthorizers prints the authorizers table of `turnout status`.
func printAuthorizers(w io.Writer, as []authz.Status) error {
	if len(as) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AUTHORIZER\tKIND\tISSUER / FUNCTION\tKEYS / CACHED\tROUTES\tLAST ERROR")
	for _, a := range as {
		src, held := a.Issuer, strconv.Itoa(len(a.Keys))
		if a.Kind == "jwt" && !a.KeysFetched.IsZero() {
			held += " (fetched " + localTime(a.KeysFetched) + ")"
		}
		if a.Kind == "lambda" {
			src, held = "function:"+a.Function, strconv.Itoa(a.Cached)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Kind, cell(src), held, cell(strings.Join(a.Routes, ", ")), cell(a.LastError))
	}
	return tw.Flush()
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("status", "status", stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var (
		st       admin.Status
		fleet    admin.Fleet
		fleetErr error
	)
	err := cf.call(stderr, func(ctx context.Context, c *admin.Client) (err error) {
		if st, err = c.Status(ctx); err != nil || cf.output == "json" {
			return err
		}
		// The fleet is extra: status still shows the node when it
		// cannot be listed (a store that is down answers 503).
		fleet, fleetErr = c.Nodes(ctx)
		return nil
	})
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return printJSON(stdout, st)
	}
	a := st.Active
	fmt.Fprintf(stdout, "active deployment %d: %s (by %s at %s)\n", a.ID, a.Cause, a.Author, localTime(a.Time))
	if a.Message != "" {
		fmt.Fprintf(stdout, "  %s\n", a.Message)
	}
	if st.Store == "disconnected" {
		fmt.Fprintf(stdout, "STORE DISCONNECTED: this node serves deployment %d from memory; applies, rollbacks and route switches fail until the store is back (route off --local still works)\n", a.ID)
	}
	switch {
	case fleetErr != nil:
		fmt.Fprintf(stdout, "\nnodes: not listed: %v\n", fleetErr)
	case fleetWorthShowing(fleet):
		fmt.Fprintln(stdout)
		printFleet(stdout, fleet)
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tSTAGE\tTARGET\tFALLBACK\tSTATE\tBREAKER")
	for _, r := range st.Routes {
		state := "on"
		if r.Off {
			state = "OFF"
		}
		if r.Local {
			state = "OFF (local)"
		}
		targets := r.Targets()
		if r.Canary != "" {
			targets += "; canary → " + r.Canary + " " + strconv.FormatFloat(r.CanaryWeight, 'f', -1, 64) + "%"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(r.Match), cell(r.Stage), cell(targets), cell(r.Fallback), state, cell(r.Breaker))
	}
	tw.Flush()
	printLocalSwitches(stdout, st.LocalSwitches)
	if len(st.Origins) == 0 {
		return nil
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORIGIN\tINSTANCE\tHEALTH\tFAILURES\tLAST ERROR")
	for _, o := range st.Origins {
		for _, in := range o.Instances {
			health := "healthy"
			switch {
			case in.Ejected:
				health = "ejected"
			case !in.Healthy:
				health = "unhealthy"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", o.Name, cell(in.URL), health, in.ConsecutiveFailures, cell(in.LastError))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printAuthorizers(stdout, st.Authorizers); err != nil || len(st.Functions) == 0 {
		return err
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION	INSTANCES	IN USE	QUEUED	INVOCATIONS	ERRORS	TIMEOUTS	THROTTLES	COLD STARTS	ISOLATION")
	for _, f := range st.Functions {
		fmt.Fprintf(tw, "%s\t%d (%d busy)\t%d/%d\t%d/%d\t%d\t%d\t%d\t%d\t%d\t%s\n", f.Function, f.Instances, f.Busy, f.InUse, f.Concurrency,
			f.Queued, f.QueueSize, f.Invocations, f.Errors, f.Timeouts, f.Throttles, f.ColdStarts, cell(string(f.Isolation)))
	}
	return tw.Flush()
}
