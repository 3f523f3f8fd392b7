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
	check := fs.Bool("check", false, "prove the config runnable (model loads, files, devices, directories, ports), print it resolved, and exit")
	root := fs.String("root", "", "with --check: look the config's absolute paths up under this directory (a staged install)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	if *root != "" && !*check {
		return fmt.Errorf("%w: --root only applies with --check", errUsage)
	}
	cfg, err := agent.LoadRoot(*cfgPath, *root)
	if err != nil {
		return err
	}
	if *check {
		return runCheck(ctx, cfg, stdout, stderr)
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
	if err := notifier.WatchdogErr(); err != nil {
		log.Warn("systemd", "err", err)
	}
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

// runCheck runs agent.Check on cfg with the board's plan applied as run
// applies it, and prints the report and the resolved configuration (the
// detector's description as the model resolved it).
func runCheck(ctx context.Context, cfg *agent.Config, stdout, stderr io.Writer) error {
	level := new(slog.LevelVar)
	level.Set(max(cfg.LogLevel(), slog.LevelWarn))
	log := newLogger(stderr, level, cfg.Log.Format)
	board, err := platforms.Detect(os.DirFS("/"))
	if err != nil {
		log.Warn("board detection failed; using defaults", "err", err)
	} else {
		planProviders(cfg, board, log) // csi cameras: Check resolves them
	}
	rep, err := agent.Check(ctx, cfg, log)
	printCheck(stdout, cfg, rep)
	if err != nil {
		return fmt.Errorf("%s cannot run: %s:\n%w", cfg.Path, plural(len(rep.Problems), "problem"), err)
	}
	return nil
}

// printCheck prints what Check proved, then the resolved configuration.
func printCheck(w io.Writer, cfg *agent.Config, rep *agent.CheckReport) {
	fmt.Fprintf(w, "# %s\n", cfg.Path)
	if cfg.Root != "" {
		fmt.Fprintf(w, "# absolute paths looked up under %s\n", cfg.Root)
	}
	if rep.Runtime != "" {
		fmt.Fprintf(w, "# onnx runtime: %s\n", rep.Runtime)
	}
	if m := rep.Model; m != nil {
		s := m.Spec
		fmt.Fprintf(w, "# model: %s, %s, input %dx%d, channels %s, scale %g, mean %v, std %v, resize %s",
			m.Name, m.Format, s.InputWidth, s.InputHeight, s.ChannelOrder, s.Scale, s.Mean, s.Std, s.Resize)
		if s.PadValue != nil {
			fmt.Fprintf(w, " (pad %d)", *s.PadValue)
		}
		fmt.Fprintf(w, ", %d labels, %s, provider %s (from %s)\n", len(m.Labels), m.Precision, m.Provider, m.SpecSource)
	}
	for _, p := range rep.Passed {
		fmt.Fprintf(w, "# ok    %s\n", p)
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintf(w, "# %s is runnable; resolved configuration:\n", cfg.Path)
	} else {
		fmt.Fprintf(w, "# %s cannot run (problems on stderr); resolved configuration:\n", cfg.Path)
	}
	out := cfg.Redacted()
	if m := rep.Model; m != nil {
		spec := m.Spec
		spec.Labels, spec.LabelsFile = nil, out.Detector.LabelsFile // the count is above
		out.Detector.Spec = spec
	}
	_ = toml.NewEncoder(w).Encode(out)
}

// applyPlan fills what the config leaves to the board: the execution
// providers (the plan's that the loaded library has, in order), the thread
// count (physical cores) and the GStreamer pipeline of cameras whose source
// is "csi".
func applyPlan(cfg *agent.Config, log *slog.Logger) error {
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
	planProviders(cfg, board, log)
	return nil
}

// planProviders sets the providers and threads the config leaves to the
// board's plan.
func planProviders(cfg *agent.Config, board platforms.Board, log *slog.Logger) {
	dc := &cfg.Detector
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
}

// reload re-reads the config file for SIGHUP.
func reload(a *agent.Agent, path string, level *slog.LevelVar, n *systemd.Notifier, log *slog.Logger) {
	_ = n.Reloading()
	defer func() { _ = n.Ready() }()
	next, err := agent.Load(path)
	if err == nil {
		// Complete it as the running config was, so that what the board's
		// plan filled in at start does not read as a change.
		err = applyPlan(next, slog.New(slog.DiscardHandler))
	}
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
