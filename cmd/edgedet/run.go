package main

import (
	"context"
	"fmt"
	"io"

	"github.com/BurntSushi/toml"

	"github.com/edgedet/edgedet/agent"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/platforms/systemd"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	cfgPath := fs.String("c", "agent.toml", "config file")
	check := fs.Bool("check", false, "validate the config, print it resolved, and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	cfg, err := agent.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stdout, "# %s is valid; resolved configuration:\n", *cfgPath)
		return toml.NewEncoder(stdout).Encode(redacted(cfg))
	}
	log := newLogger(stderr, cfg.LogLevel(), cfg.Log.Format)
	cleanup, err := initRuntime(cfg.Detector.ONNXRuntimeLibrary)
	if err != nil {
		return err
	}
	defer cleanup()
	det, err := detector.New(cfg.Detector, log)
	if err != nil {
		return err
	}
	defer det.Close()
	a, err := agent.New(cfg, det, log)
	if err != nil {
		return err
	}
	a.Version = version
	// systemd (Type=notify): READY once the first frame went through the
	// model, WATCHDOG pings only while pipelines make progress, STOPPING on
	// shutdown. All no-ops outside systemd.
	notifier := systemd.NewNotifier()
	heartbeat := systemd.NewHeartbeat(notifier)
	a.OnReady = func() {
		if err := notifier.Ready(); err != nil {
			log.Warn("systemd notify", "err", err)
		}
		log.Info("ready: first frame processed")
	}
	a.OnHeartbeat = heartbeat.Beat
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); heartbeat.Run(hbCtx) }()
	go func() {
		<-ctx.Done()
		_ = notifier.Stopping()
	}()
	err = a.Run(ctx)
	stopHB()
	<-hbDone
	if err != nil {
		return err
	}
	log.Info("agent stopped")
	return nil
}

// redacted returns a copy of cfg safe to print: no password.
func redacted(cfg *agent.Config) agent.Config {
	c := *cfg
	if c.MQTT.Password != "" {
		c.MQTT.Password = "(redacted)"
	}
	return c
}
