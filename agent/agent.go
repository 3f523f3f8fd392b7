package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/agent/metrics"
	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/agent/web"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/clock"
)

// Agent runs one pipeline per camera against one detector and one MQTT
// connection. Build it with New, then call Run once.
type Agent struct {
	// Version is the edgedet version reported to Home Assistant.
	Version string
	// OnReady, if set, is called once, when the first frame has gone
	// through the detector (systemd READY=1).
	OnReady func()
	// OnHeartbeat, if set, is called after every processed frame; it must
	// be cheap (systemd watchdog liveness).
	OnHeartbeat func()
	readyOnce   sync.Once

	cfg   *Config
	log   *slog.Logger
	det   Detector
	clock clock.Clock   // wall time for timestamps, monotonic for every "since"
	start time.Duration // Run's start (clock.Mono)

	running atomic.Bool
	// pipes are written by Run (under pipesMu) before its goroutines start
	// and after they ended; Reload and Totals, called from elsewhere, lock.
	pipesMu  sync.RWMutex
	pipes    []*pipeline
	metrics  *metrics.Metrics // nil unless http.metrics is on
	httpAddr atomic.Pointer[string]
	// publishControl, set while Run's MQTT stage runs, queues every
	// camera's retained control states (Reload republishes the threshold).
	publishControl atomic.Pointer[func()]
}

