// Package motion is the cheap motion detector that runs on every camera
// frame so the neural network only looks where something moved (Frigate's
// design). A Detector keeps a running-average background of a small grey
// copy of the frame and reports the boxes, in frame pixels, where the frame
// differs from it.
//
// Per frame: downscale to Config.FrameHeight keeping the aspect ratio →
// grey → zero the masked pixels → 3x3 Gaussian blur → absolute difference
// to the background → threshold → zero the masked pixels again → 3x3
// dilate → external contours → bounding boxes of the contours whose area
// reaches MinArea, scaled back to frame pixels. Frames at least 4 times
// the motion size are downscaled in two steps, INTER_LINEAR to twice the
// motion size then INTER_AREA, which averages 16 samples per motion pixel
// at a fraction of a single INTER_AREA's cost (0.3 ms instead of 8 ms for
// 1080p on a 2-vCPU EPYC); smaller frames take one INTER_AREA.
//
// The background learns each frame at LearningRate, except where the
// frame changed since the previous frame: a moving object does not smear
// into the background (no trail behind it), while something that stops
// moving is absorbed at LearningRate.
//
// When more than LightningThreshold of the unmasked frame changes at once
// the background is reset to the frame and nothing is reported
// (Calibrating). For the frame right after a reset the limit is halved, so
// an exposure ramp over a few frames resets again instead of flooding the
// pipeline with motion. The first frame, and the first after a change of
// frame size, is such a reset too.
//
// An object that is in the frame when the background is reset leaves a
// "ghost" where it stood once it moves on: it is reported, beside the
// object, until the background learns it at LearningRate. That is on
// purpose: learning faster after a reset (Frigate learns at 0.2 while
// calibrating) also absorbs slow objects into the background and loses
// them, and a ghost only costs the detector a look at an empty region,
// while a lost object is a missed detection.
package motion

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// Detector finds motion in a stream of frames from one camera. It is not
// safe for concurrent use: the camera's pipeline stage owns it, calls
// Detect once per frame and Close when done. It holds native OpenCV
// buffers, sized for the current frame size, that only Close frees.
type Detector struct {
	cfg Config

	closed      bool
	calibrating bool
	hasBG       bool // the background holds a frame of the current size
	settling    bool // the previous frame reset the background

	frame    image.Point // frame size the buffers are built for; 0 before the first frame
	small    image.Point // motion resolution
	mid      image.Point // intermediate size of the two-step downscale; 0 for one step
	sx, sy   float64     // frame pixels per motion pixel
	minArea  float64     // MinArea at the motion resolution
	valid    int         // unmasked pixels at the motion resolution
	hasMask  bool
	maskKeep gocv.Mat // CV_8UC1 at motion resolution: 255 where motion counts, 0 masked

	scaled    gocv.Mat // frame after the first downscale step (BGR or grey)
	resized   gocv.Mat // frame at motion resolution (BGR or grey)
	plain     gocv.Mat // resized as CV_8UC1
	masked    gocv.Mat // plain with the masked pixels zeroed
	grey      gocv.Mat // CV_8UC1, masked and blurred: what is compared
	prev      gocv.Mat // grey of the previous frame
	bg        gocv.Mat // CV_32FC1 running average
	bg8       gocv.Mat // bg rounded to CV_8UC1
	diff      gocv.Mat // |grey - bg8|, then |grey - prev|
	changed   gocv.Mat // threshold of diff
	dilated   gocv.Mat // dilated changed pixels: what the contours come from
	still     gocv.Mat // pixels that did not change since the previous frame
	learn     gocv.Mat // still, eroded: where the background learns
	kernel    gocv.Mat // 3x3 rectangle for dilate and erode
	hierarchy gocv.Mat // FindContours output, unused but reused
}

// settleFactor scales LightningThreshold for the frame right after a reset.
const settleFactor = 0.5

// NewDetector returns a Detector for cfg, which should already have
// WithDefaults applied; it returns Validate's error otherwise. The native
// buffers are sized on the first frame.
func NewDetector(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new motion detector: %w", err)
	}
	masks := make([][]Point, len(cfg.Masks))
	for i, p := range cfg.Masks {
		masks[i] = append([]Point(nil), p...)
	}
	cfg.Masks = masks // never share the caller's slices
	d := &Detector{cfg: cfg}
	for _, m := range d.mats() {
		if m == &d.kernel {
			*m = gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3))
		} else {
			*m = gocv.NewMat()
		}
	}
	return d, nil
}

