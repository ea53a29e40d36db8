package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/turnout/turnout/internal/fnhost"
)

// cmdLogs prints a hosted function's log lines from the node's ring buffer.
func cmdLogs(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("logs", "logs FUNCTION [--follow] [--request-id ID]", stderr)
	follow := fs.Bool("follow", false, "keep printing new lines until interrupted")
	fs.BoolVar(follow, "f", false, "shorthand for --follow")
	id := fs.String("request-id", "", "only the lines of invocation `ID` (the HTTP request's X-Request-Id)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(fs, "want exactly one function name")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !*follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, clientTimeout)
		defer cancel()
	}
	enc := json.NewEncoder(stdout)
	err = c.FunctionLogs(ctx, pos[0], *id, *follow, func(l fnhost.LogLine) {
		if cf.output == "json" {
			enc.Encode(l)
			return
		}
		rid := l.RequestID
		if rid == "" {
			rid = "-"
		}
		fmt.Fprintf(stdout, "%s %s %s %s\n", l.Time.Local().Format(time.RFC3339Nano), rid, l.Stream, l.Text)
	})
	if err != nil {
		return apiFailure(stderr, err)
	}
	return nil
}