// HTTPAddr is the address the HTTP server listens on ("" before Run
// started it, or when it is off).
func (a *Agent) HTTPAddr() string {
	if p := a.httpAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// New validates cfg and builds an agent around a loaded detector, which the
// caller owns and closes after Run returns. ONNX Runtime must be initialised.
func New(cfg *Config, det *detector.Detector, log *slog.Logger) (*Agent, error) {
	var d Detector
	if det != nil {
		d = onnxDetector{det}
	}
	return newAgent(cfg, d, log)
}

// newAgent is New for any Detector (tests give a fake).
func newAgent(cfg *Config, det Detector, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if det == nil {
		return nil, errors.New("agent: nil detector")
	}
	return &Agent{cfg: cfg, log: log, det: det, clock: clock.System}, nil
}

// Run starts the embedded broker (if configured), the MQTT client, the
// outbox and one pipeline per camera, and blocks until ctx is cancelled or
// every camera has ended. Shutdown runs from source to sink: cameras and
// pipelines stop, open tracks end (their "end" events are spooled), the
// outbox makes a last bounded flush, and the client publishes "stopped" and
// disconnects. Run returns only after all of its goroutines have exited.
func (a *Agent) Run(ctx context.Context) (err error) {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	a.start = a.clock.Mono()
	env := &runEnv{
		info:   a.det.Info(),
		topics: a.cfg.MQTT.Topics(),
	}
	// The stages in order; the defers undo them in reverse (serve stops
	// and drains its own goroutines before it returns).
	defer func() {
		if serr := a.stopServices(env); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	if err := a.startServices(ctx, env); err != nil {
		return a.startupError(ctx, err)
	}
	defer a.closePipes()
	if err := a.buildPipelines(env); err != nil {
		return err
	}
	if err := a.startControl(ctx, env); err != nil {
		return a.startupError(ctx, err)
	}
	a.startDiscovery(ctx, env)
	return a.serve(ctx, env)
}

// startupError is what Run returns for err from a start-up stage: nil when
// err is ctx's own end (a stop asked for while the agent was starting —
// systemd's SIGTERM right after start — is a clean stop, not a failure),
// else err.
func (a *Agent) startupError(ctx context.Context, err error) error {
	if cause := ctx.Err(); cause != nil && errors.Is(err, cause) {
		a.log.Info("stopped while starting", "stage_err", err)
		return nil
	}
	return err
}

// runEnv is what the stages of one Run share.
type runEnv struct {
	info   detector.ModelInfo
	topics topic.Tree
	// Started by startServices, stopped by stopServices.
	broker  *mqtt.Broker // nil: no embedded broker
	client  *mqtt.Client
	box     *outbox.Outbox
	stopBox context.CancelFunc // nil until the outbox runs
	boxDone chan error         // the outbox's Run error
}

// startServices starts the embedded broker (if configured), connects the
// MQTT client and runs the outbox, recording each in env as it comes up,
// so stopServices stops what did.
func (a *Agent) startServices(ctx context.Context, env *runEnv) error {
	mcfg := a.cfg.MQTT
	if mcfg.Embedded.Enabled {
		broker, err := mqtt.StartEmbedded(mcfg.Embedded, a.cfg.StateDir, a.log)
		if err != nil {
			return fmt.Errorf("start embedded broker: %w", err)
		}
		env.broker = broker
		a.log.Info("embedded mqtt broker listening", "addr", broker.Addr())
		mcfg = broker.ClientConfig(mcfg)
	}
	client, err := mqtt.NewClient(mcfg, a.log)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	env.client = client
	box, err := outbox.New(a.cfg.Spool, client, a.log)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	env.box = box
	client.OnConnect(box.Trigger)
	if err := client.Connect(ctx); err != nil {
		return fmt.Errorf("mqtt connect: %w", err)
	}
	// The outbox outlives the pipelines: it gets its own context, cancelled
	// after their last messages are queued.
	boxCtx, stopBox := context.WithCancel(context.Background())
	boxDone := make(chan error, 1)
	go func() { boxDone <- guard("outbox", func() error { return box.Run(boxCtx) }) }()
	env.stopBox, env.boxDone = stopBox, boxDone
	return nil
}

// stopServices stops, in reverse, what startServices started: the outbox
// (after its last bounded flush; its error is returned), the client
// (publishing "stopped") and the embedded broker.
func (a *Agent) stopServices(env *runEnv) (err error) {
	a.publishControl.Store(nil)
	if env.stopBox != nil {
		env.stopBox()
		if berr := <-env.boxDone; berr != nil && !errors.Is(berr, context.Canceled) {
			err = fmt.Errorf("outbox: %w", berr)
		}
	}
	if client := env.client; client != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cerr := client.Close(closeCtx); cerr != nil {
			a.log.Warn("mqtt close", "err", cerr)
		}
	}
	if env.broker != nil {
		env.broker.Close()
	}
	return err
}

// buildPipelines ends what an unclean stop left open, then builds one
// pipeline per camera into a.pipes (closePipes closes them, also those
// built before an error).
func (a *Agent) buildPipelines(env *runEnv) error {
	// Before anything new is queued: end what an unclean stop left open.
	open, restarted, err := a.restoreOpen(env.box, env.topics)
	if err != nil {
		return err
	}
	for _, cc := range a.cfg.Cameras {
		counts := restarted[cc.Name]
		if counts == nil {
			counts = report.NewCounts(env.topics, cc.Name)
		}
		if err := a.addPipeline(cc, env, open, counts); err != nil {
			return err
		}
	}
	return nil
}

// addPipeline builds camera cc's pipeline, adds it to a.pipes and
// configures it.
func (a *Agent) addPipeline(cc CameraConfig, env *runEnv, open *openStore, counts *report.Counts) error {
	tracker, err := track.New(a.cfg.Events.Tracker())
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	stream, err := camera.NewStream(cc.Config, a.log)
	if err != nil {
		return fmt.Errorf("camera %q: %w", cc.Name, err)
	}
	client, box, topics, info := env.client, env.box, env.topics, env.info
	p := &pipeline{
		name:          cc.Name,
		stream:        stream,
		det:           a.det,
		direct:        client,
		box:           box,
		ctrl:          control.NewCamera(cc.Name, a.cfg.Detector.ScoreThreshold),
		tracker:       tracker,
		clock:         a.clock,
		counts:        counts,
		open:          open,
		topics:        topics,
		detTopic:      topics.Detections(cc.Name),
		qos:           a.cfg.MQTT.QoS,
		detOpts:       a.cfg.Detections,
		events:        a.cfg.Events.Enabled,
		snapshots:     a.cfg.Snapshots,
		processedHook: a.frameProcessed,
		aliveHook:     a.OnHeartbeat,
		logPub:        a.cfg.Log.Publishes,
		model:         info.Name,
		prec:          info.Precision,
		log:           a.log.With("component", "pipeline", "camera", cc.Name),
	}
	a.pipesMu.Lock()
	a.pipes = append(a.pipes, p)
	a.pipesMu.Unlock()
	if err := p.configure(cc, topics, info.Spec); err != nil {
		return fmt.Errorf("camera %q: %w", cc.Name, err)
	}
	return nil
}

// serve runs the HTTP server (if on), the periodic tasks and the
// pipelines until ctx is done or every camera has ended, then stops them
// and drains. The HTTP server and the live feeds stop with the pipelines;
// feeds are closed once no pipeline can offer them a frame.
func (a *Agent) serve(ctx context.Context, env *runEnv) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var feeds []*web.Feed
	defer func() { a.closeFeeds(feeds) }()
	if a.cfg.HTTP.Listen != "" {
		fs, err := a.serveHTTP(runCtx, &wg, env)
		feeds = fs
		if err != nil {
			return err
		}
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.sampleRates(runCtx) }()
	errs, allEnded := a.startPipelines(runCtx, &wg)
	a.startReports(runCtx, &wg, env)

	a.log.Info("agent running", "cameras", len(a.pipes), "model", env.info.Name, "precision", env.info.Precision,
		"mqtt", a.cfg.MQTT)
	select {
	case <-ctx.Done():
		a.log.Info("agent stopping")
	case <-allEnded:
		a.log.Info("every camera has ended; agent stopping")
	}
	cancel()
	wg.Wait()
	return a.drain(errs)
}

