package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/turnout/turnout/internal/awsimport"
)

// setFlags collects repeated --set NAME=VALUE.
type setFlags map[string]string

func (s setFlags) String() string { return "" }

func (s setFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	s[name] = value
	return nil
}

// listFlag collects a repeated flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// cmdImport reads a team's AWS setup into a turnout config (the wiring
// only; internal/awsimport reads, writes and compares).
func cmdImport(args []string, stdout, stderr io.Writer) error {
	const synopsis = "import cloudfront|apigateway|sam|serverless FILE [-o turnout.yaml] [--format auto|distribution-config|cloudformation] [--resource NAME] [--base-path /STAGE] [--functions hosted|aws] [--api rest|http] [--set NAME=VALUE]... [--use-defaults] [--accept-risk] [--check [METHOD ]URL]... [--requests FILE]"
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the config to `FILE` (default: stdout, unless --check or --requests)")
	format := fs.String("format", awsimport.FormatAuto, "source `format`: auto, distribution-config (the CloudFront API's JSON) or cloudformation")
	resource := fs.String("resource", "", "cloudfront: the distribution's logical `id` in a template with several")
	basePath := fs.String("base-path", "", "apigateway, sam: put `PATH` (a stage like /prod) in front of every route")
	functions := fs.String("functions", awsimport.FunctionsHosted, "sam, serverless: `where` functions run: hosted (sam: go1.x and provided runtimes from sam build's output; serverless: go1.x handler binaries; others on AWS) or aws")
	api := fs.String("api", "", "sam, serverless: import the events of the REST API (`rest`) or of the HTTP API (http) when the source has both")
	set := setFlags{}
	fs.Var(set, "set", "fill placeholder `NAME=VALUE` (repeatable)")
	useDefaults := fs.Bool("use-defaults", false, "fill placeholders that have a template default with it (the output lists them)")
	acceptRisk := fs.Bool("accept-risk", false, "write the config despite MUST-WARN findings (they are listed in it)")
	var checks listFlag
	fs.Var(&checks, "check", "show where `[METHOD ]URL` goes in the source and in the config (repeatable; method default GET)")
	requests := fs.String("requests", "", "like --check, for each line `FILE` holds: METHOD PATH (or PATH for GET)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: turnout %s\n\nReads a CloudFront distribution (get-distribution-config's JSON, with or\nwithout its ETag wrapper, create-distribution input, or the\nAWS::CloudFront::Distribution of a CloudFormation template in JSON or YAML)\nan API Gateway export (OpenAPI 3 or Swagger 2, REST or HTTP API) , a SAM\ntemplate's or a serverless.yml's functions and their HTTP events, and writes the turnout config closest to it, with every difference listed.\nSee docs/import.md.\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fs.Usage()
		return errUsage
	}
	switch pos[0] {
	case "cloudfront", "apigateway", "sam", "serverless":
	default:
		fmt.Fprintf(stderr, "turnout import: unknown source %q: use cloudfront, apigateway, sam or serverless\n", pos[0])
		return errUsage
	}
	reqs, err := checkRequests(checks, *requests)
	if err != nil {
		return err
	}
	file := pos[1]
	data, err := readLimited(file, awsimport.MaxSourceBytes)
	if err != nil {
		return err
	}
	values := awsimport.Values{Set: set, UseDefaults: *useDefaults}
	var res *awsimport.Result
	switch pos[0] {
	case "cloudfront":
		res, err = awsimport.ImportCloudFront(file, data, awsimport.Options{Format: *format, Resource: *resource, Values: values})
	case "apigateway":
		res, err = awsimport.ImportAPIGateway(file, data, awsimport.APIOptions{BasePath: *basePath, Values: values})
	case "sam":
		readBeside := func(name string) ([]byte, error) {
			return readLimited(filepath.Join(filepath.Dir(file), name), awsimport.MaxSourceBytes)
		}
		res, err = awsimport.ImportSAM(file, data, awsimport.SAMOptions{Functions: *functions, API: *api, BasePath: *basePath, Values: values, ReadFile: readBeside})
	case "serverless":
		res, err = awsimport.ImportServerless(file, data, awsimport.ServerlessOptions{Functions: *functions, API: *api, BasePath: *basePath, Values: values})
	}
	if err != nil {
		return err
	}
	s := res.Setup
	if len(s.Placeholders) > 0 {
		for _, p := range s.Placeholders {
			def := ""
			if p.HasDefault {
				def = fmt.Sprintf(" (template default %q: --use-defaults)", p.Default)
			}
			fmt.Fprintf(stderr, "%s: placeholder %s has no value%s\n", p.Loc, p.Name, def)
		}
		return fmt.Errorf("%d placeholder(s) without a value: give each with --set NAME=VALUE; nothing written", len(s.Placeholders))
	}
	for _, f := range s.Findings {
		fmt.Fprintln(stderr, f)
	}
	for _, p := range s.Defaults {
		fmt.Fprintf(stderr, "%s: placeholder %s = %q, the template's default (--use-defaults)\n", p.Loc, p.Name, p.Default)
	}
	if n := len(s.MustWarns()); n > 0 && !*acceptRisk {
		return fmt.Errorf("%d MUST-WARN finding(s) above would open or break access; nothing written: fix the source, or re-run with --accept-risk to write the config with them listed in it", n)
	}
	switch {
	case *out != "" && *out != "-":
		if err := writeFileAtomic(*out, res.Config); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s: %d origin(s), %d route(s); check it with turnout validate %s\n", *out, len(res.Parsed.Origins), len(res.Parsed.Routes), *out)
	case len(reqs) == 0 || *out == "-":
		if _, err := stdout.Write(res.Config); err != nil {
			return err
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	outcomes := awsimport.Check(s.Source, awsimport.Turnout{C: res.Parsed}, reqs)
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tPATH\tSOURCE\tTURNOUT\t")
	differ := 0
	for _, o := range outcomes {
		mark := ""
		if o.Differs() {
			mark = "DIFFERS"
			differ++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Method, o.Path, o.Source, o.Turnout, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if _, err := io.WriteString(stdout, strings.TrimRight(line, " \n")+strings.Repeat("\n", strings.Count(line, "\n"))); err != nil {
			return err
		}
	}
	if differ > 0 {
		return fmt.Errorf("%d of %d request(s) routed differently", differ, len(outcomes))
	}
	fmt.Fprintf(stdout, "all %d request(s) routed alike\n", len(outcomes))
	return nil
}

// checkRequests reads --check values and the --requests file.
func checkRequests(checks []string, file string) ([]awsimport.Request, error) {
	var reqs []awsimport.Request
	for _, c := range checks {
		r, err := parseRequest(c)
		if err != nil {
			return nil, fmt.Errorf("--check %q: %v", c, err)
		}
		reqs = append(reqs, r)
	}
	if file == "" {
		return reqs, nil
	}
	data, err := readLimited(file, 16<<20)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := parseRequest(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, n, err)
		}
		reqs = append(reqs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return reqs, nil
}

// parseRequest reads "[METHOD ]URL-or-path".
func parseRequest(s string) (awsimport.Request, error) {
	method, target := "GET", strings.TrimSpace(s)
	if m, rest, ok := strings.Cut(target, " "); ok {
		method, target = m, strings.TrimSpace(rest)
	}
	if method == "" || strings.ToUpper(method) != method {
		return awsimport.Request{}, fmt.Errorf("method %q: write it in capitals, like GET", method)
	}
	u, err := url.Parse(target)
	if err != nil {
		return awsimport.Request{}, err
	}
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return awsimport.Request{}, errors.New("want a path starting with / or an http(s) URL")
	}
	return awsimport.Request{Method: method, Path: p}, nil
}

// readLimited reads a file of at most max bytes.
func readLimited(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, max)
	}
	return data, nil
}

// writeFileAtomic writes data to name through a temporary file in the same
// directory, so an interrupted import leaves no half-written config.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
