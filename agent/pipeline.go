package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/snapshot"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/agent/web"
	"github.com/edgedet/edgedet/agent/zone"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/overlay"
)

// stageObserver records per-frame figures (metrics.Camera).
type stageObserver interface {
	ObserveStages(pre, infer, post time.Duration)
	AddDetection(classID int)
}

// liveFeed receives processed frames for the live view (web.Feed).
type liveFeed interface {
	Wanted() bool
	Offer(img gocv.Mat, dets []detection.Detection, motion []image.Rectangle)
}

// pipeline is one camera's detect path, in two goroutines so the stages
// overlap: prepare takes the newest frame and preprocesses it into a
// detector job while finish runs the previous job through the model, then
// decodes, tracks and queues what subscribers should learn. The detector's
// sessions and jobs are shared by every camera, first come first served.
type pipeline struct {
	name      string
	stream    *camera.Stream
	det       Detector
	direct    publish.Publisher // lossy per-frame topics
	box       *outbox.Outbox    // events, counts, snapshots: spooled, never lost
	ctrl      *control.Camera
	tracker   *track.Tracker
	clock     clock.Clock // the agent's: wall time for timestamps, monotonic for "since"
	counts    *report.Counts
	open      *openStore // persists the open objects (nil: state_dir unset)
	topics    topic.Tree
	detTopic  string
	qos       byte
	detOpts   DetectionsConfig
	events    bool
	snapshots report.SnapshotConfig
	logPub    bool
	metrics   stageObserver // nil = no metrics
	feed      liveFeed      // nil = no live view
	// gate runs the detector only on frames (or crops) where something
	// moved or a tracked object is due for a recheck (nil: on every frame).
	gate *gate
	// motion is the camera's motion topic (nil: no motion gating, so no
	// motion detector to tell).
	motion *report.Motion
	// encoder encodes the camera's events: edgedet's own (report.Events) or,
	// with mqtt.compat = "frigate", Frigate's.
	encoder eventEncoder
	// objMask drops detections (nil: none); zones follow tracked objects
	// (nil: the camera has none).
	objMask    *zone.Mask
	zones      *zone.Tracker
	zoneCounts *zone.Counts
	zoneLookup func(id string) (current, entered []string)
	// overlay is what live view and snapshots draw to tune motion and
	// zones: the zones, and (finish's) the current frame's motion boxes.
	overlay overlay.Overlay
	// processedHook runs after every frame the detector processed;
	// aliveHook after a frame skipped because detection is off (the
	// pipeline is alive, so the watchdog must keep being fed).
	processedHook, aliveHook func()
	model                    string
	prec                     string
	log                      *slog.Logger

	started     time.Time     // wall clock, shown on the status page
	startedMono time.Duration // the same instant on clock.Mono: health is judged from it
	stats       pipelineStats
	objects     atomic.Pointer[[]web.ObjectCount] // the objects in view, by label, for the live page (see updateLive)
	lastRan     time.Time                         // frame time of the latest frame the detector ran on
	rates       liveRates
}

// configure sets up the camera's motion gating, object masks, zones and
// event encoder.
func (p *pipeline) configure(cc CameraConfig, topics topic.Tree, spec detection.Spec) error {
	var err error
	if p.objMask, err = zone.NewMask(cc.ObjectMasks); err != nil {
		return fmt.Errorf("object_mask: %w", err)
	}
	if len(cc.Zones) > 0 {
		if p.zones, err = zone.NewTracker(cc.Zones); err != nil {
			return err
		}
		p.zoneLookup = p.zones.Zones
		for _, z := range cc.Zones {
			oz := overlay.Zone{Name: z.Name}
			for _, pt := range z.Points {
				oz.Points = append(oz.Points, image.Pt(int(pt[0]), int(pt[1])))
			}
			p.overlay.Zones = append(p.overlay.Zones, oz)
		}
		p.zoneCounts = zone.NewCounts(topics, cc.Name)
		// Zeros for the labels the zones watch: clears what a previous run
		// left retained on the broker.
		p.box.Send(p.zoneCounts.Update(p.zones.Counts(), p.clock.Now())...)
	}
	if cc.Motion.Enabled {
		if p.gate, err = newGate(cc.Motion, max(spec.InputWidth, spec.InputHeight)); err != nil {
			return err
		}
		p.motion = report.NewMotion(topics, cc.Name, cc.Motion.OffDelay.D())
		p.box.Send(p.motion.Initial(p.clock.Now()))
	}
	if topics.Frigate {
		p.encoder = report.NewFrigateEvents(topics, cc.Name)
	} else {
		p.encoder = report.NewEvents(topics, cc.Name)
	}
	return nil
}

