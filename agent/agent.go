package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
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
		return err
	}
	defer a.closePipes()
	if err := a.buildPipelines(env); err != nil {
		return err
	}
	if err := a.startControl(ctx, env); err != nil {
		return err
	}
	return a.serve(ctx, env)
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

// startControl queues the retained state — control values and Home
// Assistant discovery — now and again after every reconnect (a broker
// without persistence forgets retained messages when it restarts), and
// subscribes to the /set topics once; the client re-subscribes on
// reconnect.
func (a *Agent) startControl(ctx context.Context, env *runEnv) error {
	client, box, topics := env.client, env.box, env.topics
	byName := map[string]*pipeline{}
	var names []string
	for _, p := range a.pipes {
		byName[p.name] = p
		names = append(names, p.name)
	}
	retainedState := func() {
		now := a.clock.Now()
		for _, p := range a.pipes {
			box.Send(control.StateMessages(topics, p.ctrl, now)...)
		}
		box.Send(report.Discovery(a.cfg.HomeAssistant, topics, a.Version, names, now)...)
	}
	retainedState()
	client.OnConnect(retainedState) // Send signals a flush; Trigger is registered in startServices
	err := client.Subscribe(ctx, topics.SetFilter(), 1, a.controlHandler(env, byName))
	if err != nil {
		return fmt.Errorf("subscribe to control topics: %w", err)
	}
	return nil
}

// controlHandler applies a /set message to its camera's control and
// queues the camera's control states.
func (a *Agent) controlHandler(env *runEnv, byName map[string]*pipeline) func(topic string, payload []byte) {
	box, topics := env.box, env.topics
	return func(topic string, payload []byte) {
		cam, setting, ok := control.ParseSet(topics, topic)
		p := byName[cam]
		if !ok || p == nil {
			return
		}
		changed, err := p.ctrl.Set(setting, payload)
		if err != nil {
			a.log.Warn("control message rejected", "topic", topic, "err", err)
			return
		}
		if changed {
			a.log.Info("control", "camera", cam, "setting", setting, "value", strings.TrimSpace(string(payload)))
		}
		box.Send(control.StateMessages(topics, p.ctrl, a.clock.Now())...)
	}
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

// serveHTTP starts the HTTP server and what feeds it (live feeds,
// metrics) in wg until ctx is done. It returns the feeds, also on error.
func (a *Agent) serveHTTP(ctx context.Context, wg *sync.WaitGroup, env *runEnv) ([]*web.Feed, error) {
	srv, feeds, err := a.startHTTP(env.client, env.box)
	if err != nil {
		return feeds, err
	}
	for _, f := range feeds {
		wg.Add(1)
		go func() { defer wg.Done(); f.Run(ctx) }()
	}
	if a.metrics != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.metrics.Run(ctx) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			a.log.Error("http server", "err", err)
		}
	}()
	return feeds, nil
}

// closeFeeds closes the live feeds.
func (a *Agent) closeFeeds(feeds []*web.Feed) {
	for _, f := range feeds {
		if cerr := f.Close(); cerr != nil {
			a.log.Warn("close live feed", "err", cerr)
		}
	}
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

// restoreOpen opens the state directory (nil store when state_dir is
// unset) and queues an "end" (reason restart) for every object the
// previous run left open — it was killed or lost power before it could
// end them — with the per-label counts of their cameras back to 0. Then it
// empties the file, so they are ended once. It returns the counts it
// published per camera, for the pipelines to carry on from.
func (a *Agent) restoreOpen(box *outbox.Outbox, topics topic.Tree) (*openStore, map[string]*report.Counts, error) {
	if a.cfg.StateDir == "" {
		return nil, nil, nil
	}
	store, prev, err := openOpenStore(a.cfg.StateDir, a.log)
	if err != nil {
		return nil, nil, err
	}
	counts := map[string]*report.Counts{}
	now := a.clock.Now()
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		cam := prev[name]
		if len(cam.Objects) == 0 {
			continue
		}
		meta, evs := restartEnds(name, cam, now)
		zero := map[string]int{}
		for _, ev := range evs {
			box.Send(report.EventMessage(topics, meta, ev))
			zero[ev.After.Label] = 0
		}
		c := report.NewCounts(topics, name)
		box.Send(c.Update(zero, now)...)
		counts[name] = c
		a.log.Info("ended the objects the previous run left open", "camera", name, "objects", len(evs),
			"end_reason", track.EndRestart, "file", store.path)
	}
	if err := store.clear(); err != nil {
		return nil, nil, fmt.Errorf("state_dir: %w", err)
	}
	return store, counts, nil
}

