package detector

import (
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
)

// TestDrawOddInput: a negative class id (indexing the palette panicked) and
// an empty image are drawn without a crash.
func TestDrawOddInput(t *testing.T) {
	dets := []detection.Detection{{ClassID: -7, Label: "x", Score: 0.5, Box: detection.Box{X1: 1, Y1: 1, X2: 20, Y2: 20}}}
	img := gocv.NewMatWithSize(40, 40, gocv.MatTypeCV8UC3)
	defer img.Close()
	Draw(&img, dets)
	grey := img.Reshape(1, 0)
	defer grey.Close()
	if gocv.CountNonZero(grey) == 0 {
		t.Error("nothing drawn")
	}
	empty := gocv.NewMat()
	defer empty.Close()
	Draw(&empty, dets)
	if !empty.Empty() {
		t.Error("empty image changed")
	}
}
