package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/dashboard"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/edge"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/gateway"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/h1loop"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/rollout"
	"github.com/turnout/turnout/internal/route"
	"github.com/turnout/turnout/internal/shadow"
	"github.com/turnout/turnout/internal/traffic"
	"github.com/turnout/turnout/internal/upgrade"
)

// cmdServe runs the gateway until SIGINT or SIGTERM.
func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file (default: the embedded default config)")
	accessLog := fs.String("access-log", "-", `access log destination: "-" (stdout), "off", or a file path`)
	pidFile := fs.String("pid-file", "", "write the serving process's pid here (rewritten by each upgrade, see SIGHUP)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the process, from start to shutdown, to this file (bench/profile.sh)")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file at shutdown (bench/profile.sh)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopProfiles(); err != nil {
			log.Error("profiles", "err", err)
		}
	}()
	if os.Getenv("GOGC") == "" {
		// A proxy's live heap is small and its garbage is per request, so
		// collecting at 5× the live heap instead of 2× buys throughput and
		// p99 (about 4% and 7% in bench/peers.sh) for a few MiB. GOGC overrides.
		debug.SetGCPercent(400)
	}

	name, data, node, err := readServeConfig(*file)
	if err != nil {
		return err
	}

	// SIGHUP upgrades to the binary on disk without dropping a connection:
	// the listening sockets are inherited (package upgrade), the bolt store
	// file is handed over (bolt.Handover); a fleet's etcd store is shared.
	upg, err := upgrade.New(upgrade.Options{PIDFile: *pidFile})
	if err != nil {
		return err
	}
	defer upg.Stop()

	st, err := openStore(node)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := &deploy.Service{Store: st} // Activate is the gateway, below

	accessLogger, closeAccessLog, err := openAccessLog(*accessLog, stdout)
	if err != nil {
		return err
	}
	defer closeAccessLog()
	m := metrics.New()
	m.StoreConnected(st.connected)
	host, err := fnhost.New(fnhost.Options{Logger: log, OnInit: m.ObserveInit})
	if err != nil {
		return err
	}
	defer host.Close()
	router := &invoke.Router{Hosted: host}
	// Every answered request feeds the traffic table (`turnout traffic`,
	// the dashboard's Traffic page) and the dashboard's live series.
	trafficTable := traffic.NewTable(traffic.Options{})
	live := dashboard.NewLive(0)
	rollouts := &rollout.Controller{Service: svc, Log: log}
	// Routes with a shadow: what their copies got, compared.
	shadows := &shadow.Report{Requests: m.ShadowRequests}
	gw := gateway.New(gateway.Options{
		OnCanaryFailure: rollouts.CanaryFailed,
		Shadow:          shadows,
		Metrics:         m,
		Logger:          log,
		MaxBodyBytes:    node.Limits.MaxBodyBytes,
		AccessLog:       accessLogger,
		Functions:       router,
		OnBreaker:       func(route, from, to string) { svc.AuditBreaker(context.Background(), route, from, to) },
		Observe: func(o *turnout.Observation) {
			trafficTable.Observe(o)
			live.Observe(o)
		},
	})
	defer gw.Close()
	m.Registry.MustRegister(gw.HealthCollector(), metrics.FunctionCollector(host.Stats))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	f, err := st.follow(node, gw, m, log)
	if err != nil {
		return err
	}
	follower := f.Follower
	rollouts.Counts, rollouts.Shadows = gw, shadows
	f.onServed = rollouts.Served
	// The admin API answers only once the new table is live here.
	svc.Activate = func(_ context.Context, d deploy.Deployment, c *config.Config) error { return follower.Serve(d, c) }
	active, err := st.seed(ctx, log, svc, data, name)
	if err != nil {
		return err
	}
	if err := follower.Activate(active); err != nil {
		return err
	}
	go follower.Run(ctx)
	go st.watchConnection(ctx, log, follower.Serving)
	go rollouts.Run(ctx)
	go gw.RunAutoRollback(ctx, func(ctx context.Context, match, reason string) error {
		_, err := svc.AutoRollback(ctx, match, reason)
		return err
	})

	adm, err := admin.New(admin.Options{
		Service:      svc,
		Store:        st,
		Tokens:       node.Admin.Tokens,
		TokenFile:    node.Store.Path + ".token",
		MaxBodyBytes: node.Admin.MaxBodyBytes,
		Status:       statusFunc(gw, st, host, f),
		LocalSwitch:  f.local.set,
		Rollouts:     func(context.Context) ([]rollout.Status, error) { return rollouts.Status(), nil },
		Shadow:       shadows.Summaries,
		Metrics:      m.Handler(),
		Functions:    host,
		Logger:       log,
		Live:         live,
		Traffic:      stagedTraffic{trafficTable, gw},
		Listen:       node.Admin.Listen,
		Hosts:        node.Admin.Hosts,
	})
	if err != nil {
		return err
	}

	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	// The public edge: plain HTTP, and HTTPS when tls: is configured.
	// Certificate files are read here, before anything listens.
	pub, err := edge.New(edge.Options{
		Handler:     gw,
		Limits:      node.Limits,
		HTTP1Server: node.HTTP1Server,
		Loop: func(r *h1.Request, remote string) (h1loop.Exchange, bool) {
			// Not x itself when refused: a nil *LoopExchange in the
			// interface would not be a nil Exchange.
			if x, ok := gw.BeginLoop(r, remote); ok {
				return x, true
			}
			return nil, false
		},
		TLS:      node.TLS,
		Storage:  st.certs,
		Logger:   log,
		ErrorLog: errLog,
	})
	if err != nil {
		return err
	}
	m.Registry.MustRegister(pub.Collector())
	adminSrv, adminScheme, err := newAdminServer(node.Admin, adm.Handler(), errLog, log)
	if err != nil {
		return err
	}
	invokeSrv := &http.Server{
		Handler:           invoke.NewServer(invoke.ServerOptions{Invoker: router, Functions: router.Functions, Configurations: router.Configurations, Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}

	lns, err := listenAll(upg, node)
	if err != nil {
		return err
	}
	errc := make(chan error, 4)
	if err := pub.Serve(lns.public, lns.https, errc); err != nil {
		pub.Close()
		lns.close()
		return err
	}
	adminAPI := upgrade.NewServer(adminSrv, lns.admin, errc)
	adminAPI.Serve()
	invokeAddr := "off"
	if lns.invoke != nil {
		go func() { errc <- invokeSrv.Serve(lns.invoke) }()
		invokeAddr = "http://" + lns.invoke.Addr().String()
	}
	httpsAddr := "off"
	if lns.https != nil {
		httpsAddr = lns.https.Addr().String()
	}
	follower.Advertise(adminScheme + lns.admin.Addr().String())
	log.Info("turnout listening", "public", lns.public.Addr().String(), "https", httpsAddr, "admin", adminScheme+lns.admin.Addr().String(), "invoke_api", invokeAddr, "deployment", active.ID)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := upg.Ready(); err != nil {
		log.Warn("could not tell the previous process (upgrade) that this one is ready", "error", err)
	}
	if err := waitForEnd(ctx, log, upg, storeAndAdminHandoff(ctx, log, st, follower, adminAPI), hup, errc); err != nil {
		return err
	}
	log.Info("shutting down: draining in-flight requests", "drain_timeout", node.Limits.DrainTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), node.Limits.DrainTimeout.D())
	defer cancel()
	upg.Quiesce(sctx)
	adminAPI.Shutdown(sctx)
	invokeSrv.Shutdown(sctx)
	if err := pub.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("drain deadline passed; closing remaining connections", "error", err)
	}
	return nil
}

