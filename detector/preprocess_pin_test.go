package detector

import (
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
)

// ultralyticsPads is the padding rule of Ultralytics' LetterBox (and of
// ../shared/models/yolov8n_*.md), written out independently of
// detection.NewGeometry: the spare width and height are halved and split as
// left = round(dw-0.1), right = round(dw+0.1), so an odd spare puts the
// extra pixel on the right (bottom). Python's round is half-to-even, but
// dw±0.1 is never a tie. (detection's geometry_pin_test.go pins
// NewGeometry against the same rule.)
func ultralyticsPads(dstW, dstH, resizedW, resizedH int) (left, right, top, bottom int) {
	dw := float64(dstW-resizedW) / 2
	dh := float64(dstH-resizedH) / 2
	pyRound := func(v float64) int { // only called with non-ties
		return int(v + 0.5)
	}
	return pyRound(dw - 0.1), pyRound(dw + 0.1), pyRound(dh - 0.1), pyRound(dh + 0.1)
}

// TestLetterboxPreprocessPlacement checks that the preprocessed tensor puts
// the image exactly where the geometry says: padding up to PadLeft-1,
// image from PadLeft to PadLeft+ResizedW-1, padding after; likewise rows.
func TestLetterboxPreprocessPlacement(t *testing.T) {
	for _, size := range [][2]int{{565, 1000}, {1000, 565}, {317, 319}} {
		img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 200, 200, 0), size[1], size[0], gocv.MatTypeCV8UC3)
		spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 320, InputHeight: 320}.WithDefaults()
		p, err := NewPreprocessor(spec)
		if err != nil {
			img.Close()
			t.Fatal(err)
		}
		dst := make([]float32, p.Len())
		g, err := p.Run(img, dst)
		img.Close()
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		left, right, top, bottom := ultralyticsPads(320, 320, g.ResizedW, g.ResizedH)
		pad, pix := float32(114)/255, float32(200)/255
		for y := 0; y < 320; y++ {
			for x := 0; x < 320; x++ {
				want := pix
				if x < left || x >= 320-right || y < top || y >= 320-bottom {
					want = pad
				}
				if got := dst[y*320+x]; math.Abs(float64(got-want)) > 1e-6 {
					t.Fatalf("%dx%d: input pixel (%d,%d) = %v, want %v (pads l%d r%d t%d b%d)",
						size[0], size[1], x, y, got, want, left, right, top, bottom)
				}
			}
		}
	}
}
