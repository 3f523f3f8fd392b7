package detector

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/cvsafe"
)

// Preprocessor turns BGR frames into a model's NCHW float32 input as a Spec
// describes: resize (letterbox or stretch), channel order, scale, mean/std.
// It keeps its scratch Mat between calls, so steady-state calls allocate
// nothing; it is not safe for concurrent use. Close frees the scratch Mat.
//
// The quantizer's calibration uses this same type, so calibration frames are
// prepared exactly as the detector prepares them.
type Preprocessor struct {
	spec    detection.Spec
	w, h    int
	lut     [3][256]float32 // per model channel: value for each 0..255 byte
	srcChan [3]int          // model channel c reads BGR byte srcChan[c]
	resized gocv.Mat
	last    detection.Geometry // geometry of the previous call: padding is rewritten only when it changes
	lastDst *float32           // and the destination it was written to
	valid   bool
}

// NewPreprocessor validates spec (which must be complete: see
// Spec.WithDefaults, with input size set) and builds the lookup tables.
func NewPreprocessor(spec detection.Spec) (*Preprocessor, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("preprocessing spec: %w", err)
	}
	if spec.ChannelOrder == "" || spec.Scale == 0 || spec.Mean == nil || spec.Std == nil || spec.Resize == "" {
		return nil, fmt.Errorf("preprocessing spec is incomplete (call Spec.WithDefaults): %+v", spec)
	}
	if spec.InputWidth <= 0 || spec.InputHeight <= 0 {
		return nil, fmt.Errorf("preprocessing spec: input size %dx%d not set", spec.InputWidth, spec.InputHeight)
	}
	p := &Preprocessor{spec: spec, w: spec.InputWidth, h: spec.InputHeight, resized: gocv.NewMat()}
	p.srcChan = [3]int{0, 1, 2}
	if spec.ChannelOrder == "rgb" {
		p.srcChan = [3]int{2, 1, 0}
	}
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			p.lut[c][v] = (float32(v)*spec.Scale - spec.Mean[c]) / spec.Std[c]
		}
	}
	return p, nil
}

// Spec returns the spec the preprocessor was built with.
func (p *Preprocessor) Spec() detection.Spec { return p.spec }

// Len is the number of float32 values Run writes: 3*H*W.
func (p *Preprocessor) Len() int { return 3 * p.w * p.h }

// Run resizes img (BGR, 8-bit, 3 channels) into dst (len Len, CHW) and
// returns the geometry that maps model-input boxes back to img's pixels.
func (p *Preprocessor) Run(img gocv.Mat, dst []float32) (detection.Geometry, error) {
	if len(dst) != p.Len() {
		return detection.Geometry{}, fmt.Errorf("preprocess: destination has %d values, want %d", len(dst), p.Len())
	}
	if img.Empty() {
		return detection.Geometry{}, fmt.Errorf("preprocess: empty image")
	}
	if img.Type() != gocv.MatTypeCV8UC3 {
		return detection.Geometry{}, fmt.Errorf("preprocess: image type %v, want 8-bit BGR (CV_8UC3)", img.Type())
	}
	g, err := detection.NewGeometry(img.Cols(), img.Rows(), p.w, p.h, p.spec.Resize)
	if err != nil {
		return detection.Geometry{}, fmt.Errorf("preprocess: %w", err)
	}
	src := img
	if g.ResizedW != img.Cols() || g.ResizedH != img.Rows() {
		if err := cvsafe.Resize(img, &p.resized, image.Pt(g.ResizedW, g.ResizedH), gocv.InterpolationLinear); err != nil {
			return detection.Geometry{}, fmt.Errorf("preprocess: %w", err)
		}
		src = p.resized
	} else if !img.IsContinuous() {
		// A region of a larger frame (Mat.Region) already at the input
		// size: copy it into contiguous memory.
		img.CopyTo(&p.resized)
		src = p.resized
	}
	pix, err := src.DataPtrUint8()
	if err != nil {
		return detection.Geometry{}, fmt.Errorf("preprocess: %w", err)
	}
	if !p.valid || p.lastDst != &dst[0] || p.last.PadLeft != g.PadLeft || p.last.PadTop != g.PadTop ||
		p.last.ResizedW != g.ResizedW || p.last.ResizedH != g.ResizedH {
		p.fillPadding(dst)
		p.last, p.lastDst, p.valid = g, &dst[0], true
	}
	plane := p.w * p.h
	l0, l1, l2 := &p.lut[0], &p.lut[1], &p.lut[2]
	s0, s1, s2 := p.srcChan[0], p.srcChan[1], p.srcChan[2]
	rw := g.ResizedW
	for y := 0; y < g.ResizedH; y++ {
		row := pix[y*rw*3 : (y+1)*rw*3]
		off := (y+g.PadTop)*p.w + g.PadLeft
		d0 := dst[off : off+rw]
		d1 := dst[plane+off : plane+off+rw]
		d2 := dst[2*plane+off : 2*plane+off+rw]
		for x := range d0 {
			px := row[x*3 : x*3+3]
			d0[x] = l0[px[s0]]
			d1[x] = l1[px[s1]]
			d2[x] = l2[px[s2]]
		}
	}
	return g, nil
}

// fillPadding sets the whole input to the pad colour; Run then overwrites
// the image area. Called only when the image placement changes.
func (p *Preprocessor) fillPadding(dst []float32) {
	pad := 114
	if p.spec.PadValue != nil {
		pad = *p.spec.PadValue
	}
	plane := p.w * p.h
	for c := 0; c < 3; c++ {
		v := p.lut[c][pad]
		d := dst[c*plane : (c+1)*plane]
		for i := range d {
			d[i] = v
		}
	}
}

// Close frees the scratch Mat. It is idempotent.
func (p *Preprocessor) Close() error {
	if p == nil {
		return nil
	}
	if p.resized.Ptr() != nil {
		err := p.resized.Close()
		p.resized = gocv.Mat{}
		return err
	}
	return nil
}
