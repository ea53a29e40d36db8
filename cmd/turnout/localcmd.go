package main

import (
	"context"
	"fmt"
	"io"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/deploy"
)

// routeLocal is `turnout route off|on MATCH --local`: the route switched off
// on the node --admin points at only, or that switch cleared, without the
// store — the emergency switch for when the store refuses deployments
// (docs/operations.md, "Switching a route off without the store").
func (cf *clientFlags) routeLocal(stdout, stderr io.Writer, match string, off bool, message string) error {
	var a admin.LocalSwitchAnswer
	err := cf.call(stderr, func(ctx context.Context, c *admin.Client) (err error) {
		a, err = c.RouteLocal(ctx, match, off, message)
		return err
	})
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return printJSON(stdout, a)
	}
	fmt.Fprintln(stdout, a.Detail)
	return nil
}

// printLocalSwitches tells, under the routes of `turnout status`, which
// routes this node serves off on its own authority.
func printLocalSwitches(w io.Writer, switches []deploy.LocalSwitch) {
	if len(switches) == 0 {
		return
	}
	fmt.Fprintf(w, "\nLOCAL SWITCHES: %d route(s) off on this node only, whatever the deployment says (turnout route on MATCH --local clears one):\n", len(switches))
	for _, s := range switches {
		line := fmt.Sprintf("  %s  by %s at %s", s.Match, cell(s.Actor), localTime(s.Time))
		if s.Message != "" {
			line += ": " + cell(s.Message)
		}
		fmt.Fprintln(w, line)
	}
}
