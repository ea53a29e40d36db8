package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/store/bolt"
	"github.com/turnout/turnout/internal/store/etcd"
)

// cmdStore runs the offline store verbs: store copy.
func cmdStore(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "copy" {
		fmt.Fprintln(stderr, "usage: turnout store copy --from LOCATION --to LOCATION (see turnout store copy -h)")
		return errUsage
	}
	return cmdStoreCopy(args[1:], stdout, stderr)
}

// storeEnvPassword holds the etcd password of store copy's --etcd-user,
// kept off the command line (and out of ps).
const storeEnvPassword = "TURNOUT_ETCD_PASSWORD"

// cmdStoreCopy copies a store's whole history into an empty store:
// deployments with their ids, the audit trail with its seqs and times, and
// the active pointer. The wiring only; deploy.Copy does the copy.
func cmdStoreCopy(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("store copy", flag.ContinueOnError)
	fl.SetOutput(stderr)
	from := fl.String("from", "", "the `location` to copy from: bolt:PATH or etcd:URL[,URL...]")
	to := fl.String("to", "", "the empty `location` to copy into: bolt:PATH or etcd:URL[,URL...]")
	var e config.Etcd
	fl.StringVar(&e.Prefix, "prefix", etcd.DefaultPrefix, "the etcd key `prefix` of the fleet (store.etcd.prefix), on either side")
	timeout := fl.Duration("etcd-timeout", etcd.DefaultTimeout, "how long to wait for etcd to answer each request")
	tlsFiles := config.EtcdTLS{}
	fl.StringVar(&tlsFiles.CA, "etcd-ca", "", "PEM `file` of the CA that signed etcd's certificate (https endpoints; default: the system's roots)")
	fl.StringVar(&tlsFiles.Cert, "etcd-cert", "", "PEM client certificate `file` for etcd's --client-cert-auth (with --etcd-key)")
	fl.StringVar(&tlsFiles.Key, "etcd-key", "", "PEM private key `file` of --etcd-cert")
	fl.StringVar(&e.Username, "etcd-user", "", "etcd user `name` to log in as; the password is read from $"+storeEnvPassword)
	output := fl.String("o", "text", "output `format`: text or json")
	fl.Usage = func() {
		fmt.Fprint(stderr, `usage: turnout store copy --from LOCATION --to LOCATION [--prefix /turnout/]

Copies every deployment (ids kept), the audit trail (seqs and times kept)
and the active pointer into a store that holds none. Stop the nodes
writing to the source first: a bolt file is locked by the turnout using it.

Locations:
  bolt:PATH                 a bbolt store file (store.path), like bolt:turnout.db
  etcd:URL[,URL...]         the client URLs of an etcd cluster's members, like
                            etcd:http://10.0.0.1:2379,http://10.0.0.2:2379
                            (https URLs connect over TLS: see --etcd-ca)

flags:
`)
		fl.PrintDefaults()
	}
	if err := parseNoArgs(fl, args); err != nil {
		return err
	}
	switch {
	case *from == "" || *to == "":
		return usageError(fl, "--from and --to are both required")
	case *output != "text" && *output != "json":
		return usageError(fl, "-o %q: use text or json", *output)
	case !strings.HasSuffix(e.Prefix, "/"):
		return usageError(fl, "--prefix %q must end with /, like /turnout/", e.Prefix)
	}
	e.Password = os.Getenv(storeEnvPassword)
	if e.Username != "" && e.Password == "" {
		return fmt.Errorf("--etcd-user %s: set the password in $%s", e.Username, storeEnvPassword)
	}
	if tlsFiles != (config.EtcdTLS{}) {
		e.TLS = &tlsFiles
	}
	e.DialTimeout = config.Duration(*timeout)

	src, err := parseLocation("--from", *from)
	if err != nil {
		return err
	}
	dst, err := parseLocation("--to", *to)
	if err != nil {
		return err
	}
	if src.same(dst) {
		return fmt.Errorf("--from and --to are the same store (%s)", *from)
	}
	if src.bolt != "" {
		// bolt.Open would create a missing file: an empty source is a typo.
		if _, err := os.Stat(src.bolt); err != nil {
			return fmt.Errorf("--from %s: %w", *from, err)
		}
	}
	var created string // a bolt destination this copy made, removed on failure
	if dst.bolt != "" {
		if _, err := os.Stat(dst.bolt); errors.Is(err, fs.ErrNotExist) {
			created = dst.bolt
		}
	}

	srcStore, err := src.open(e)
	if err != nil {
		return fmt.Errorf("--from %s: %w", *from, err)
	}
	defer srcStore.Close()
	dstStore, err := dst.open(e)
	if err != nil {
		return fmt.Errorf("--to %s: %w", *to, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := deploy.Copy(ctx, srcStore, dstStore)
	var certs int
	if err == nil {
		// Certificates, keys and the ACME account too: a fleet moved to
		// etcd serves what it had instead of ordering it all again.
		if certs, err = copyCerts(ctx, certsOf(srcStore), certsOf(dstStore)); err != nil {
			err = fmt.Errorf("the history was copied, the certificates not (nodes will order them again): %w", err)
		}
	}
	dstStore.Close()
	if err != nil {
		if created != "" && certs == 0 && res.Deployments == 0 {
			os.Remove(created)
		}
		return err
	}
	if *output == "json" {
		return printJSON(stdout, struct {
			From string `json:"from"`
			To   string `json:"to"`
			deploy.CopyResult
			CertKeys int `json:"cert_keys"`
		}{*from, *to, res, certs})
	}
	fmt.Fprintf(stdout, "copied %d deployments and %d audit events from %s to %s; deployment %d is active; %d certificate storage keys\n",
		res.Deployments, res.AuditEvents, *from, *to, res.Active, certs)
	return nil
}

// certsOf is the certificate storage kept in st.
func certsOf(st deploy.Store) certmagic.Storage {
	switch s := st.(type) {
	case *bolt.Store:
		return s.CertStorage()
	case *etcd.Store:
		return s.CertStorage()
	}
	return nil
}

// copyCerts copies every value of src's certificate storage (certificates,
// their keys, the ACME account) to dst, and returns how many.
func copyCerts(ctx context.Context, src, dst certmagic.Storage) (int, error) {
	if src == nil || dst == nil {
		return 0, nil
	}
	keys, err := src.List(ctx, "", true)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // none
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if info, err := src.Stat(ctx, k); err != nil || !info.IsTerminal {
			continue
		}
		v, err := src.Load(ctx, k)
		if err != nil {
			return n, err
		}
		if err := dst.Store(ctx, k, v); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// location is where a store is: a bolt file, or an etcd cluster.
type location struct {
	bolt string   // the file, cleaned and absolute
	etcd []string // the endpoints
}

// parseLocation reads bolt:PATH or etcd:URL[,URL...].
func parseLocation(flagName, s string) (location, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return location{}, fmt.Errorf("%s %q: write bolt:PATH or etcd:URL[,URL...]", flagName, s)
	case scheme == "bolt":
		if rest == "" {
			return location{}, fmt.Errorf("%s %q: bolt: needs the store file, like bolt:turnout.db", flagName, s)
		}
		p, err := filepath.Abs(rest)
		if err != nil {
			return location{}, fmt.Errorf("%s %q: %w", flagName, s, err)
		}
		return location{bolt: p}, nil
	case scheme == "etcd":
		var l location
		for _, ep := range strings.Split(rest, ",") {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" ||
				u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				return location{}, fmt.Errorf("%s %q: endpoint %q is not an etcd client URL: write it like http://10.0.0.1:2379", flagName, s, ep)
			}
			l.etcd = append(l.etcd, ep)
		}
		return l, nil
	}
	return location{}, fmt.Errorf("%s %q: unknown store %q: write bolt:PATH or etcd:URL[,URL...]", flagName, s, scheme)
}

// same reports whether l and o are the same store (an etcd cluster
// sharing an endpoint is taken to be the same cluster: the prefix is one).
func (l location) same(o location) bool {
	if l.bolt != "" || o.bolt != "" {
		return l.bolt == o.bolt
	}
	for _, ep := range l.etcd {
		if slices.Contains(o.etcd, ep) {
			return true
		}
	}
	return false
}

// open opens the store at l, an etcd one with e's prefix, timeout, login
// and TLS files.
func (l location) open(e config.Etcd) (deploy.Store, error) {
	if l.bolt != "" {
		return bolt.Open(l.bolt)
	}
	e.Endpoints = l.etcd
	secure := strings.HasPrefix(l.etcd[0], "https://")
	for _, ep := range l.etcd {
		if strings.HasPrefix(ep, "https://") != secure {
			return nil, errors.New("mix of http and https endpoints: use one")
		}
	}
	switch {
	case secure && e.TLS == nil:
		e.TLS = &config.EtcdTLS{} // the system's roots
	case !secure && e.TLS != nil:
		return nil, errors.New("--etcd-ca, --etcd-cert and --etcd-key are for https endpoints: write https://")
	}
	if e.TLS != nil && (e.TLS.Cert == "") != (e.TLS.Key == "") {
		return nil, errors.New("give --etcd-cert and --etcd-key together")
	}
	o, err := etcd.OptionsFrom(&e)
	if err != nil {
		return nil, err
	}
	return etcd.Open(o)
}