// Reload applies what can change while running from a freshly loaded and
// validated config: the detector's score threshold (also each camera's
// control threshold). The MQTT session, cameras and model stay as they
// are; it returns the sections that differ and need a restart, so the
// caller can say so.
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
		a.pipesMu.RUnlock()
		applied = append(applied, "detector.score_threshold")
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

// startHTTP builds the metrics (if on) and the live feeds (if on), binds
// the HTTP server and returns it, not yet serving, with the feeds to run.
func (a *Agent) startHTTP(client *mqtt.Client, box *outbox.Outbox) (*web.Server, []*web.Feed, error) {
	hc := a.cfg.HTTP
	info := a.det.Info()
	opts := web.Options{Listen: hc.Listen, LiveView: hc.LiveView, StallAfter: hc.StallAfter.D(), Log: a.log, Clock: a.clock}
	if hc.Metrics {
		m := metrics.New(metrics.Options{Version: a.Version, Model: info.Name, Precision: info.Precision, Provider: info.Provider})
		for _, p := range a.pipes {
			p.metrics = m.AddCamera(p.name, info.Labels, p.counters)
		}
		m.SetMQTT(func() metrics.MQTTCounters {
			ms, bs := client.Stats(), box.Stats()
			return metrics.MQTTCounters{Connected: ms.Connected, Published: ms.Published, Failed: ms.Failed,
				Dropped: ms.Dropped, QueueDepth: bs.Len, SpoolBytes: bs.Bytes, SpoolDropped: bs.Lost()}
		})
		opts.Metrics = m.Handler()
		a.metrics = m
	}
	var feeds []*web.Feed
	views := make([]web.CameraView, 0, len(a.pipes))
	for _, p := range a.pipes {
		v := web.CameraView{Name: p.name, Status: p.status}
		if hc.LiveView {
			f := web.NewFeed(hc.LiveFPS, hc.LiveQuality)
			f.SetZones(p.overlay.Zones)
			feeds = append(feeds, f)
			p.feed, v.Feed = f, f
		}
		views = append(views, v)
	}
	srv, err := web.NewServer(opts, views)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		return nil, feeds, fmt.Errorf("http: %w", err)
	}
	addr := srv.Addr()
	a.httpAddr.Store(&addr)
	a.log.Info("http server listening", "addr", addr, "metrics", hc.Metrics, "live_view", hc.LiveView)
	return srv, feeds, nil
}

// counters reads the camera's totals for the metrics.
func (p *pipeline) counters() metrics.CameraCounters {
	s := p.stream.Stats()
	return metrics.CameraCounters{Captured: s.Captured, Processed: p.stats.processed.Load(), Dropped: s.Dropped,
		Skipped: s.Skipped + p.stats.skipped(), Reconnects: s.Reconnects, Connected: s.Connected}
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

// logStats logs per-camera and MQTT counters every interval.
func (a *Agent) logStats(ctx context.Context, every time.Duration, client *mqtt.Client, box *outbox.Outbox) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range a.pipes {
			s := p.stream.Stats()
			a.log.Info("camera stats", "camera", p.name, "connected", s.Connected,
				"captured", s.Captured, "processed", p.stats.processed.Load(), "dropped", s.Dropped,
				"skipped", s.Skipped, "reconnects", s.Reconnects,
				"published", p.stats.published.Load(), "publish_failed", p.stats.publishFailed.Load(),
				"inference_ms_avg", p.stats.avgInferenceMs())
		}
		ms, bs := client.Stats(), box.Stats()
		a.log.Info("mqtt stats", "connected", ms.Connected, "published", ms.Published, "dropped", ms.Dropped,
			"failed", ms.Failed, "spooled", bs.Len, "spool_dropped", bs.Lost())
	}
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