// eventEncoder turns a camera's tracker events into messages, remembering
// what it published of each open object.
type eventEncoder interface {
	Message(m report.Meta, ev track.Event) publish.Message
}

// progressed records that a frame went through (processed, or skipped
// because detection is off).
func (p *pipeline) progressed() {
	p.stats.progressed(p.clock.Mono(), p.clock.Now())
}

// meta describes the camera's frames of width×height for its messages.
func (p *pipeline) meta(width, height int) report.Meta {
	return report.Meta{Camera: p.name, Model: p.model, Precision: p.prec, Width: width, Height: height}
}

// lastMeta is meta for the last frame the detector processed.
func (p *pipeline) lastMeta() report.Meta {
	return p.meta(int(p.stats.lastWidth.Load()), int(p.stats.lastHeight.Load()))
}

// prepared is a frame on its way from prepare to finish. job holds its
// preprocessed input, or regions the crops finish runs the detector on;
// with neither, the frame is not run: gated (nothing moved) or detection
// is off. motion is what the motion detector found; motionRan says it
// ran on the frame (it runs while detection is off too, for the motion
// topic).
type prepared struct {
	job       Job
	frame     *camera.Frame
	gated     bool
	motionRan bool
	motion    []image.Rectangle
	regions   []image.Rectangle
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

// prepare takes each newest frame, gates it on motion, preprocesses it
// into a detector job (waiting for a free one) and hands it to finish.
func (p *pipeline) prepare(ctx context.Context, out chan<- prepared) error {
	var errs errorLimiter
	for {
		f, err := p.stream.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// Shutting down: the stream may report itself closed
				// (its Run returned) before Next sees ctx.
				return ctx.Err()
			}
			if errors.Is(err, camera.ErrEndOfStream) {
				p.log.Info("camera source ended")
			}
			return err
		}
		it, err := p.prepareFrame(ctx, f)
		if err != nil {
			p.stream.Release(f)
			if ctx.Err() != nil || errors.Is(err, detector.ErrClosed) {
				return err
			}
			errs.log(p.log, "preprocess failed", err)
			continue
		}
		if !p.send(ctx, out, it) {
			return ctx.Err()
		}
	}
}

// prepareFrame decides what finish does with f: nothing (detection off, or
// gated: nothing moved), the crops to run (regions), or the job holding
// the preprocessed frame. On error f is not released.
func (p *pipeline) prepareFrame(ctx context.Context, f *camera.Frame) (prepared, error) {
	it := prepared{frame: f}
	if !p.ctrl.Detect() {
		if p.gate != nil {
			p.gate.motionOnly(&it) // for the motion topic only
			it.motionRan = true
		}
		return it, nil
	}
	if p.gate != nil {
		p.gate.decide(&it)
		it.motionRan = true
		if it.gated || len(it.regions) > 0 {
			return it, nil
		}
	}
	job, err := p.det.Acquire(ctx)
	if err != nil {
		return it, err
	}
	if err := job.Prepare(f.Mat); err != nil {
		p.det.Release(job)
		return it, err
	}
	it.job = job
	return it, nil
}

