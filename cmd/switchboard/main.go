// Command switchboard runs the Switchboard service and its admin tools.
//
//	switchboard serve                 run the service (SQLite + built-in CRM + simulated carrier by default)
//	switchboard migrate               bring the database schema up to date
//	switchboard admin …               orgs, users, API keys, gateways, sending a message
//	switchboard sim …                 the simulated carrier: text a gateway, configure handsets, run one
//	switchboard bench …               push N messages through the whole pipeline and report figures
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/logging"
)

const usage = `switchboard — texts between your CRM and your messaging partners

Usage:
  switchboard serve      [flags]   run the service
  switchboard migrate    [flags]   migrate the database and exit
  switchboard admin      <command> manage orgs, users, API keys, gateways; send a message
  switchboard sim        <command> use the simulated carrier (text, handset, inbox, serve)
  switchboard bench      [flags]   benchmark the whole pipeline
  switchboard load       [flags]   ramp signed incoming webhooks and report latency per rate

Run "switchboard <command> -h" for a command's flags. Settings come from
environment variables (see README) and flags.
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "switchboard:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], stderr)
	case "admin":
		return admin(ctx, args[1:], stdout, stderr)
	case "sim":
		return simCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "load":
		return load(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	level, _ := cfg.logLevel()
	log := logging.New(stderr, level, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	app, err := newApp(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	if err := app.Start(ctx); err != nil {
		app.Stop(time.Second)
		return err
	}
	if err := bootstrap(ctx, app, stdout); err != nil {
		app.Stop(time.Second)
		return err
	}
	log.Info("switchboard started", "addr", app.Addr(), "public_url", cfg.PublicURL, "database", string(app.DB.Dialect()),
		"simulated_carrier", cfg.simURL())
	<-ctx.Done()
	stop() // a second signal stops the process at once
	log.Info("shutting down: finishing in-flight work (interrupt again to stop at once)", "grace", JobGrace)
	app.Stop(JobGrace)
	log.Info("stopped")
	return nil
}

func migrate(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	level, _ := cfg.logLevel()
	log := logging.New(stderr, level, cfg.LogFormat)
	db, err := openStore(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	log.Info("database is up to date", "database", string(db.Dialect()))
	return db.Close()
}
