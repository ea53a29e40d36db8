package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/turnout/turnout/internal/config"
)

// cmdValidate checks config files offline and prints every error.
func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: turnout validate FILE...") }
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	bad := 0
	for _, name := range fs.Args() {
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := config.Parse(name, data); err != nil {
			var list config.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					fmt.Fprintln(stdout, e.Error())
				}
				bad += len(list)
				continue
			}
			return err
		}
		fmt.Fprintf(stdout, "%s: ok\n", name)
	}
	if bad > 0 {
		return fmt.Errorf("%d error(s)", bad)
	}
	return nil
}

func cmdDefaultConfig(args []string, stdout, stderr io.Writer) error {
	_, err := stdout.Write(config.Default())
	return err
}