// mats lists every Mat the Detector owns, for construction and Close.
func (d *Detector) mats() []*gocv.Mat {
	return []*gocv.Mat{
		&d.maskKeep, &d.scaled, &d.resized, &d.plain, &d.masked, &d.grey, &d.prev, &d.bg, &d.bg8,
		&d.diff, &d.changed, &d.dilated, &d.still, &d.learn, &d.kernel, &d.hierarchy,
	}
}

// Close frees the native buffers. It is idempotent and nil-safe; Detect
// after Close reports nothing.
func (d *Detector) Close() error {
	if d == nil || d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, m := range d.mats() {
		if err := m.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close motion detector: %w", err)
	}
	return nil
}

// Calibrating reports whether the last Detect reset the background instead
// of looking for motion: on the first frame (or the first after a size
// change) and when a global change (lights, IR switch) changed more than
// LightningThreshold of the frame.
func (d *Detector) Calibrating() bool { return d.calibrating }

// Detect finds motion in frame and appends the motion boxes, in frame
// pixels, to dst[:0]. frame is BGR (CV_8UC3); grey (CV_8UC1) and BGRA
// (CV_8UC4) work too. Other types, an empty frame, or a closed Detector
// give no boxes and leave the state untouched. The frame size may change
// between calls: the state is then rebuilt and that frame only starts the
// new background. Detect does not retain frame. In steady state (same
// frame size, dst with enough capacity) it makes no Go heap allocations.
func (d *Detector) Detect(frame gocv.Mat, dst []image.Rectangle) []image.Rectangle {
	dst = dst[:0]
	d.calibrating = false
	if d.closed || frame.Empty() {
		return dst
	}
	var code gocv.ColorConversionCode
	switch frame.Type() {
	case gocv.MatTypeCV8UC3:
		code = gocv.ColorBGRToGray
	case gocv.MatTypeCV8UC4:
		code = gocv.ColorBGRAToGray
	case gocv.MatTypeCV8UC1:
		code = -1
	default:
		return dst
	}
	if size := image.Pt(frame.Cols(), frame.Rows()); size != d.frame {
		d.resize(size)
	}
	if d.valid == 0 { // everything is masked
		return dst
	}
	d.prepare(frame, code)

	if !d.hasBG {
		d.reset()
		d.hasBG = true
		return dst
	}

	t := float32(d.cfg.Threshold) - 0.5 // THRESH_BINARY is "> t": this makes it ">= Threshold"
	d.bg.ConvertTo(&d.bg8, gocv.MatTypeCV8UC1)
	gocv.AbsDiff(d.grey, d.bg8, &d.diff)
	gocv.Threshold(d.diff, &d.changed, t, 255, gocv.ThresholdBinary)
	if d.hasMask {
		gocv.BitwiseAnd(d.changed, d.maskKeep, &d.changed)
	}
	gocv.Dilate(d.changed, &d.dilated, d.kernel)

	limit := d.cfg.LightningThreshold
	if d.settling {
		limit *= settleFactor
	}
	if float64(gocv.CountNonZero(d.dilated)) > limit*float64(d.valid) {
		d.reset()
		return dst
	}
	d.settling = false

	contours := gocv.FindContoursWithParams(d.dilated, &d.hierarchy, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	for i, n := 0, contours.Size(); i < n; i++ {
		c := contours.At(i)
		if gocv.ContourArea(c) < d.minArea {
			continue
		}
		dst = append(dst, d.toFrame(gocv.BoundingRect(c)))
	}
	contours.Close()

	// Learn where the frame did not change since the previous frame (the
	// erode grows the changing areas by a pixel).
	gocv.AbsDiff(d.grey, d.prev, &d.diff)
	gocv.Threshold(d.diff, &d.still, t, 255, gocv.ThresholdBinaryInv)
	gocv.Erode(d.still, &d.learn, d.kernel)
	gocv.AccumulatedWeightedWithMask(d.grey, &d.bg, d.cfg.LearningRate, d.learn)
	d.grey.CopyTo(&d.prev)
	return dst
}

// reset makes the current grey frame the background and reports
// calibrating.
func (d *Detector) reset() {
	d.grey.ConvertTo(&d.bg, gocv.MatTypeCV32FC1)
	d.grey.CopyTo(&d.prev)
	d.calibrating = true
	d.settling = true
}

// prepare fills d.grey from frame: downscaled, grey, masked, blurred.
func (d *Detector) prepare(frame gocv.Mat, code gocv.ColorConversionCode) {
	src := frame
	if d.mid != (image.Point{}) {
		gocv.Resize(src, &d.scaled, d.mid, 0, 0, gocv.InterpolationLinear)
		src = d.scaled
	}
	gocv.Resize(src, &d.resized, d.small, 0, 0, gocv.InterpolationArea)
	src = d.resized
	if code >= 0 {
		gocv.CvtColor(src, &d.plain, code)
		src = d.plain
	}
	if d.hasMask {
		// Zero masked pixels before the blur, so whatever happens inside
		// a mask does not bleed into the pixels around it.
		gocv.BitwiseAnd(src, d.maskKeep, &d.masked)
		src = d.masked
	}
	gocv.GaussianBlur(src, &d.grey, image.Pt(3, 3), 1, 1, gocv.BorderReplicate)
}

// resize rebuilds the size-dependent state for frames of size frame.
func (d *Detector) resize(frame image.Point) {
	d.frame = frame
	d.hasBG = false
	h := min(d.cfg.FrameHeight, frame.Y)
	w := max(1, int(math.Round(float64(frame.X)*float64(h)/float64(frame.Y))))
	d.small = image.Pt(w, h)
	d.mid = image.Point{}
	if frame.Y >= 4*h && frame.X >= 4*w {
		d.mid = image.Pt(2*w, 2*h)
	}
	d.sx = float64(frame.X) / float64(w)
	d.sy = float64(frame.Y) / float64(h)
	if d.cfg.MinArea > 0 {
		d.minArea = float64(d.cfg.MinArea) / (d.sx * d.sy)
	} else {
		d.minArea = DefaultMinAreaFraction * float64(w*h)
	}

	d.maskKeep.Close()
	d.maskKeep = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), h, w, gocv.MatTypeCV8UC1)
	d.hasMask = len(d.cfg.Masks) > 0
	d.valid = w * h
	if !d.hasMask {
		return
	}
	// Vertices in motion pixels with 4 fractional bits: frame pixel
	// centre x maps to (x+0.5)*w/W - 0.5.
	const shift = 4
	polys := make([][]image.Point, len(d.cfg.Masks))
	for i, poly := range d.cfg.Masks {
		polys[i] = make([]image.Point, len(poly))
		for j, p := range poly {
			polys[i][j] = image.Pt(
				int(math.Round(((float64(p[0])+0.5)/d.sx-0.5)*(1<<shift))),
				int(math.Round(((float64(p[1])+0.5)/d.sy-0.5)*(1<<shift))),
			)
		}
	}
	pv := gocv.NewPointsVectorFromPoints(polys)
	gocv.FillPolyWithParams(&d.maskKeep, pv, color.RGBA{}, gocv.Line8, shift, image.Point{})
	pv.Close()
	// Grow the masked area by a pixel: pixels only partly inside a
	// polygon mix masked and unmasked content.
	gocv.Erode(d.maskKeep, &d.maskKeep, d.kernel)
	d.valid = gocv.CountNonZero(d.maskKeep)
}

// toFrame scales a box at motion resolution to frame pixels, rounding
// outwards and clipping to the frame.
func (d *Detector) toFrame(r image.Rectangle) image.Rectangle {
	out := image.Rect(
		int(math.Floor(float64(r.Min.X)*d.sx)),
		int(math.Floor(float64(r.Min.Y)*d.sy)),
		int(math.Ceil(float64(r.Max.X)*d.sx)),
		int(math.Ceil(float64(r.Max.Y)*d.sy)),
	)
	return out.Intersect(image.Rectangle{Max: d.frame})
}
