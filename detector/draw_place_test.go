package detector

import (
	"image"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
)

// TestPlaceLabelsDownTheBox: labels of one tall box fill above it, inside
// its top edge, below it, inside its bottom edge, then every label height
// down its inside as long as the label ends a label height above the
// bottom (the last such place included); once every place is taken, the
// first one (above the box) overlaps as little as any other. When the
// box's height is not a multiple of the label's, no inside place reaches
// past that limit, where it would overlap the label inside the bottom
// edge less than a full label.
func TestPlaceLabelsDownTheBox(t *testing.T) {
	label := image.Pt(10, 6) // 14x10 with padding
	bounds := image.Pt(400, 400)
	for _, tc := range []struct {
		name string
		box  detection.Box
		ys   []int // top of each label, best score first
	}{
		{"height a multiple of the label's", detection.Box{X1: 20, Y1: 50, X2: 100, Y2: 150},
			[]int{40, 50, 150, 140, 60, 70, 80, 90, 100, 110, 120, 130, 40}},
		{"height not a multiple", detection.Box{X1: 20, Y1: 50, X2: 100, Y2: 145},
			[]int{40, 50, 145, 135, 60, 70, 80, 90, 100, 110, 120, 40}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkStackedLabels(t, tc.box, label, bounds, tc.ys) })
	}
}

// TestPlaceLabelsOnePixelOverlap: a place that overlaps a better label by
// a single pixel is not free: the label takes the next place that
// overlaps nothing.
func TestPlaceLabelsOnePixelOverlap(t *testing.T) {
	dets := []detection.Detection{
		{Score: 0.9, Box: detection.Box{X1: 0, Y1: 20, X2: 50, Y2: 60}},
		{Score: 0.5, Box: detection.Box{X1: 9, Y1: 29, X2: 40, Y2: 70}},
	}
	sizes := []image.Point{{6, 6}, {6, 6}} // 10x10 with padding
	got := placeLabels(dets, sizes, image.Pt(200, 200))
	// Above its box the second label would share the pixel (9,19) with the
	// first one's (0,10)-(10,20).
	want := []image.Rectangle{image.Rect(0, 10, 10, 20), image.Rect(9, 29, 19, 39)}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("label %d at %v, want %v", i, got[i], want[i])
		}
	}
}

// TestDrawLabelBackgroundExtent: the label's background is exactly the
// text's extent (measured at the thickness the text is drawn with) plus
// the padding: along a row through the label, the class colour covers the
// columns from the box's left edge to that width (gocv's rectangle
// includes its far corner), an anti-aliased column follows, then the image
// is untouched; so is an image drawn with no detections.
func TestDrawLabelBackgroundExtent(t *testing.T) {
	img := gocv.NewMatWithSize(120, 200, gocv.MatTypeCV8UC3)
	defer img.Close()
	Draw(&img, nil)
	if n := nonZero(img); n != 0 {
		t.Fatalf("drawing no detections changed %d values", n)
	}
	det := detection.Detection{ClassID: 0, Label: "a", Score: 0.5, Box: detection.Box{X1: 10, Y1: 60, X2: 150, Y2: 110}}
	Draw(&img, []detection.Detection{det})
	_, font := drawStyle(200, 120)
	text := gocv.GetTextSize("a 0.50", gocv.FontHersheySimplex, font, 1)
	w, h := text.X+2*labelPad, text.Y+2*labelPad
	y := 60 - h + 1 // the label sits above the box; its second row is padding, without text
	colour := [3]uint8{palette[0].B, palette[0].G, palette[0].R}
	first, last := -1, -1
	for x := range 200 {
		v := img.GetVecbAt(y, x)
		if [3]uint8{v[0], v[1], v[2]} != colour {
			continue
		}
		if first < 0 {
			first = x
		} else if x != last+1 {
			t.Fatalf("row %d: colour broken before column %d", y, x)
		}
		last = x
	}
	if first != 10 || last != 10+w {
		t.Errorf("row %d: label colour over columns %d..%d, want 10..%d (text %v plus padding)", y, first, last, 10+w, text)
	}
	if v := img.GetVecbAt(y, 10+w+2); v[0] != 0 || v[1] != 0 || v[2] != 0 {
		t.Errorf("pixel (%d,%d) right of the label = %v, want untouched", 10+w+2, y, v)
	}
}
