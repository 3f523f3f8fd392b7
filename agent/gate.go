package agent

import (
	"image"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/motion"
)

// gate decides, from motion and from what is tracked, which frames of a
// camera the detector runs on and, in regions mode, on which crops. Its
// two sides run on the pipeline's two goroutines: prepare calls decide
// before a frame is preprocessed, finish calls observe once the frame's
// objects are tracked. decide learns from observe how many objects are
// tracked (to recheck them), where (crops cover them) and which of them
// stand still (their own motion is no news).
type gate struct {
	motion    *motion.Detector
	regions   bool          // run the detector on crops around motion and tracked objects
	recheck   time.Duration // tracked objects are looked at again at least this often
	inputSide int           // the model input's larger side: the smallest crop

	// decide's own.
	lastCheck time.Time
	areas     []image.Rectangle
	bufs      [2]itemBufs // per in-flight frame: decide fills one while finish reads the other
	bufIdx    int

	// Written by observe, read by decide.
	active  atomic.Int32 // objects tracked
	mu      sync.Mutex   // guards tracked and still
	tracked []image.Rectangle
	still   []image.Rectangle // tracked objects that did not move between their last two detections

	// observe's own: each object's box at the previous detection, and
	// the next such list being built.
	last, next []idBox
}

// itemBufs hold one in-flight frame's motion boxes and crops.
type itemBufs struct {
	motion, regions []image.Rectangle
}

// idBox is a tracked object's box at a detection.
type idBox struct {
	id  string
	box image.Rectangle
}

// newGate builds the gate of a camera whose motion gating is on; inputSide
// is the model input's larger side.
func newGate(mc MotionConfig, inputSide int) (*gate, error) {
	m, err := motion.NewDetector(mc.Config)
	if err != nil {
		return nil, err
	}
	return &gate{motion: m, regions: mc.Regions, recheck: mc.Recheck.D(), inputSide: inputSide}, nil
}

// close frees the motion detector. It is nil-safe (no gating).
func (g *gate) close() error {
	if g == nil {
		return nil
	}
	return g.motion.Close()
}

// decide runs the motion detector on it's frame and sets it.motion and
// either it.gated (nothing moved and no tracked object is due for a
// recheck), it.regions (the crops to run, regions mode) or neither (the
// whole frame runs).
func (g *gate) decide(it *prepared) {
	b := &g.bufs[g.bufIdx]
	g.bufIdx ^= 1
	f := it.frame
	b.motion = g.motion.Detect(f.Mat, b.motion[:0])
	it.motion = b.motion
	recheck := g.active.Load() > 0 && f.Time.Sub(g.lastCheck) >= g.recheck
	if !g.unexplained(it.motion) && !recheck {
		it.gated = true
		return
	}
	g.lastCheck = f.Time
	if !g.regions {
		return
	}
	g.areas = append(g.areas[:0], it.motion...)
	g.mu.Lock()
	g.areas = append(g.areas, g.tracked...)
	g.mu.Unlock()
	b.regions = planRegions(g.areas, f.Mat.Cols(), f.Mat.Rows(), g.inputSide, b.regions[:0])
	it.regions = b.regions
	if len(it.regions) == 0 {
		it.gated = true
	}
}

// motionOnly runs the motion detector on it's frame and sets it.motion,
// deciding nothing: detection is off, but the camera's motion topic still
// follows the scene (and the background stays current).
func (g *gate) motionOnly(it *prepared) {
	b := &g.bufs[g.bufIdx]
	g.bufIdx ^= 1
	b.motion = g.motion.Detect(it.frame.Mat, b.motion[:0])
	it.motion = b.motion
}

// unexplained reports whether some motion box is not just a tracked
// object standing still: the background learns a stopped object only
// slowly, and until it has, the object itself reads as motion. A box that
// lies within the box (grown by a tenth) of an object that did not move
// between its last two detections (and covers less than half the frame) is
// that; once the object moves on, its motion leaves the box and the
// detector runs again. The price: something small moving right in front of
// a still object waits for the next recheck.
func (g *gate) unexplained(boxes []image.Rectangle) bool {
	if len(boxes) == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
next:
	for _, m := range boxes {
		for _, t := range g.still {
			grow := image.Pt(t.Dx()/10+2, t.Dy()/10+2)
			if m.In(image.Rectangle{Min: t.Min.Sub(grow), Max: t.Max.Add(grow)}) {
				continue next
			}
		}
		return true
	}
	return false
}

// observe records the objects tracked after a frame (ran false: the
// detector did not run on it, so their boxes are unchanged) in a frame of
// frameArea pixels.
func (g *gate) observe(objs []track.Object, ran bool, frameArea int) {
	g.active.Store(int32(len(objs)))
	if !ran {
		return // boxes only change when the detector ran
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tracked, g.still, g.next = g.tracked[:0], g.still[:0], g.next[:0]
	for _, o := range objs {
		b := o.Box
		r := image.Rect(int(b.X1), int(b.Y1), int(b.X2+0.5), int(b.Y2+0.5))
		g.tracked = append(g.tracked, r)
		for _, prev := range g.last {
			// An object covering most of the frame explains nothing: it
			// would hide every other motion.
			if prev.id == o.ID && still(prev.box, r) && 2*r.Dx()*r.Dy() < frameArea {
				g.still = append(g.still, r)
				break
			}
		}
		g.next = append(g.next, idBox{o.ID, r})
	}
	g.last, g.next = g.next, g.last
}

// still reports whether an object's box barely moved between two
// detections: its centre by at most 4 px or 3 % of its size.
func still(a, b image.Rectangle) bool {
	tol := max(4, max(b.Dx(), b.Dy())*3/100)
	dx := (a.Min.X + a.Max.X - b.Min.X - b.Max.X) / 2
	dy := (a.Min.Y + a.Max.Y - b.Min.Y - b.Max.Y) / 2
	return dx*dx+dy*dy <= tol*tol
}
