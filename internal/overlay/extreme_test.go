package overlay

import (
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"
)

// TestDrawExtremeInput: zone points and motion boxes far outside the frame
// (int limits) and a non-ASCII zone name are drawn (clipped) without an
// OpenCV exception, which would abort the process.
func TestDrawExtremeInput(t *testing.T) {
	img := gocv.NewMatWithSize(48, 64, gocv.MatTypeCV8UC3)
	defer img.Close()
	big, small := math.MaxInt32, math.MinInt32
	o := Overlay{
		Zones: []Zone{
			{Name: "Einfahrt ä 車", Points: []image.Point{{small, small}, {big, small}, {big, big}, {small, big}}},
			{Name: "", Points: []image.Point{{math.MaxInt64 / 4, 0}, {0, math.MinInt64 / 4}}},
		},
		Motion: []image.Rectangle{{Min: image.Pt(small, small), Max: image.Pt(big, big)}, {Min: image.Pt(5, 5), Max: image.Pt(1, 1)}},
	}
	Draw(&img, o, image.Pt(-10, -10), 3)
	Draw(&img, o, image.Point{}, 1e12)
}
