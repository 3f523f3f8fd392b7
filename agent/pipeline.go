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
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/agent/zone"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/overlay"
	"github.com/edgedet/edgedet/motion"
)

// stageObserver records per-frame figures (metrics.Camera).
type stageObserver interface {
	ObserveStages(pre, infer, post time.Duration)
	AddDetection(classID int)
}

// liveFeed receives processed frames for the live view (web.Feed).
type liveFeed interface {
	Wanted() bool
	Offer(img gocv.Mat, dets []detector.Detection, motion []image.Rectangle)
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
	// Motion gating (nil motion: every frame goes to the detector). The
	// motion detector, lastCheck, areas and bufs belong to prepare.
	motion    *motion.Detector
	regions   bool          // run the detector on crops around motion and tracked objects
	recheck   time.Duration // tracked objects are looked at again at least this often
	inputSide int           // the model input's larger side: the smallest crop
	lastCheck time.Time
	areas     []image.Rectangle
	bufs      [2]itemBufs // per in-flight frame: prepare fills one while finish reads the other
	bufIdx    int
	// objMask drops detections (nil: none); zones follow tracked objects
	// (nil: the camera has none).
	objMask    *zone.Mask
	zones      *zone.Tracker
	zoneCounts *zone.Counts
	zoneLookup func(id string) (current, entered []string)
	// overlay is what live view and snapshots draw to tune motion and
	// zones: the zones, and (finish's) the current frame's motion boxes.
	overlay overlay.Overlay
	// Written by finish, read by prepare: how many objects are tracked and
	// where (a still object's own motion is no news; crops cover them).
	active       atomic.Int32
	trackedMu    sync.Mutex
	trackedBoxes []image.Rectangle // every tracked object
	stillBoxes   []image.Rectangle // those that did not move between their last two detections
	lastBoxes    []idBox           // finish's: each object's box at the previous detection
	nextBoxes    []idBox
	// processedHook runs after every frame the detector processed;
	// aliveHook after a frame skipped because detection is off (the
	// pipeline is alive, so the watchdog must keep being fed).
	processedHook, aliveHook func()
	model                    string
	prec                     string
	log                      *slog.Logger

	started       time.Time     // wall clock, shown on the status page
	startedMono   time.Duration // the same instant on clock.Mono: health is judged from it
	processed     atomic.Uint64
	skippedOff    atomic.Uint64 // frames not processed because detection is off
	gated         atomic.Uint64 // frames not processed because nothing moved
	inferences    atomic.Uint64 // detector runs (with regions, one per crop)
	published     atomic.Uint64
	publishFailed atomic.Uint64
	inferNanos    atomic.Int64
	preNanos      atomic.Int64
	postNanos     atomic.Int64
	lastWidth     atomic.Int64
	lastHeight    atomic.Int64
	// The last frame processed or skipped because detection is off, on
	// the wall clock (unix ns, shown; 0: none yet) and on clock.Mono (ns,
	// what health is judged from).
	lastProgressWall atomic.Int64
	lastProgressMono atomic.Int64
	objects          atomic.Pointer[[]string] // labels of the objects tracked now, for the live page
	rates            liveRates
}

// configure sets up the camera's motion gating, object masks and zones.
func (p *pipeline) configure(cc CameraConfig, topics topic.Tree, spec detector.Spec) error {
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
		if p.motion, err = motion.NewDetector(cc.Motion.Config); err != nil {
			return err
		}
		p.regions, p.recheck = cc.Motion.Regions, cc.Motion.Recheck.D()
		p.inputSide = max(spec.InputWidth, spec.InputHeight)
	}
	return nil
}

// progressed records that a frame went through (processed, or skipped
// because detection is off).
func (p *pipeline) progressed() {
	p.lastProgressMono.Store(int64(p.clock.Mono()))
	p.lastProgressWall.Store(p.clock.Now().UnixNano())
}

func (p *pipeline) avgInferenceMs() float64 {
	n := p.processed.Load()
	if n == 0 {
		return 0
	}
	return float64(p.inferNanos.Load()) / float64(n) / 1e6
}

// prepared is a frame on its way from prepare to finish. job holds its
// preprocessed input, or regions the crops finish runs the detector on;
// with neither, the frame is not run: gated (nothing moved) or detection
// is off. motion is what the motion detector found.
type prepared struct {
	job     *detector.Job
	frame   *camera.Frame
	gated   bool
	motion  []image.Rectangle
	regions []image.Rectangle
}

