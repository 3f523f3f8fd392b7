package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/BurntSushi/toml"

	"github.com/edgedet/edgedet/agent"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/platforms"
	"github.com/edgedet/edgedet/platforms/systemd"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	cfgPath := fs.String("c", "agent.toml", "config file")
	check := fs.Bool("check", false, "validate the config, print it resolved, and exit")
	if err := parseFlags(fs, args); err != nil {
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
		return toml.NewEncoder(stdout).Encode(cfg.Redacted())
	}
	daemonGC()
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel())
	log := newLogger(stderr, level, cfg.Log.Format)
	cleanup, err := initRuntime(cfg.Detector.ONNXRuntimeLibrary)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := applyPlan(cfg, log); err != nil {
		return err
	}
	det, err := detector.New(cfg.DetectorConfig(), log)
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
	// SIGHUP reloads the config: what can change live is applied, the rest
	// is named as needing a restart, and an invalid file changes nothing.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				_ = notifier.Stopping()
				return
			case <-hup:
				reload(a, *cfgPath, level, notifier, log)
			}
		}
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

// applyPlan fills what the config leaves to the board: the execution
// providers (the plan's that the loaded library has, in order), the thread
// count (physical cores) and the GStreamer pipeline of cameras whose source
// is "csi".
func applyPlan(cfg *agent.Config, log *slog.Logger) error {
	dc := &cfg.Detector
	board, err := platforms.Detect(os.DirFS("/"))
	if err != nil {
		log.Warn("board detection failed; using defaults", "err", err)
	}
	for i := range cfg.Cameras {
		cam := &cfg.Cameras[i]
		if cam.Source != platforms.CSISource {
			continue
		}
		pipe, err := platforms.CSIPipeline(board, cam.Width, cam.Height, cam.FPS)
		if err != nil {
			return fmt.Errorf("camera %q: %w", cam.Name, err)
		}
		cam.Source, cam.Kind = pipe, "gstreamer"
		log.Info("csi camera", "camera", cam.Name, "pipeline", pipe)
	}
	if err != nil {
		return nil
	}
	plan := platforms.PlanFor(board)
	if len(dc.Providers) == 0 {
		lib, _ := platforms.FindONNXRuntime(dc.ONNXRuntimeLibrary)
		available, err := platforms.AvailableProviders(lib)
		if err != nil {
			log.Warn("cannot list the library's execution providers; using cpu", "err", err)
			available = nil
		}
		dc.Providers = plan.Usable(available)
	}
	if dc.Threads == 0 {
		dc.Threads = plan.Threads
	}
	log.Info("platform", "board", board.Kind, "model", board.Model, "providers", dc.Providers, "threads", dc.Threads)
	return nil
}

// reload re-reads the config file for SIGHUP.
func reload(a *agent.Agent, path string, level *slog.LevelVar, n *systemd.Notifier, log *slog.Logger) {
	_ = n.Reloading()
	defer func() { _ = n.Ready() }()
	next, err := agent.Load(path)
	if err != nil {
		log.Error("reload rejected; keeping the running config", "err", err)
		return
	}
	applied, restart, err := a.Reload(next)
	if err != nil {
		log.Error("reload rejected; keeping the running config", "err", err)
		return
	}
	level.Set(next.LogLevel())
	log.Info("config reloaded", "applied", applied)
	if len(restart) > 0 {
		log.Warn("config changes that need a restart were not applied", "sections", restart)
	}
}

// daemonGCPercent is the Go GC target the agent runs with: its live heap is
// small and steady (≈ 7 MB) and it allocates little, so with Go's default
// (100) the heap drifts to twice that between the rare collections and RSS
// with it; 25 keeps it within a quarter for a negligible CPU cost.
const daemonGCPercent = 25

// daemonGC applies daemonGCPercent unless GOGC is set.
func daemonGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
}