// readServeConfig reads the config file (the embedded default when file
// is empty) and parses it, returning its name and source for seeding and
// the node's settings with defaults applied.
func readServeConfig(file string) (name string, data []byte, node *config.Config, err error) {
	name, data = "default.yaml (embedded)", config.Default()
	if file != "" {
		if data, err = os.ReadFile(file); err != nil {
			return "", nil, nil, err
		}
		name = file
	}
	cfg, err := config.Parse(name, data)
	if err != nil {
		return "", nil, nil, fmt.Errorf("invalid config, nothing started:\n%w", err)
	}
	return name, data, cfg.WithDefaults(), nil
}

// openAccessLog opens the -access-log destination: "-" is stdout, "off"
// none (a nil logger), anything else a file appended to. close flushes and
// closes it.
func openAccessLog(dest string, stdout io.Writer) (logger *gateway.AccessLogger, close func(), err error) {
	var w io.Writer
	var f *os.File
	switch dest {
	case "off":
		return nil, func() {}, nil
	case "-":
		w = stdout
	default:
		if f, err = os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, nil, err
		}
		w = f
	}
	bw := gateway.NewBufferedWriter(w, 0)
	return gateway.NewAccessLogger(bw), func() {
		bw.Close()
		if f != nil {
			f.Close()
		}
	}, nil
}

