package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/deploy"
)

// cmdNodes lists the live nodes of the fleet and what each serves.
func cmdNodes(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("nodes", "nodes", stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var f admin.Fleet
	err := cf.call(stderr, func(ctx context.Context, c *admin.Client) (err error) {
		f, err = c.Nodes(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return printJSON(stdout, f)
	}
	printFleet(stdout, f)
	return nil
}

// printFleet writes one line per live node, then one loud line per node
// that refused a deployment.
func printFleet(w io.Writer, f admin.Fleet) {
	if len(f.Nodes) == 0 {
		fmt.Fprintf(w, "no live nodes: a node is listed once it has applied a deployment (the fleet's active deployment is %d)\n", f.Active)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tDEPLOYMENT\tLAG\tAPPLIED\tVERSION")
	for _, n := range f.Nodes {
		dep := strconv.FormatUint(n.Deployment, 10)
		if n.Refused != 0 {
			dep += " (REFUSED " + strconv.FormatUint(n.Refused, 10) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", cell(n.Name), cell(n.AdminURL), dep, n.Lag, localTime(n.AppliedAt), cell(n.Version))
	}
	tw.Flush()
	for _, n := range f.Nodes {
		if n.Refused != 0 {
			fmt.Fprintf(w, "NACK: node %s refused deployment %d and still serves %d: %s\n", n.Name, n.Refused, n.Deployment, cell(n.Error))
		}
		if len(n.LocalSwitches) > 0 {
			fmt.Fprintf(w, "LOCAL: node %s has switched off on its own (route off --local): %s\n", n.Name, strings.Join(n.LocalSwitches, ", "))
		}
	}
}

// fleetWorthShowing reports whether status shows the fleet: when there is
// more than one node, or one refused a deployment.
func fleetWorthShowing(f admin.Fleet) bool {
	if len(f.Nodes) > 1 {
		return true
	}
	for _, n := range f.Nodes {
		if n.Refused != 0 || len(n.LocalSwitches) > 0 {
			return true
		}
	}
	return false
}

// printPropagation writes where each live node stands with the deployment
// a --wait waited for.
func printPropagation(w io.Writer, p deploy.Propagation) {
	if len(p.Nodes) == 0 {
		fmt.Fprintf(w, "no live nodes listed by the store: nothing to wait for\n")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tSERVES\tPROPAGATION")
	for _, a := range p.Nodes {
		state, took := a.State, "-"
		if a.State == deploy.AckRefused {
			state = "REFUSED"
		}
		switch {
		case a.PropagationMS != nil:
			took = strconv.FormatFloat(*a.PropagationMS, 'f', 1, 64) + " ms"
		case a.State == deploy.AckDone:
			took = "(serves a later deployment)"
		case a.State == deploy.AckRefused:
			took = cell(a.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", cell(a.Name), state, a.Deployment, took)
	}
	tw.Flush()
	if p.Settled() && len(p.Refused) == 0 {
		fmt.Fprintf(w, "every live node (%d) acked deployment %d\n", len(p.Nodes), p.Deployment)
	}
}
