package detector_test

import (
	"image"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// referenceInput computes the model input for img the plain way, pixel by
// pixel from a gocv resize: the pad colour outside the resized image, and
// (byte*Scale - Mean[c]) / Std[c] of the byte model channel c reads.
func referenceInput(t *testing.T, img gocv.Mat, spec detection.Spec) []float32 {
	t.Helper()
	w, h := spec.InputWidth, spec.InputHeight
	g, err := detection.NewGeometry(img.Cols(), img.Rows(), w, h, spec.Resize)
	if err != nil {
		t.Fatal(err)
	}
	resized := gocv.NewMat()
	defer resized.Close()
	gocv.Resize(img, &resized, image.Pt(g.ResizedW, g.ResizedH), 0, 0, gocv.InterpolationLinear)
	pad := uint8(114)
	if spec.PadValue != nil {
		pad = uint8(*spec.PadValue)
	}
	out := make([]float32, 3*w*h)
	for c := range 3 {
		src := c // BGR byte read by model channel c
		if spec.ChannelOrder == "rgb" {
			src = 2 - c
		}
		for y := range h {
			for x := range w {
				v := pad
				if rx, ry := x-g.PadLeft, y-g.PadTop; rx >= 0 && ry >= 0 && rx < g.ResizedW && ry < g.ResizedH {
					v = resized.GetVecbAt(ry, rx)[src]
				}
				out[c*w*h+y*w+x] = (float32(v)*spec.Scale - spec.Mean[c]) / spec.Std[c]
			}
		}
	}
	return out
}

// TestPreprocessMatchesReference: every value of the input tensor matches
// the plain computation, for letterbox and stretch, BGR and RGB, with a
// pad colour and per-channel mean and std, including when frames of other
// shapes (the image placed elsewhere) or another destination follow, so
// the padding is rewritten whenever the placement changes.
func TestPreprocessMatchesReference(t *testing.T) {
	dog := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg")) // 768x576
	tall := dog.Region(image.Rect(300, 100, 500, 500))                       // 200x400
	defer tall.Close()
	wide := dog.Region(image.Rect(0, 200, 768, 400)) // 768x200
	defer wide.Close()
	// At the input width: no resize in letterbox (the 319 wide one one
	// pixel of right padding, the only change of placement), the height
	// alone resized in stretch.
	exact := dog.Region(image.Rect(100, 100, 420, 356)) // 320x256
	defer exact.Close()
	narrower := dog.Region(image.Rect(100, 100, 419, 356)) // 319x256
	defer narrower.Close()
	flat := dog.Region(image.Rect(100, 100, 420, 200)) // 320x100
	defer flat.Close()
	pad := 90
	for _, tc := range []struct {
		order  string
		resize detection.ResizeMode
	}{{"rgb", detection.ResizeLetterbox}, {"bgr", detection.ResizeLetterbox}, {"bgr", detection.ResizeStretch}} {
		spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 320, InputHeight: 256, ChannelOrder: tc.order,
			Scale: 1.0 / 255, Mean: []float32{0.1, 0.2, 0.3}, Std: []float32{0.5, 0.6, 0.7}, PadValue: &pad, Resize: tc.resize}.WithDefaults()
		p, err := detector.NewPreprocessor(spec)
		if err != nil {
			t.Fatal(err)
		}
		dst, other := make([]float32, p.Len()), make([]float32, p.Len())
		for _, step := range []struct {
			name string
			img  gocv.Mat
			dst  []float32
		}{{"dog", dog, dst}, {"tall", tall, dst}, {"wide", wide, dst}, {"exact", exact, dst}, {"narrower", narrower, dst},
			{"flat", flat, dst}, {"dog again", dog, dst}, {"dog into another buffer", dog, other}} {
			if step.name == "dog into another buffer" {
				for j := range other {
					other[j] = -1
				}
			}
			if _, err := p.Run(step.img, step.dst); err != nil {
				t.Fatalf("%s %s, %s: %v", tc.order, tc.resize, step.name, err)
			}
			want := referenceInput(t, step.img, spec)
			for j := range want {
				if d := step.dst[j] - want[j]; d > 1e-6 || d < -1e-6 {
					t.Fatalf("%s %s, %s: value %d (channel %d, y %d, x %d) = %v, want %v", tc.order, tc.resize, step.name,
						j, j/(320*256), j%(320*256)/320, j%320, step.dst[j], want[j])
				}
			}
		}
		p.Close()
	}
}

// TestPreprocessPadDefaultsTo114: a spec given to NewPreprocessor without a
// pad value (the one field WithDefaults fills that it does not require)
// pads with grey 114, the YOLO default.
func TestPreprocessPadDefaultsTo114(t *testing.T) {
	spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 64, InputHeight: 64}.WithDefaults()
	spec.PadValue = nil
	p, err := detector.NewPreprocessor(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	img := gocv.NewMatWithSize(32, 64, gocv.MatTypeCV8UC3) // letterboxed with 16 rows of padding above and below
	defer img.Close()
	dst := make([]float32, p.Len())
	if _, err := p.Run(img, dst); err != nil {
		t.Fatal(err)
	}
	want := float32(114) * spec.Scale
	for c := range 3 {
		if got := dst[c*64*64]; got-want > 1e-6 || want-got > 1e-6 {
			t.Errorf("channel %d: padding = %v, want %v (grey 114)", c, got, want)
		}
	}
}