// itemBufs hold one in-flight frame's motion boxes and crops.
type itemBufs struct {
	motion, regions []image.Rectangle
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
		return it, nil
	}
	if p.motion != nil {
		p.gate(&it)
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

// unexplained reports whether some motion box is not just a tracked
// object standing still: the background learns a stopped object only
// slowly, and until it has, the object itself reads as motion. A box that
// lies within the box (grown by a tenth) of an object that did not move
// between its last two detections (and covers less than half the frame) is
// that; once the object moves on, its motion leaves the box and the
// detector runs again. The price: something small moving right in front of
// a still object waits for the next recheck.
func (p *pipeline) unexplained(boxes []image.Rectangle) bool {
	if len(boxes) == 0 {
		return false
	}
	p.trackedMu.Lock()
	defer p.trackedMu.Unlock()
next:
	for _, m := range boxes {
		for _, t := range p.stillBoxes {
			g := image.Pt(t.Dx()/10+2, t.Dy()/10+2)
			if m.In(image.Rectangle{Min: t.Min.Sub(g), Max: t.Max.Add(g)}) {
				continue next
			}
		}
		return true
	}
	return false
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

// gate runs the motion detector on it's frame and decides: gated (nothing
// moved and no tracked object is due for a recheck), crops to run (regions
// mode), or the whole frame.
func (p *pipeline) gate(it *prepared) {
	b := &p.bufs[p.bufIdx]
	p.bufIdx ^= 1
	f := it.frame
	b.motion = p.motion.Detect(f.Mat, b.motion[:0])
	it.motion = b.motion
	recheck := p.active.Load() > 0 && f.Time.Sub(p.lastCheck) >= p.recheck
	if !p.unexplained(it.motion) && !recheck {
		it.gated = true
		return
	}
	p.lastCheck = f.Time
	if !p.regions {
		return
	}
	p.areas = append(p.areas[:0], it.motion...)
	p.trackedMu.Lock()
	p.areas = append(p.areas, p.trackedBoxes...)
	p.trackedMu.Unlock()
	b.regions = planRegions(p.areas, f.Mat.Cols(), f.Mat.Rows(), p.inputSide, b.regions[:0])
	it.regions = b.regions
	if len(it.regions) == 0 {
		it.gated = true
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
	dets, crop          []detector.Detection
	evs, ends, rest     []track.Event
	objs                []track.Object
	buf                 []byte
	detectErrs, pubErrs errorLimiter
}

func newFrameState() *frameState {
	return &frameState{dets: make([]detector.Detection, 0, 128), crop: make([]detector.Detection, 0, 128),
		evs: make([]track.Event, 0, 16), ends: make([]track.Event, 0, 16), rest: make([]track.Event, 0, 16),
		objs: make([]track.Object, 0, 32), buf: make([]byte, 0, 4096)}
}

// process finishes one prepared frame: inference (whole frame or crops),
// decoding, masks, metrics, live view, tracking, zones and publishing. It
// releases the job and the frame.
func (p *pipeline) process(ctx context.Context, it prepared, st *frameState) {
	f := it.frame
	if it.job == nil && len(it.regions) == 0 {
		// Not run: nothing moved, or detection is off. Objects still end
		// after max_age.
		if it.gated {
			p.gated.Add(1)
		} else {
			p.skippedOff.Add(1)
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
		meta := report.Meta{Camera: p.name, Model: p.model, Precision: p.prec,
			Width: int(p.lastWidth.Load()), Height: int(p.lastHeight.Load())}
		if p.events {
			p.track(at, nil, false, nil, meta, st)
		}
		p.stream.Release(f)
		return
	}
	p.overlay.Motion = it.motion
	var res detector.Result
	var err error
	if len(it.regions) > 0 {
		res, err = p.detectRegions(ctx, f.Mat, it.regions, st)
	} else {
		err = it.job.Infer(ctx)
		res = it.job.Decode(st.dets)
		p.det.Release(it.job)
		p.inferences.Add(1)
	}
	if err != nil {
		p.stream.Release(f)
		if ctx.Err() == nil {
			st.detectErrs.log(p.log, "detect failed", err)
		}
		return
	}
	dets := keepAbove(p.objMask.Filter(res.Detections), p.ctrl.Threshold())
	st.dets = dets
	p.processed.Add(1)
	p.progressed()
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
		p.feed.Offer(f.Mat, dets, it.motion)
	}
	meta := report.Meta{Camera: p.name, Model: p.model, Precision: p.prec, Width: res.Width, Height: res.Height}
	if p.events {
		p.track(f.Time, dets, true, &f.Mat, meta, st)
	}
	seq, at := f.Seq, f.Time
	p.stream.Release(f)

	if !p.detOpts.Enabled || (len(dets) == 0 && !p.detOpts.PublishEmpty) {
		return
	}
	fr := FrameReport{Time: at, Camera: p.name, Frame: seq, Model: p.model, Precision: p.prec,
		Width: res.Width, Height: res.Height, Timings: t, Detections: dets}
	st.buf = fr.AppendJSON(st.buf[:0])
	msg := publish.Message{Topic: p.detTopic, Payload: st.buf, QoS: p.qos, Retained: p.detOpts.Retain, Time: at}
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
		p.inferences.Add(1)
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
		slices.SortFunc(dets, func(a, b detector.Detection) int { return cmp.Compare(b.Score, a.Score) })
		dets = dedupeRegions(dets, 0.5)
	}
	res.Detections = dets
	return res, nil
}

// track updates the tracker with a frame's detections (ran false: a frame
// the detector did not run on), follows the zones and queues the events,
// snapshots and counts.
func (p *pipeline) track(at time.Time, dets []detector.Detection, ran bool, img *gocv.Mat, meta report.Meta, st *frameState) {
	st.evs = p.tracker.Update(at, dets, st.evs[:0])
	if p.zones == nil {
		p.queueEvents(st.evs, img, meta)
	} else {
		meta.Zones = p.zoneLookup
		// "end" events first, while the zone tracker still knows the
		// zones the object was in; then the zones move on, and objects
		// whose zones changed get an update even if nothing else did.
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
	if p.open != nil && opensOrEnds(st.evs) {
		// The set of open objects changed: persist it, so that after an
		// unclean stop the next start can end them.
		st.objs = p.tracker.AppendActive(st.objs[:0])
		meta.Zones = p.zoneLookup
		p.open.set(p.name, meta, st.objs)
	}
	if p.motion != nil {
		// prepare needs to know what is tracked: gate rechecks, crops cover it.
		if p.zones == nil {
			st.objs = p.tracker.AppendActive(st.objs[:0])
		}
		p.active.Store(int32(len(st.objs)))
		if !ran {
			return // boxes only change when the detector ran
		}
		frameArea := meta.Width * meta.Height
		p.trackedMu.Lock()
		p.trackedBoxes, p.stillBoxes, p.nextBoxes = p.trackedBoxes[:0], p.stillBoxes[:0], p.nextBoxes[:0]
		for _, o := range st.objs {
			b := o.Box
			r := image.Rect(int(b.X1), int(b.Y1), int(b.X2+0.5), int(b.Y2+0.5))
			p.trackedBoxes = append(p.trackedBoxes, r)
			for _, prev := range p.lastBoxes {
				// An object covering most of the frame explains nothing: it
				// would hide every other motion.
				if prev.id == o.ID && still(prev.box, r) && 2*r.Dx()*r.Dy() < frameArea {
					p.stillBoxes = append(p.stillBoxes, r)
					break
				}
			}
			p.nextBoxes = append(p.nextBoxes, idBox{o.ID, r})
		}
		p.lastBoxes, p.nextBoxes = p.nextBoxes, p.lastBoxes
		p.trackedMu.Unlock()
	}
}

// idBox is a tracked object's box at a detection.
type idBox struct {
	id  string
	box image.Rectangle
}

// still reports whether an object's box barely moved between two
// detections: its centre by at most 4 px or 3 % of its size.
func still(a, b image.Rectangle) bool {
	tol := max(4, max(b.Dx(), b.Dy())*3/100)
	dx := (a.Min.X + a.Max.X - b.Min.X - b.Max.X) / 2
	dy := (a.Min.Y + a.Max.Y - b.Min.Y - b.Max.Y) / 2
	return dx*dx+dy*dy <= tol*tol
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
			meta = report.Meta{Camera: p.name, Model: p.model, Precision: p.prec,
				Width: int(p.lastWidth.Load()), Height: int(p.lastHeight.Load())}
		}
		p.box.Send(report.EventMessage(p.topics, meta, ev))
		if p.logPub {
			p.log.Info("event", "type", ev.Type, "id", ev.After.ID, "label", ev.After.Label, "score", ev.After.Score)
		}
		if img != nil && p.snapshots.Enabled && report.WantsSnapshot(ev) {
			jpeg, err := report.SnapshotWithOverlay(*img, ev.After, p.snapshots, p.overlay)
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
	if !p.events {
		return
	}
	meta := report.Meta{Camera: p.name, Model: p.model, Precision: p.prec,
		Width: int(p.lastWidth.Load()), Height: int(p.lastHeight.Load()), Zones: p.zoneLookup}
	p.queueEvents(p.tracker.Flush(now), nil, meta)
	if p.open != nil {
		p.open.set(p.name, meta, nil)
	}
	if p.zones != nil {
		p.zones.Update(nil)
		p.box.Send(p.zoneCounts.Update(p.zones.Counts(), now)...)
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
