package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// stageObserver records per-frame figures (metrics.Camera).
type stageObserver interface {
	ObserveStages(pre, infer, post time.Duration)
	AddDetection(classID int)
}

// liveFeed receives processed frames for the live view (web.Feed).
type liveFeed interface {
	Wanted() bool
	Offer(img gocv.Mat, dets []detector.Detection)
}

// pipeline is one camera's detect path, in two goroutines so the stages
// overlap: prepare takes the newest frame and preprocesses it into a
// detector job while finish runs the previous job through the model, then
// decodes, tracks and queues what subscribers should learn. The detector's
// sessions and jobs are shared by every camera, first come first served.
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
	metrics   stageObserver // nil = no metrics
	feed      liveFeed      // nil = no live view
	// processedHook runs after every frame the detector processed;
	// aliveHook after a frame skipped because detection is off (the
	// pipeline is alive, so the watchdog must keep being fed).
	processedHook, aliveHook func()
	model                    string
	prec                     string
	log                      *slog.Logger

	started       time.Time
	processed     atomic.Uint64
	skippedOff    atomic.Uint64 // frames not processed because detection is off
	published     atomic.Uint64
	publishFailed atomic.Uint64
	inferNanos    atomic.Int64
	preNanos      atomic.Int64
	postNanos     atomic.Int64
	lastWidth     atomic.Int64
	lastHeight    atomic.Int64
	lastProgress  atomic.Int64             // unix nanos of the last frame processed or skipped because detection is off
	objects       atomic.Pointer[[]string] // labels of the objects tracked now, for the live page
	rates         liveRates
}

func (p *pipeline) avgInferenceMs() float64 {
	n := p.processed.Load()
	if n == 0 {
		return 0
	}
	return float64(p.inferNanos.Load()) / float64(n) / 1e6
}

// prepared is a frame on its way from prepare to finish: job holds its
// preprocessed input; job == nil means detection was off for this frame.
type prepared struct {
	job   *detector.Job
	frame *camera.Frame
}

// run processes frames until ctx is done or the camera ends.
func (p *pipeline) run(ctx context.Context) error {
	handoff := make(chan prepared) // unbuffered: at most one frame waits, prepared, for the model
	prepErr := make(chan error, 1)
	go func() {
		defer close(handoff)
		prepErr <- guard("prepare "+p.name, func() error { return p.prepare(ctx, handoff) })
	}()
	p.finish(ctx, handoff)
	return <-prepErr
}

// prepare takes each newest frame, waits for a free detector job and
// preprocesses the frame into it, then hands both to finish.
func (p *pipeline) prepare(ctx context.Context, out chan<- prepared) error {
	var errs errorLimiter
	for {
		f, err := p.stream.Next(ctx)
		if err != nil {
			if errors.Is(err, camera.ErrEndOfStream) {
				p.log.Info("camera source ended")
			}
			return err
		}
		var job *detector.Job
		if p.ctrl.Detect() {
			if job, err = p.det.Acquire(ctx); err != nil {
				p.stream.Release(f)
				return err
			}
			if err := job.Prepare(f.Mat); err != nil {
				p.det.Release(job)
				p.stream.Release(f)
				errs.log(p.log, "preprocess failed", err)
				continue
			}
		}
		select {
		case out <- prepared{job: job, frame: f}:
		case <-ctx.Done():
			p.det.Release(job)
			p.stream.Release(f)
			return ctx.Err()
		}
	}
}

// finish runs each prepared job through the model, decodes it and reports
// the frame, until prepare closes in.
func (p *pipeline) finish(ctx context.Context, in <-chan prepared) {
	st := newFrameState()
	for it := range in {
		p.process(ctx, it, st)
	}
}

// frameState is finish's storage, reused from frame to frame so the steady
// state allocates nothing.
type frameState struct {
	dets                []detector.Detection
	evs                 []track.Event
	buf                 []byte
	detectErrs, pubErrs errorLimiter
}

func newFrameState() *frameState {
	return &frameState{dets: make([]detector.Detection, 0, 128), evs: make([]track.Event, 0, 16),
		buf: make([]byte, 0, 4096)}
}

// process finishes one prepared frame: inference, decoding, metrics, live
// view, tracking and publishing. It releases the job and the frame.
func (p *pipeline) process(ctx context.Context, it prepared, st *frameState) {
	f := it.frame
	if it.job == nil {
		p.stream.Release(f)
		p.skippedOff.Add(1)
		p.lastProgress.Store(time.Now().UnixNano())
		if p.aliveHook != nil {
			p.aliveHook()
		}
		// Objects still end after max_age while detection is off.
		p.queueEvents(p.tracker.Update(time.Now(), nil, st.evs[:0]), nil, report.Meta{})
		return
	}
	err := it.job.Infer(ctx)
	res := it.job.Decode(st.dets)
	p.det.Release(it.job)
	if err != nil {
		p.stream.Release(f)
		if ctx.Err() == nil {
			st.detectErrs.log(p.log, "detect failed", err)
		}
		return
	}
	dets := keepAbove(res.Detections, p.ctrl.Threshold())
	st.dets = dets
	p.processed.Add(1)
	p.lastProgress.Store(time.Now().UnixNano())
	if p.processedHook != nil {
		p.processedHook()
	}
	t := res.Timings
	p.inferNanos.Add(int64(t.Inference))
	p.preNanos.Add(int64(t.Preprocess))
	p.postNanos.Add(int64(t.Postprocess))
	p.lastWidth.Store(int64(res.Width))
	p.lastHeight.Store(int64(res.Height))
	if p.metrics != nil {
		p.metrics.ObserveStages(t.Preprocess, t.Inference, t.Postprocess)
		for _, d := range dets {
			p.metrics.AddDetection(d.ClassID)
		}
	}
	if p.feed != nil && p.feed.Wanted() {
		p.feed.Offer(f.Mat, dets)
	}
	meta := report.Meta{Camera: p.name, Model: p.model, Precision: p.prec, Width: res.Width, Height: res.Height}
	if p.events {
		st.evs = p.tracker.Update(f.Time, dets, st.evs[:0])
		p.queueEvents(st.evs, &f.Mat, meta)
	}
	seq, at := f.Seq, f.Time
	p.stream.Release(f)

	if !p.detOpts.Enabled || (len(dets) == 0 && !p.detOpts.PublishEmpty) {
		return
	}
	fr := FrameReport{Time: at, Camera: p.name, Frame: seq, Model: p.model, Precision: p.prec,
		Width: res.Width, Height: res.Height, Timings: t, Detections: dets}
	st.buf = fr.AppendJSON(st.buf[:0])
	msg := spool.Message{Topic: p.detTopic, Payload: st.buf, QoS: p.qos, Retained: p.detOpts.Retain, Time: at}
	if err := p.direct.PublishMessage(ctx, msg); err != nil {
		p.publishFailed.Add(1)
		st.pubErrs.log(p.log, "publish failed", err, "topic", p.detTopic)
		return
	}
	p.published.Add(1)
	if p.logPub {
		p.log.Info("published", "topic", p.detTopic, "frame", seq, "detections", summarize(dets))
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
	counts := p.tracker.Counts()
	p.box.Send(p.counts.Update(counts, now)...)
	objects := make([]string, 0, len(counts))
	for label, n := range counts {
		if n > 0 {
			objects = append(objects, fmt.Sprintf("%d %s", n, label))
		}
	}
	slices.Sort(objects)
	p.objects.Store(&objects)
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
