package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/turnout/turnout/internal/config"
)

// apikeyStdin is what "turnout apikey hash" reads.
var apikeyStdin io.Reader = os.Stdin

const apikeyUsage = `usage:
  turnout apikey new NAME [--rps N [--burst N]]
        a new random key, shown once, and its line for api_keys:
  turnout apikey hash
        the SHA-256 of a key read from stdin (one line), for api_keys.NAME.sha256:
        to keep a key clients already hold, such as one exported from API Gateway
`

// cmdAPIKey makes and hashes API keys offline (docs/api-keys.md): the
// config holds only hashes, so the key is shown here once.
func cmdAPIKey(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, apikeyUsage)
		return errUsage
	}
	switch args[0] {
	case "new":
		return apikeyNew(args[1:], stdout, stderr)
	case "hash":
		return apikeyHash(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, apikeyUsage)
		return nil
	}
	fmt.Fprintf(stderr, "turnout apikey: unknown subcommand %q\n\n%s", args[0], apikeyUsage)
	return errUsage
}

func apikeyNew(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rps := fs.Float64("rps", 0, "the key's rate limit in requests per second (`N`); 0: none of its own")
	burst := fs.Int("burst", 0, "the key's burst (`N`); default rps rounded up")
	fs.Usage = func() { fmt.Fprint(stderr, apikeyUsage+"\nflags:\n"); fs.PrintDefaults() }
	// NAME may come before the flags, as the usage line writes it.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if name == "" {
		fs.Usage()
		return errUsage
	}
	var rl *config.RateLimit
	switch {
	case *rps < 0 || *burst < 0:
		return errors.New("--rps and --burst must not be negative")
	case *burst > 0 && *rps == 0:
		return errors.New("--burst needs --rps")
	case *rps > 0:
		rl = &config.RateLimit{RPS: *rps, Burst: *burst}
	}
	key, err := config.NewAPIKey()
	if err != nil {
		return err
	}
	line, err := config.APIKeyEntry(name, config.HashAPIKey(key), rl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, `API key %s, shown this once (turnout keeps only its hash): give it to the client now.

  %s

Add this line under api_keys: in the config, then apply it:

  %s
`, name, key, line)
	return err
}

func apikeyHash(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "turnout apikey hash takes no arguments: it reads the key from stdin, so that the key stays out of the shell's history and the process list\n\n%s", apikeyUsage)
		return errUsage
	}
	line, err := bufio.NewReader(io.LimitReader(apikeyStdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("reading the key from stdin: %w", err)
	}
	key := strings.TrimRight(line, "\r\n")
	if key == "" {
		return errors.New("no key on stdin: pipe one in, like: printf %s \"$KEY\" | turnout apikey hash")
	}
	if err := config.CheckAPIKey(key); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, config.HashAPIKey(key))
	return err
}
