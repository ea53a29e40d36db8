package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/turnout/turnout/internal/admin"
	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/fnhost"
	"github.com/turnout/turnout/internal/gateway"
	"github.com/turnout/turnout/internal/invoke"
	"github.com/turnout/turnout/internal/metrics"
	"github.com/turnout/turnout/internal/store/bolt"
)

// cmdServe runs the gateway until SIGINT or SIGTERM.
func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file (default: the embedded default config)")
	accessLog := fs.String("access-log", "-", `access log destination: "-" (stdout), "off", or a file path`)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if os.Getenv("GOGC") == "" {
		// A proxy's live heap is small and its garbage is per request, so
		// collecting at 5× the live heap instead of 2× buys throughput and
		// p99 (about 4% and 7% in bench/peers.sh) for a few MiB. GOGC overrides.
		debug.SetGCPercent(400)
	}

	name, data := "default.yaml (embedded)", config.Default()
	if *file != "" {
		var err error
		if data, err = os.ReadFile(*file); err != nil {
			return err
		}
		name = *file
	}
	cfg, err := config.Parse(name, data)
	if err != nil {
		return fmt.Errorf("invalid config, nothing started:\n%w", err)
	}
	node := cfg.WithDefaults()

	st, err := bolt.Open(node.Store.Path)
	if err != nil {
		return err
	}
	defer st.Close()

	m := metrics.New()
	gwOpts := gateway.Options{Metrics: m, Logger: log, MaxBodyBytes: node.Limits.MaxBodyBytes}
	gwOpts.OnBreaker = func(route, from, to string) {
		st.Audit(context.Background(), deploy.AuditEvent{Actor: "turnout", Action: "breaker." + to, Result: "ok",
			Detail: "route " + route + ": circuit breaker " + from + " → " + to})
	}
	switch *accessLog {
	case "off":
	case "-":
		bw := gateway.NewBufferedWriter(stdout, 0)
		defer bw.Close()
		gwOpts.AccessLog = gateway.NewAccessLogger(bw)
	default:
		f, err := os.OpenFile(*accessLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		bw := gateway.NewBufferedWriter(f, 0)
		defer bw.Close()
		gwOpts.AccessLog = gateway.NewAccessLogger(bw)
	}
	host, err := fnhost.New(fnhost.Options{Logger: log})
	if err != nil {
		return err
	}
	defer host.Close()
	router := &invoke.Router{Hosted: host}
	gwOpts.Functions = router
	gw := gateway.New(gwOpts)
	defer gw.Close()
	m.Registry.MustRegister(gw.HealthCollector())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	svc := &deploy.Service{
		Store: st,
		// The admin API answers only once the new table is live here.
		Activate: func(_ context.Context, d deploy.Deployment, c *config.Config) error { return gw.Apply(d.ID, c) },
	}
	active, seeded, err := svc.Seed(ctx, data, name)
	if err != nil {
		return err
	}
	if seeded {
		log.Info("store was empty: seeded deployment 1 from the config file", "file", name, "store", node.Store.Path)
	} else {
		log.Info("serving the store's active deployment; the config file's routes and origins are not applied (use `turnout apply`)",
			"deployment", active.ID, "store", node.Store.Path)
	}
	if gw.Active() == nil || gw.Active().Deployment != active.ID {
		if err := activate(gw, active); err != nil {
			return err
		}
	}
	go follow(ctx, st, gw, log)
	go gw.RunAutoRollback(ctx, func(ctx context.Context, match, reason string) error {
		d, err := svc.AutoRollback(ctx, match, reason)
		ev := deploy.AuditEvent{Actor: "turnout", Action: "auto-rollback", Result: "ok", Detail: d.Cause, Deployment: d.ID}
		if err != nil {
			ev.Result, ev.Detail = "error", "auto-rollback "+match+": "+reason+": "+err.Error()
		}
		st.Audit(ctx, ev)
		return err
	})

	adm, err := admin.New(admin.Options{
		Service:      svc,
		Store:        st,
		Tokens:       node.Admin.Tokens,
		TokenFile:    node.Store.Path + ".token",
		MaxBodyBytes: node.Admin.MaxBodyBytes,
		Status:       statusFunc(gw, st, host),
		Metrics:      m.Handler(),
		Functions:    host,
		Logger:       log,
	})
	if err != nil {
		return err
	}

	pubLn, err := net.Listen("tcp", node.Listen)
	if err != nil {
		return fmt.Errorf("public listener: %w", err)
	}
	admLn, err := net.Listen("tcp", node.Admin.Listen)
	if err != nil {
		pubLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	var invLn net.Listener
	if node.InvokeAPI.Listen != "off" {
		if invLn, err = net.Listen("tcp", node.InvokeAPI.Listen); err != nil {
			pubLn.Close()
			admLn.Close()
			return fmt.Errorf("invoke API listener: %w (set invoke_api.listen, or \"off\")", err)
		}
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	pub := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: node.Limits.ReadHeaderTimeout.D(),
		IdleTimeout:       node.Limits.IdleTimeout.D(),
		MaxHeaderBytes:    node.Limits.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
	adminSrv := &http.Server{
		Handler:           adm.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}
	invokeSrv := &http.Server{
		Handler:           invoke.NewServer(invoke.ServerOptions{Invoker: router, Functions: router.Functions, Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}
	errc := make(chan error, 3)
	go func() { errc <- pub.Serve(pubLn) }()
	go func() { errc <- adminSrv.Serve(admLn) }()
	invokeAddr := "off"
	if invLn != nil {
		go func() { errc <- invokeSrv.Serve(invLn) }()
		invokeAddr = "http://" + invLn.Addr().String()
	}
	log.Info("turnout listening", "public", pubLn.Addr().String(), "admin", "http://"+admLn.Addr().String(), "invoke_api", invokeAddr, "deployment", active.ID)

	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	log.Info("shutting down: draining in-flight requests", "drain_timeout", node.Limits.DrainTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), node.Limits.DrainTimeout.D())
	defer cancel()
	adminSrv.Shutdown(sctx)
	invokeSrv.Shutdown(sctx)
	if err := pub.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("drain deadline passed; closing remaining connections", "error", err)
	}
	return nil
}

// activate parses a stored deployment and swaps it in.
func activate(gw *gateway.Gateway, d deploy.Deployment) error {
	c, err := config.Parse(fmt.Sprintf("deployment %d", d.ID), []byte(d.Config))
	if err != nil {
		return fmt.Errorf("deployment %d does not parse: %w", d.ID, err)
	}
	return gw.Apply(d.ID, c)
}

// follow applies deployments activated elsewhere (another process on the
// same store, or a fleet store) as the store reports them.
func follow(ctx context.Context, st deploy.Store, gw *gateway.Gateway, log *slog.Logger) {
	for id := range st.Watch(ctx) {
		// Ids only grow (a rollback is a new deployment), so an id at or
		// below the served one is an echo of what Activate already swapped in.
		if t := gw.Active(); t != nil && t.Deployment >= id {
			continue
		}
		d, err := st.Get(ctx, id)
		if err == nil {
			err = activate(gw, d)
		}
		if err != nil {
			log.Error("cannot activate deployment from the store; still serving the previous one", "deployment", id, "error", err)
		}
	}
}

func statusFunc(gw *gateway.Gateway, st deploy.Store, host *fnhost.Host) func(context.Context) (admin.Status, error) {
	return func(ctx context.Context) (admin.Status, error) {
		s := gw.Status()
		out := admin.Status{Functions: host.Stats()}
		if d, err := st.Get(ctx, s.Deployment); err == nil {
			out.Active = admin.Summarize(d)
		}
		for _, r := range s.Routes {
			out.Routes = append(out.Routes, admin.RouteStatus{Match: r.Match, Target: r.Target, Fallback: r.Fallback, Off: r.Off, Breaker: r.Breaker})
		}
		for _, o := range s.Origins {
			os := admin.OriginStatus{Name: o.Name}
			for _, in := range o.Instances {
				os.Instances = append(os.Instances, admin.InstanceStatus{URL: in.URL, Healthy: in.Healthy, Ejected: in.Ejected, ConsecutiveFailures: in.ConsecutiveFailures, LastError: in.LastError})
			}
			out.Origins = append(out.Origins, os)
		}
		return out, nil
	}
}
