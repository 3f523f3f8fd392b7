package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
)

// Publisher sends one MQTT message. *mqtt.Client implements it; a publish
// that cannot be delivered now returns an error and the caller counts it.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
}

var _ Publisher = (*mqtt.Client)(nil)

// Agent runs one pipeline per camera against one detector and one MQTT
// connection. Build it with New, then call Run once.
type Agent struct {
	cfg *Config
	log *slog.Logger
	det *detector.Detector

	running atomic.Bool
	pipes   []*pipeline
}

// New validates cfg and builds an agent around a loaded detector, which the
// caller owns and closes after Run returns. ONNX Runtime must be initialised.
func New(cfg *Config, det *detector.Detector, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if det == nil {
		return nil, errors.New("agent: nil detector")
	}
	return &Agent{cfg: cfg, log: log, det: det}, nil
}

// Run starts the embedded broker (if configured), the MQTT client and one
// pipeline per camera, and blocks until ctx is cancelled or every camera has
// ended. It returns only after all of its goroutines have exited and the
// MQTT client has published "stopped" and disconnected.
func (a *Agent) Run(ctx context.Context) (err error) {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	if a.cfg.MQTT.Embedded.Enabled {
		broker, err := mqtt.StartBroker(a.cfg.MQTT.Embedded.Listen, a.log)
		if err != nil {
			return fmt.Errorf("start embedded broker: %w", err)
		}
		defer broker.Close()
		a.log.Info("embedded mqtt broker listening", "addr", broker.Addr())
	}
	client, err := mqtt.NewClient(a.cfg.MQTT, a.log)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	if err := client.Connect(ctx); err != nil {
		return fmt.Errorf("mqtt connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cerr := client.Close(closeCtx); cerr != nil {
			a.log.Warn("mqtt close", "err", cerr)
		}
	}()

	info := a.det.Info()
	for _, cc := range a.cfg.Cameras {
		stream, err := camera.NewStream(cc, a.log)
		if err != nil {
			a.closePipes()
			return fmt.Errorf("camera %q: %w", cc.Name, err)
		}
		a.pipes = append(a.pipes, &pipeline{
			name:   cc.Name,
			stream: stream,
			det:    a.det,
			pub:    client,
			topic:  a.cfg.MQTT.Topic(cc.Name, "detections"),
			opts:   a.cfg.Detections,
			logPub: a.cfg.Log.Publishes,
			model:  info.Name,
			prec:   info.Precision,
			log:    a.log.With("component", "pipeline", "camera", cc.Name),
		})
	}
	defer a.closePipes()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(a.pipes))
	var active sync.WaitGroup
	for _, p := range a.pipes {
		active.Add(1)
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- guard("capture "+p.name, func() error { return p.stream.Run(runCtx) })
		}()
		go func() {
			defer wg.Done()
			defer active.Done()
			errs <- guard("detect "+p.name, func() error { return p.run(runCtx) })
		}()
	}
	if iv := a.cfg.Log.StatsInterval.D(); iv > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.logStats(runCtx, iv, client)
		}()
	}
	allEnded := make(chan struct{})
	go func() { active.Wait(); close(allEnded) }()

	a.log.Info("agent running", "cameras", len(a.pipes), "model", info.Name, "precision", info.Precision,
		"mqtt", a.cfg.MQTT)
	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("agent stopping")
	case <-allEnded:
		a.log.Info("every camera has ended; agent stopping")
	}
	cancel()
	wg.Wait()
	close(errs)
	for e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) && !errors.Is(e, camera.ErrEndOfStream) {
			runErr = errors.Join(runErr, e)
		}
	}
	return runErr
}

func (a *Agent) closePipes() {
	for _, p := range a.pipes {
		if err := p.stream.Close(); err != nil {
			a.log.Warn("close camera", "camera", p.name, "err", err)
		}
	}
	a.pipes = nil
}

// logStats logs per-camera and MQTT counters every interval.
func (a *Agent) logStats(ctx context.Context, every time.Duration, client *mqtt.Client) {
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
				"captured", s.Captured, "processed", p.processed.Load(), "dropped", s.Dropped,
				"skipped", s.Skipped, "reconnects", s.Reconnects,
				"published", p.published.Load(), "publish_failed", p.publishFailed.Load(),
				"inference_ms_avg", p.avgInferenceMs())
		}
		ms := client.Stats()
		a.log.Info("mqtt stats", "connected", ms.Connected, "published", ms.Published, "dropped", ms.Dropped, "failed", ms.Failed)
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

// pipeline is one camera's detect loop: it takes the newest frame, runs the
// detector and publishes the report.
type pipeline struct {
	name   string
	stream *camera.Stream
	det    *detector.Detector
	pub    Publisher
	topic  string
	opts   DetectionsConfig
	logPub bool
	model  string
	prec   string
	log    *slog.Logger

	processed     atomic.Uint64
	published     atomic.Uint64
	publishFailed atomic.Uint64
	inferNanos    atomic.Int64
}

func (p *pipeline) avgInferenceMs() float64 {
	n := p.processed.Load()
	if n == 0 {
		return 0
	}
	return float64(p.inferNanos.Load()) / float64(n) / 1e6
}

func (p *pipeline) run(ctx context.Context) error {
	dets := make([]detector.Detection, 0, 128)
	buf := make([]byte, 0, 4096)
	var detectErrs, pubErrs errorLimiter
	for {
		f, err := p.stream.Next(ctx)
		if err != nil {
			if errors.Is(err, camera.ErrEndOfStream) {
				p.log.Info("camera source ended")
			}
			return err
		}
		res, err := p.det.Detect(ctx, f.Mat, dets)
		report := FrameReport{Time: f.Time, Camera: p.name, Frame: f.Seq, Model: p.model, Precision: p.prec}
		p.stream.Release(f)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			detectErrs.log(p.log, "detect failed", err)
			continue
		}
		dets = res.Detections
		p.processed.Add(1)
		p.inferNanos.Add(int64(res.Timings.Inference))
		if !p.opts.Enabled || (len(dets) == 0 && !p.opts.PublishEmpty) {
			continue
		}
		report.Width, report.Height, report.Timings, report.Detections = res.Width, res.Height, res.Timings, dets
		buf = report.AppendJSON(buf[:0])
		if err := p.pub.Publish(ctx, p.topic, buf, p.opts.Retain); err != nil {
			p.publishFailed.Add(1)
			pubErrs.log(p.log, "publish failed", err, "topic", p.topic)
			continue
		}
		p.published.Add(1)
		if p.logPub {
			p.log.Info("published", "topic", p.topic, "frame", report.Frame, "detections", summarize(dets))
		}
	}
}

func summarize(dets []detector.Detection) string {
	var b strings.Builder
	for i, d := range dets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f", d.Label, d.Score)
	}
	return b.String()
}

// errorLimiter logs the first error of a streak and then at most one
// summary per minute, so an error that repeats on every frame does not flood
// the journal.
type errorLimiter struct {
	last       time.Time
	suppressed int
}

func (l *errorLimiter) log(log *slog.Logger, msg string, err error, args ...any) {
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < time.Minute {
		l.suppressed++
		return
	}
	args = append(args, "err", err)
	if l.suppressed > 0 {
		args = append(args, "suppressed", l.suppressed)
	}
	log.Warn(msg, args...)
	l.last, l.suppressed = now, 0
}