// send hands it to finish; when ctx ends first it releases what it holds.
func (p *pipeline) send(ctx context.Context, out chan<- prepared, it prepared) bool {
	select {
	case out <- it:
		return true
	case <-ctx.Done():
		p.det.Release(it.job)
		p.stream.Release(it.frame)
		return false
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
	dets, crop          []detection.Detection
	evs, ends, rest     []track.Event
	objs                []track.Object
	live                []web.ObjectCount
	buf                 []byte
	detectErrs, pubErrs errorLimiter
}

func newFrameState() *frameState {
	return &frameState{dets: make([]detection.Detection, 0, 128), crop: make([]detection.Detection, 0, 128),
		evs: make([]track.Event, 0, 16), ends: make([]track.Event, 0, 16), rest: make([]track.Event, 0, 16),
		objs: make([]track.Object, 0, 32), live: make([]web.ObjectCount, 0, 16), buf: make([]byte, 0, 4096)}
}

// process finishes one prepared frame: inference (whole frame or crops),
// decoding, masks, metrics, live view, tracking, zones and publishing. It
// releases the job and the frame.
func (p *pipeline) process(ctx context.Context, it prepared, st *frameState) {
	p.observeMotion(it)
	if it.job == nil && len(it.regions) == 0 {
		p.skip(it, st)
		return
	}
	f := it.frame
	p.overlay.Motion = it.motion
	res, err := p.infer(ctx, it, st)
	if err != nil {
		p.stream.Release(f)
		if ctx.Err() == nil {
			st.detectErrs.log(p.log, "detect failed", err)
		}
		return
	}
	dets := keepAbove(p.objMask.Filter(res.Detections), p.ctrl.Threshold())
	st.dets = dets
	p.record(res, dets)
	if p.feed != nil && p.feed.Wanted() {
		p.feed.Offer(f.Mat, dets, it.motion)
	}
	if p.events {
		p.track(f.Time, dets, true, &f.Mat, p.meta(res.Width, res.Height), st)
	}
	seq, at := f.Seq, f.Time
	p.stream.Release(f)
	p.publishDetections(ctx, seq, at, res, dets, st)
}

// observeMotion feeds the frame's motion to the camera's motion topic.
func (p *pipeline) observeMotion(it prepared) {
	if p.motion == nil || !it.motionRan {
		return
	}
	if msg, ok := p.motion.Update(len(it.motion) > 0, it.frame.Time); ok {
		p.box.Send(msg)
	}
}

// skip finishes a frame the detector did not run on: nothing moved, or
// detection is off. Objects still end after max_age. It releases the frame.
func (p *pipeline) skip(it prepared, st *frameState) {
	f := it.frame
	if it.gated {
		p.stats.gated.Add(1)
	} else {
		p.stats.skippedOff.Add(1)
	}
	p.progressed()
	if p.aliveHook != nil {
		p.aliveHook()
	}
	if p.feed != nil && it.gated && p.feed.Wanted() {
		p.feed.Offer(f.Mat, nil, it.motion)
	}
	at := f.Time
	if !it.gated {
		at = time.Now()
	}
	if p.events {
		p.track(at, nil, false, nil, p.lastMeta(), st)
	}
	p.stream.Release(f)
}

// infer runs the detector on it: on its crops, or its whole frame's job,
// which it releases.
func (p *pipeline) infer(ctx context.Context, it prepared, st *frameState) (detector.Result, error) {
	if len(it.regions) > 0 {
		return p.detectRegions(ctx, it.frame.Mat, it.regions, st)
	}
	err := it.job.Infer(ctx)
	res := it.job.Decode(st.dets)
	p.det.Release(it.job)
	p.stats.inferences.Add(1)
	return res, err
}

// record counts a processed frame, its stage times and detections, and
// runs the processed hook.
func (p *pipeline) record(res detector.Result, dets []detection.Detection) {
	p.stats.ran(res)
	p.progressed()
	if p.processedHook != nil {
		p.processedHook()
	}
	if p.metrics != nil {
		t := res.Timings
		p.metrics.ObserveStages(t.Preprocess, t.Inference, t.Postprocess)
		for _, d := range dets {
			p.metrics.AddDetection(d.ClassID)
		}
	}
}

// publishDetections sends the frame's detections (lossy: straight to the
// client), when the detections topic is on.
func (p *pipeline) publishDetections(ctx context.Context, seq uint64, at time.Time, res detector.Result, dets []detection.Detection, st *frameState) {
	if !p.detOpts.Enabled || (len(dets) == 0 && !p.detOpts.PublishEmpty) {
		return
	}
	t := res.Timings
	fr := FrameReport{Time: at, Camera: p.name, Frame: seq, Model: p.model, Precision: p.prec,
		Width: res.Width, Height: res.Height, Timings: t, Detections: dets}
	st.buf = fr.AppendJSON(st.buf[:0])
	msg := publish.Message{Topic: p.detTopic, Payload: st.buf, QoS: p.qos, Retained: p.detOpts.Retain, Time: at}
	if err := p.direct.PublishMessage(ctx, msg); err != nil {
		p.stats.publishFailed.Add(1)
		st.pubErrs.log(p.log, "publish failed", err, "topic", p.detTopic)
		return
	}
	p.stats.published.Add(1)
	if p.logPub {
		p.log.Info("published", "topic", p.detTopic, "frame", seq, "detections", summarize(dets))
	}
}

// detectRegions runs the detector on each crop of img and returns the
// detections in img's pixels, best first, de-duplicated across crops.
// Timings are summed over the crops.
func (p *pipeline) detectRegions(ctx context.Context, img gocv.Mat, regions []image.Rectangle, st *frameState) (detector.Result, error) {
	res := detector.Result{Width: img.Cols(), Height: img.Rows()}
	dets := st.dets[:0]
	for _, r := range regions {
		j, err := p.det.Acquire(ctx)
		if err != nil {
			return res, err
		}
		roi := img.Region(r)
		err = j.Prepare(roi)
		roi.Close()
		if err == nil {
			err = j.Infer(ctx)
		}
		cr := j.Decode(st.crop)
		p.det.Release(j)
		if err != nil {
			return res, fmt.Errorf("region %v: %w", r, err)
		}
		p.stats.inferences.Add(1)
		st.crop = cr.Detections
		dx, dy := float32(r.Min.X), float32(r.Min.Y)
		for _, d := range cr.Detections {
			d.Box.X1, d.Box.X2, d.Box.Y1, d.Box.Y2 = d.Box.X1+dx, d.Box.X2+dx, d.Box.Y1+dy, d.Box.Y2+dy
			dets = append(dets, d)
		}
		res.Timings.Preprocess += cr.Timings.Preprocess
		res.Timings.Wait += cr.Timings.Wait
		res.Timings.Inference += cr.Timings.Inference
		res.Timings.Postprocess += cr.Timings.Postprocess
	}
	if len(regions) > 1 {
		slices.SortFunc(dets, func(a, b detection.Detection) int { return cmp.Compare(b.Score, a.Score) })
		dets = dedupeRegions(dets, 0.5)
	}
	res.Detections = dets
	return res, nil
}

// track updates the tracker with a frame's detections (ran false: a frame
// the detector did not run on), follows the zones and queues the events,
// snapshots and counts.
func (p *pipeline) track(at time.Time, dets []detection.Detection, ran bool, img *gocv.Mat, meta report.Meta, st *frameState) {
	st.evs = p.tracker.Update(at, dets, st.evs[:0])
	if p.zones == nil {
		p.queueEvents(st.evs, img, meta)
	} else {
		p.trackZones(img, meta, st)
	}
	if p.open != nil && opensOrEnds(st.evs) {
		// The set of open objects changed: persist it, so that after an
		// unclean stop the next start can end them.
		st.objs = p.tracker.AppendActive(st.objs[:0])
		meta.Zones = p.zoneLookup
		p.open.set(p.name, meta, st.objs)
	}
	if p.gate != nil {
		// The gate needs to know what is tracked: rechecks, crops cover it.
		if p.zones == nil {
			st.objs = p.tracker.AppendActive(st.objs[:0])
		}
		p.gate.observe(st.objs, ran, meta.Width*meta.Height)
	}
	if ran {
		p.lastRan = at
	}
	if ran || len(st.evs) > 0 {
		p.updateLive(st)
	}
}

// updateLive sets the live page's objects: the reported objects seen in the
// latest frame the detector ran on, by label. An object missing from that
// frame has left the view (its "end" is still up to max_age away) and is
// not counted; frames the detector skips (nothing moved, detection off)
// change nothing but the objects that ended. It allocates only when the
// list changes.
func (p *pipeline) updateLive(st *frameState) {
	st.objs = p.tracker.AppendActive(st.objs[:0])
	live := st.live[:0]
	for _, o := range st.objs {
		if o.LastSeen.Before(p.lastRan) {
			continue
		}
		i := 0
		for i < len(live) && live[i].Label != o.Label {
			i++
		}
		if i == len(live) {
			live = append(live, web.ObjectCount{Label: o.Label})
		}
		live[i].Count++
	}
	slices.SortFunc(live, func(a, b web.ObjectCount) int { return cmp.Compare(a.Label, b.Label) })
	st.live = live
	if cur := p.objects.Load(); cur != nil && slices.Equal(*cur, live) {
		return
	}
	out := slices.Clone(live)
	p.objects.Store(&out)
}

// trackZones queues the frame's events (st.evs) of a camera with zones:
// "end" events first, while the zone tracker still knows the zones the
// object was in; then the zones move on, and objects whose zones changed
// get an update even if nothing else did. It leaves the tracked objects
// in st.objs.
func (p *pipeline) trackZones(img *gocv.Mat, meta report.Meta, st *frameState) {
	meta.Zones = p.zoneLookup
	st.ends, st.rest = st.ends[:0], st.rest[:0]
	for _, ev := range st.evs {
		if ev.Type == track.EventEnd {
			st.ends = append(st.ends, ev)
		} else {
			st.rest = append(st.rest, ev)
		}
	}
	p.queueEvents(st.ends, img, meta)
	st.objs = p.tracker.AppendActive(st.objs[:0])
	p.zones.Update(st.objs)
	for _, o := range st.objs {
		if p.zones.ZonesChanged(o.ID) && !hasEvent(st.rest, o.ID) {
			st.rest = append(st.rest, track.Event{Type: track.EventUpdate, Before: o, After: o})
		}
	}
	p.queueEvents(st.rest, img, meta)
	if p.zones.Changed() {
		p.box.Send(p.zoneCounts.Update(p.zones.Counts(), p.clock.Now())...)
	}
}

// opensOrEnds reports whether evs has a "new" or an "end".
func opensOrEnds(evs []track.Event) bool {
	for _, ev := range evs {
		if ev.Type != track.EventUpdate {
			return true
		}
	}
	return false
}

func hasEvent(evs []track.Event, id string) bool {
	for _, ev := range evs {
		if ev.After.ID == id {
			return true
		}
	}
	return false
}

// queueEvents spools the events of one frame, the snapshots they call for
// (img is the frame; nil when there is none) and the counts that changed.
func (p *pipeline) queueEvents(evs []track.Event, img *gocv.Mat, meta report.Meta) {
	if len(evs) == 0 {
		return
	}
	now := p.clock.Now()
	for _, ev := range evs {
		if meta.Camera == "" {
			meta = p.lastMeta()
		}
		p.box.Send(p.encoder.Message(meta, ev))
		if p.logPub {
			p.log.Info("event", "type", ev.Type, "id", ev.After.ID, "label", ev.After.Label, "score", ev.After.Score)
		}
		if img != nil && p.snapshots.Enabled && report.WantsSnapshot(ev) {
			jpeg, err := snapshot.Encode(*img, ev.After, p.snapshots, p.overlay)
			if err != nil {
				p.log.Warn("snapshot failed", "id", ev.After.ID, "err", err)
			} else {
				p.box.Send(report.SnapshotMessage(p.topics, p.name, ev.After.Label, jpeg, now))
			}
		}
	}
	p.box.Send(p.counts.Update(p.tracker.Counts(), now)...)
}

// flushTracks ends every open object and turns motion off (agent
// shutdown).
func (p *pipeline) flushTracks(now time.Time) {
	if p.motion != nil {
		if msg, ok := p.motion.Stop(now); ok {
			p.box.Send(msg)
		}
	}
	if !p.events {
		return
	}
	meta := p.lastMeta()
	meta.Zones = p.zoneLookup
	p.queueEvents(p.tracker.Flush(now), nil, meta)
	p.objects.Store(&[]web.ObjectCount{})
	if p.open != nil {
		p.open.set(p.name, meta, nil)
	}
	if p.zones != nil {
		p.zones.Update(nil)
		p.box.Send(p.zoneCounts.Update(p.zones.Counts(), now)...)
	}
}

// keepAbove keeps the detections scoring at least min, in place.
func keepAbove(dets []detection.Detection, min float32) []detection.Detection {
	kept := dets[:0]
	for _, d := range dets {
		if d.Score >= min {
			kept = append(kept, d)
		}
	}
	return kept
}

func summarize(dets []detection.Detection) string {
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