// startPipelines runs every camera's capture and detect goroutines in wg
// until ctx is done. Their errors arrive on errs (two per camera); allEnded
// is closed once every detect goroutine has returned.
func (a *Agent) startPipelines(ctx context.Context, wg *sync.WaitGroup) (errs chan error, allEnded <-chan struct{}) {
	errs = make(chan error, 2*len(a.pipes))
	var active sync.WaitGroup
	for _, p := range a.pipes {
		p.started, p.startedMono = a.clock.Now(), a.clock.Mono()
		active.Add(1)
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- guard("capture "+p.name, func() error { return p.stream.Run(ctx) })
		}()
		go func() {
			defer wg.Done()
			defer active.Done()
			errs <- guard("detect "+p.name, func() error { return p.run(ctx) })
		}()
	}
	ended := make(chan struct{})
	go func() { active.Wait(); close(ended) }()
	return errs, ended
}

// startReports runs the periodic stats log and stats messages (those
// configured) in wg until ctx is done.
func (a *Agent) startReports(ctx context.Context, wg *sync.WaitGroup, env *runEnv) {
	client, box := env.client, env.box
	if iv := a.cfg.Log.StatsInterval.D(); iv > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.logStats(ctx, iv, client, box)
		}()
	}
	if iv := a.cfg.Stats.Interval.D(); iv > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.publishStats(ctx, iv, client, box)
		}()
	}
}

// drain, once every stage has returned, joins their errors (a cancelled
// or ended camera is none) and ends the objects still in view, so every
// "new" has its "end".
func (a *Agent) drain(errs chan error) error {
	close(errs)
	var runErr error
	for e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) && !errors.Is(e, camera.ErrEndOfStream) {
			runErr = errors.Join(runErr, e)
		}
	}
	for _, p := range a.pipes {
		p.flushTracks(a.clock.Now())
	}
	return runErr
}

// Reload applies what can change while running from a freshly loaded and
// validated config: the detector's score threshold (also each camera's
// control threshold, republished on its retained state topic) and the log
// level (the caller sets its logger's level). The MQTT session, cameras
// and model stay as they are; it returns what it applied and the sections
// that differ and need a restart, so the caller can say so. next must have
// been completed as the running config was (cmd/edgedet applies the
// board's plan to both), or defaults filled at start read as changes.
func (a *Agent) Reload(next *Config) (applied, needRestart []string, err error) {
	cur := a.cfg
	if next.Detector.ScoreThreshold != cur.Detector.ScoreThreshold {
		if err := a.det.SetScoreThreshold(next.Detector.ScoreThreshold); err != nil {
			return nil, nil, err
		}
		a.pipesMu.RLock()
		for _, p := range a.pipes {
			p.ctrl.SetThreshold(next.Detector.ScoreThreshold)
		}
		if pub := a.publishControl.Load(); pub != nil {
			(*pub)() // the retained …/threshold/state shows the new value
		}
		a.pipesMu.RUnlock()
		applied = append(applied, "detector.score_threshold")
	}
	if next.Log.Level != cur.Log.Level {
		applied = append(applied, "log.level")
	}
	nd, cd := next.Detector, cur.Detector
	nd.ScoreThreshold, cd.ScoreThreshold = 0, 0
	nl, cl := next.Log, cur.Log
	nl.Level, cl.Level = "", ""
	for _, s := range []struct {
		name     string
		now, was any
	}{
		{"detector", nd, cd}, {"mqtt", next.MQTT, cur.MQTT}, {"camera", next.Cameras, cur.Cameras},
		{"events", next.Events, cur.Events}, {"snapshots", next.Snapshots, cur.Snapshots},
		{"detections", next.Detections, cur.Detections}, {"stats", next.Stats, cur.Stats},
		{"spool", next.Spool, cur.Spool}, {"homeassistant", next.HomeAssistant, cur.HomeAssistant},
		{"http", next.HTTP, cur.HTTP}, {"log", nl, cl}, {"state_dir", next.StateDir, cur.StateDir},
	} {
		if !reflect.DeepEqual(s.now, s.was) {
			needRestart = append(needRestart, s.name)
		}
	}
	a.cfg.Detector.ScoreThreshold = next.Detector.ScoreThreshold
	a.cfg.Log.Level = next.Log.Level
	return applied, needRestart, nil
}

// frameProcessed runs the readiness and liveness hooks.
func (a *Agent) frameProcessed() {
	if a.OnReady != nil {
		a.readyOnce.Do(a.OnReady)
	}
	if a.OnHeartbeat != nil {
		a.OnHeartbeat()
	}
}

func (a *Agent) closePipes() {
	a.pipesMu.Lock()
	defer a.pipesMu.Unlock()
	for _, p := range a.pipes {
		if err := p.stream.Close(); err != nil {
			a.log.Warn("close camera", "camera", p.name, "err", err)
		}
		if err := p.gate.close(); err != nil {
			a.log.Warn("close motion detector", "camera", p.name, "err", err)
		}
	}
	a.pipes = nil
}

// guard runs fn, turning a panic into an error with its stack, so a bug in
// one stage stops the agent cleanly (and systemd restarts it) instead of
// killing the process mid-publish.
func guard(stage string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic: %v\n%s", stage, r, debug.Stack())
		}
	}()
	return fn()
}