// newAdminServer is the admin API's HTTP server, with TLS when admin.tls
// is configured, and the scheme it serves.
func newAdminServer(cfg config.Admin, h http.Handler, errLog *stdlog.Logger, log *slog.Logger) (*http.Server, string, error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}
	if t := cfg.TLS; t != nil {
		var err error
		if srv.TLSConfig, err = edge.LoadCertificate(t.Cert, t.Key); err != nil {
			return nil, "", fmt.Errorf("admin.tls: %w", err)
		}
		return srv, "https://", nil
	}
	if !config.IsLoopback(cfg.Listen) {
		// Parse refuses this unless insecure_no_tls says so; say it at
		// every start, so nobody forgets.
		log.Warn("INSECURE: the admin API listens on a non-loopback address without TLS (admin.insecure_no_tls: true); bearer tokens cross the network in clear",
			"admin", cfg.Listen)
	}
	return srv, "http://", nil
}

// serveListeners are the sockets serve listens on; https and invoke are
// nil when off.
type serveListeners struct {
	public, https, admin, invoke net.Listener
	all                          []net.Listener
}

func (l *serveListeners) close() {
	for _, ln := range l.all {
		ln.Close()
	}
}

// listenAll opens (or, after an upgrade, inherits) every listening socket
// of node, or none.
func listenAll(upg *upgrade.Upgrader, node *config.Config) (*serveListeners, error) {
	l := &serveListeners{}
	open := func(ln *net.Listener, what, addr, hint string) error {
		t, err := upg.ListenTracked(what, "tcp", addr, what == "HTTPS")
		if err != nil {
			l.close()
			return fmt.Errorf("%s listener: %w%s", what, err, hint)
		}
		*ln = t
		l.all = append(l.all, t)
		return nil
	}
	if err := open(&l.public, "public", node.Listen, ""); err != nil {
		return nil, err
	}
	if node.TLS != nil {
		if err := open(&l.https, "HTTPS", node.TLS.Listen, " (set tls.listen)"); err != nil {
			return nil, err
		}
	}
	if err := open(&l.admin, "admin", node.Admin.Listen, ""); err != nil {
		return nil, err
	}
	if node.InvokeAPI.Listen != "off" {
		if err := open(&l.invoke, "invoke API", node.InvokeAPI.Listen, ` (set invoke_api.listen, or "off")`); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// storeAndAdminHandoff gives the store, and the admin API that writes to
// it, to the new process of an upgrade and takes them back if it fails; the
// data plane keeps serving from memory meanwhile.
func storeAndAdminHandoff(ctx context.Context, log *slog.Logger, st *nodeStore, follower *deploy.Follower, adminAPI *upgrade.Server) upgrade.Handoff {
	return upgrade.Handoff{
		Release: func() error {
			if err := adminAPI.KeepSocket(); err != nil {
				return fmt.Errorf("keep the admin socket: %w", err)
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := adminAPI.Shutdown(sctx); err != nil {
				log.Warn("upgrade: admin requests still running were cut off", "error", err)
			}
			if err := st.release(); err != nil { // ends follower.Run on a bolt store
				return fmt.Errorf("close the store: %w", err)
			}
			return nil
		},
		Reclaim: func() error {
			if err := st.reclaim(); err != nil {
				return fmt.Errorf("reopen the store: %w", err)
			}
			if st.kind == "bolt" {
				go follower.Run(ctx)
			}
			if err := adminAPI.Resume(); err != nil {
				return fmt.Errorf("admin listener: %w", err)
			}
			log.Warn("upgrade: store and admin API taken back; certificate renewals resume at the next restart")
			return nil
		},
	}
}

// waitForEnd returns when ctx ends (SIGTERM), after an upgrade the new
// process finished (SIGHUP), or with the first fatal error of a server. A
// failed upgrade is logged and waiting goes on.
func waitForEnd(ctx context.Context, log *slog.Logger, upg *upgrade.Upgrader, h upgrade.Handoff, hup <-chan os.Signal, errc <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				continue // the admin server, stopped for an upgrade
			}
			return err
		case <-hup:
			log.Info("upgrade: starting the new binary with the listening sockets; the store and the admin API go to it", "binary", os.Args[0])
			start := time.Now()
			if err := upg.Upgrade(h); err != nil {
				log.Error("upgrade failed: this process took the store and the admin API back and carries on serving", "error", err)
				continue
			}
			log.Info("upgrade: the new process is ready; this one stops accepting and drains", "took", time.Since(start).Round(time.Millisecond).String())
			return nil
		}
	}
}

