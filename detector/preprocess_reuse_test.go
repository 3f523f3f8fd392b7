package detector

import (
	"slices"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
)

// TestPreprocessReuseMatchesFresh: a Preprocessor reused across frames of
// changing size and across destinations writes exactly what a fresh one
// writes, padding included: when the image's height shrinks by a row with
// the top padding unchanged, the row it no longer covers is padding again,
// and a new destination gets its padding even when the geometry is the
// previous frame's.
func TestPreprocessReuseMatchesFresh(t *testing.T) {
	spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 320, InputHeight: 320}.WithDefaults()
	reused, err := NewPreprocessor(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer reused.Close()
	dst := make([]float32, reused.Len())
	for i, step := range []struct {
		w, h   int
		newDst bool
	}{
		{640, 603, false}, // resized 320x302, padded 9 rows on top
		{640, 602, false}, // 320x301, still 9 rows on top: row 310 is padding again
		{640, 602, true},  // the same geometry into a new destination
		{600, 640, false}, // 300x320, padded on the left
	} {
		img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 60, 10, 0), step.h, step.w, gocv.MatTypeCV8UC3)
		if step.newDst {
			dst = make([]float32, reused.Len())
		}
		g, err := reused.Run(img, dst)
		if err != nil {
			img.Close()
			t.Fatal(err)
		}
		fresh, err := NewPreprocessor(spec)
		if err != nil {
			img.Close()
			t.Fatal(err)
		}
		want := make([]float32, fresh.Len())
		_, err = fresh.Run(img, want)
		fresh.Close()
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dst, want) {
			at := 0
			for at < len(dst) && dst[at] == want[at] {
				at++
			}
			t.Errorf("frame %d (%dx%d, geometry %+v): value %d (row %d) = %v, a fresh preprocessor writes %v",
				i, step.w, step.h, g, at, at%(320*320)/320, dst[at], want[at])
		}
	}
}
