package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/spool"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
)

// pipeline is one camera's detect loop: it takes the newest frame, runs the
// detector, tracks objects and queues what subscribers should learn.
type pipeline struct {
	name      string
	stream    *camera.Stream
	det       *detector.Detector
	direct    Publisher      // lossy per-frame topics
	box       *outbox.Outbox // events, counts, snapshots: spooled, never lost
	ctrl      *control.Camera
	tracker   *track.Tracker
	counts    *report.Counts
	topics    report.Topics
	detTopic  string
	qos       byte
	detOpts   DetectionsConfig
	events    bool
	snapshots report.SnapshotConfig
	logPub    bool
	// processedHook runs after every frame the detector processed;
	// aliveHook after a frame skipped because detection is off (the
	// pipeline is alive, so the watchdog must keep being fed).
	processedHook, aliveHook func()
	model                    string
	prec                     string
	log                      *slog.Logger

	processed     atomic.Uint64
	skippedOff    atomic.Uint64 // frames not processed because detection is off
	published     atomic.Uint64
	publishFailed atomic.Uint64
	inferNanos    atomic.Int64
	preNanos      atomic.Int64
	postNanos     atomic.Int64
	lastWidth     atomic.Int64
	lastHeight    atomic.Int64
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
	evs := make([]track.Event, 0, 16)
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
		if !p.ctrl.Detect() {
			p.stream.Release(f)
			p.skippedOff.Add(1)
			if p.aliveHook != nil {
				p.aliveHook()
			}
			// Objects still end after max_age while detection is off.
			p.queueEvents(p.tracker.Update(time.Now(), nil, evs[:0]), nil, report.Meta{})
			continue
		}
		res, err := p.det.Detect(ctx, f.Mat, dets)
		if err != nil {
			p.stream.Release(f)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			detectErrs.log(p.log, "detect failed", err)
			continue
		}
		dets = keepAbove(res.Detections, p.ctrl.Threshold())
		p.processed.Add(1)
		if p.processedHook != nil {
			p.processedHook()
		}
		p.inferNanos.Add(int64(res.Timings.Inference))
		p.preNanos.Add(int64(res.Timings.Preprocess))
		p.postNanos.Add(int64(res.Timings.Postprocess))
		p.lastWidth.Store(int64(res.Width))
		p.lastHeight.Store(int64(res.Height))
		meta := report.Meta{Camera: p.name, Model: p.model, Precision: p.prec, Width: res.Width, Height: res.Height}
		if p.events {
			evs = p.tracker.Update(f.Time, dets, evs[:0])
			p.queueEvents(evs, &f.Mat, meta)
		}
		seq, at := f.Seq, f.Time
		p.stream.Release(f)

		if !p.detOpts.Enabled || (len(dets) == 0 && !p.detOpts.PublishEmpty) {
			continue
		}
		fr := FrameReport{Time: at, Camera: p.name, Frame: seq, Model: p.model, Precision: p.prec,
			Width: res.Width, Height: res.Height, Timings: res.Timings, Detections: dets}
		buf = fr.AppendJSON(buf[:0])
		msg := spool.Message{Topic: p.detTopic, Payload: buf, QoS: p.qos, Retained: p.detOpts.Retain, Time: at}
		if err := p.direct.PublishMessage(ctx, msg); err != nil {
			p.publishFailed.Add(1)
			pubErrs.log(p.log, "publish failed", err, "topic", p.detTopic)
			continue
		}
		p.published.Add(1)
		if p.logPub {
			p.log.Info("published", "topic", p.detTopic, "frame", seq, "detections", summarize(dets))
		}
	}
}

// queueEvents spools the events of one frame, the snapshots they call for
// (img is the frame; nil when there is none) and the counts that changed.
func (p *pipeline) queueEvents(evs []track.Event, img *gocv.Mat, meta report.Meta) {
	if len(evs) == 0 {
		return
	}
	now := time.Now()
	for _, ev := range evs {
		if meta.Camera == "" {
			meta = report.Meta{Camera: p.name, Model: p.model, Precision: p.prec,
				Width: int(p.lastWidth.Load()), Height: int(p.lastHeight.Load())}
		}
		p.box.Send(report.EventMessage(p.topics, meta, ev))
		if p.logPub {
			p.log.Info("event", "type", ev.Type, "id", ev.After.ID, "label", ev.After.Label, "score", ev.After.Score)
		}
		if img != nil && p.snapshots.Enabled && report.WantsSnapshot(ev) {
			jpeg, err := report.Snapshot(*img, ev.After, p.snapshots)
			if err != nil {
				p.log.Warn("snapshot failed", "id", ev.After.ID, "err", err)
			} else {
				p.box.Send(report.SnapshotMessage(p.topics, p.name, ev.After.Label, jpeg, now))
			}
		}
	}
	p.box.Send(p.counts.Update(p.tracker.Counts(), now)...)
}

// flushTracks ends every open object (agent shutdown).
func (p *pipeline) flushTracks(now time.Time) {
	if p.events {
		p.queueEvents(p.tracker.Flush(now), nil, report.Meta{})
	}
}

// keepAbove keeps the detections scoring at least min, in place.
func keepAbove(dets []detector.Detection, min float32) []detector.Detection {
	kept := dets[:0]
	for _, d := range dets {
		if d.Score >= min {
			kept = append(kept, d)
		}
	}
	return kept
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