// statusFunc is the admin API's status of this node. While the store
// cannot be reached, the deployment served comes from memory.
func statusFunc(gw *gateway.Gateway, st *nodeStore, host *fnhost.Host, f *following) func(context.Context) (admin.Status, error) {
	local := f.local.local
	return func(ctx context.Context) (admin.Status, error) {
		s := gw.Status()
		out := admin.Status{Routes: s.Routes, Origins: s.Origins, Authorizers: s.Authorizers, Functions: host.Stats(), LocalSwitches: local.List(), Store: "connected"}
		local.Mark(out.Routes)
		if !st.connected() {
			out.Store = "disconnected"
		}
		if out.Store == "connected" {
			if d, err := st.Get(ctx, s.Deployment); err == nil {
				out.Active = admin.Summarize(d)
				return out, nil
			}
		}
		if d := f.served.Load(); d != nil && d.ID == s.Deployment {
			out.Active = admin.Summarize(*d)
			out.Store = "disconnected"
		}
		return out, nil
	}
}

// stagedTraffic is the traffic table with each row's migration stage:
// that of the row's route in the table served now.
type stagedTraffic struct {
	*traffic.Table
	gw *gateway.Gateway
}

func (s stagedTraffic) Report(q traffic.Query) traffic.Report {
	rep := s.Table.Report(q)
	stages := map[string]string{}
	for _, r := range s.gw.Status().Routes {
		stages[route.Canonical(r.Match)] = r.Stage
	}
	for i, row := range rep.Rows {
		if len(row.Routes) > 0 {
			rep.Rows[i].Stage = stages[route.Canonical(row.Routes[0])]
		}
	}
	return rep
}

// adminURL is where this node's admin API answers, as its fleet record
// advertises it.
func adminURL(a config.Admin) string {
	scheme := "http://"
	if a.TLS != nil {
		scheme = "https://"
	}
	return scheme + a.Listen
}

// version is the turnout version this binary was built as: its module
// version, or the VCS revision of a development build.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && (v == "" || v == "(devel)") {
			v = "devel-" + s.Value[:12]
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v
}
