package detector

import (
	"image"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
)

// TestDrawStyle: one line pixel per 300 pixels of the shorter side, at
// least one, and the font scale 0.4 + 0.15 per line pixel.
func TestDrawStyle(t *testing.T) {
	for _, tc := range []struct {
		cols, rows, thick int
		font              float64
	}{
		{100, 50, 1, 0.55},
		{599, 2000, 1, 0.55},
		{1280, 600, 2, 0.7},
		{900, 900, 3, 0.85},
	} {
		thick, font := drawStyle(tc.cols, tc.rows)
		if thick != tc.thick || font < tc.font-1e-9 || font > tc.font+1e-9 {
			t.Errorf("drawStyle(%d, %d) = %d, %g, want %d, %g", tc.cols, tc.rows, thick, font, tc.thick, tc.font)
		}
	}
}

// TestClampRect: a label is moved, not resized, to lie inside the image;
// one wider or taller than the image keeps its left or top edge in.
func TestClampRect(t *testing.T) {
	bounds := image.Pt(768, 576)
	for _, tc := range []struct{ in, want image.Rectangle }{
		{image.Rect(10, 10, 74, 24), image.Rect(10, 10, 74, 24)},
		{image.Rect(10, -5, 74, 9), image.Rect(10, 0, 74, 14)},
		{image.Rect(-3, 10, 61, 24), image.Rect(0, 10, 64, 24)},
		{image.Rect(740, 10, 804, 24), image.Rect(704, 10, 768, 24)},
		{image.Rect(10, 570, 74, 584), image.Rect(10, 562, 74, 576)},
		{image.Rect(-10, 0, 800, 14), image.Rect(0, 0, 810, 14)},
		{image.Rect(0, -10, 64, 600), image.Rect(0, 0, 64, 610)},
	} {
		if got := clampRect(tc.in, bounds); got != tc.want {
			t.Errorf("clampRect(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestOverlap: the areas shared with each placed rectangle add up.
func TestOverlap(t *testing.T) {
	placed := []image.Rectangle{image.Rect(5, 5, 15, 15), image.Rect(0, 0, 2, 2), image.Rect(20, 20, 30, 30)}
	if got := overlap(image.Rect(0, 0, 10, 10), placed); got != 25+4 {
		t.Errorf("overlap = %d, want 29", got)
	}
	if got := overlap(image.Rect(0, 0, 10, 10), nil); got != 0 {
		t.Errorf("overlap with nothing placed = %d", got)
	}
}

// TestPlaceLabelsCandidateOrder: labels of one box, from the highest score
// down, take above the box, inside its top edge, below it, inside its
// bottom edge, then down the inside; when every place is taken, the first
// place that overlaps least.
func TestPlaceLabelsCandidateOrder(t *testing.T) {
	label := image.Pt(60, 10) // 64x14 with padding
	bounds := image.Pt(768, 576)
	for _, tc := range []struct {
		name string
		box  detection.Box
		ys   []int // top of each label, best score first
	}{
		{"tall box", detection.Box{X1: 100, Y1: 100, X2: 300, Y2: 300}, []int{86, 100, 300, 286, 114, 128}},
		// Four places: the fourth label overlaps the second least where
		// it must, the fifth ties above and below and takes above.
		{"short box", detection.Box{X1: 100, Y1: 100, X2: 200, Y2: 120}, []int{86, 100, 120, 106, 86}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkStackedLabels(t, tc.box, label, bounds, tc.ys) })
	}
}

// TestDrawLabelText: the label text is drawn inside its background, its
// ink starting a few pixels right of the label's left edge (the padding
// and the glyph's bearing, which grows with the font) and ending 2 pixels
// above its bottom (the padding, the baseline one pixel above it).
func TestDrawLabelText(t *testing.T) {
	for n, left := range map[int]int{200: 4, 900: 5} {
		img := gocv.NewMatWithSize(n, n, gocv.MatTypeCV8UC3)
		dets := []detection.Detection{{ClassID: 0, Label: "x", Score: 0.5, Box: detection.Box{X1: 10, Y1: 100, X2: 160, Y2: 190}}}
		Draw(&img, dets)
		_, font := drawStyle(n, n)
		size := gocv.GetTextSize("x 0.50", gocv.FontHersheySimplex, font, 1)
		label := placeLabels(dets, []image.Point{size}, image.Pt(n, n))[0]
		var ink image.Rectangle // the white pixels
		for y := range n {
			for x := range n {
				if v := img.GetVecbAt(y, x); v[0] > 200 && v[1] > 200 && v[2] > 200 {
					ink = ink.Union(image.Rect(x, y, x+1, y+1))
				}
			}
		}
		img.Close()
		if ink.Empty() || !ink.In(label) || ink.Min.X-label.Min.X != left || label.Max.Y-ink.Max.Y != 2 {
			t.Errorf("%dx%d image: text ink %v in label %v, want inside it, %d px from its left and 2 px from its bottom", n, n, ink, label, left)
		}
	}
}

// checkStackedLabels places len(ys) labels of text size label on one box,
// scores descending, and checks that label i (padded by 2 pixels a side)
// is left-aligned with the box with its top at ys[i].
func checkStackedLabels(t *testing.T, box detection.Box, label, bounds image.Point, ys []int) {
	t.Helper()
	dets := make([]detection.Detection, len(ys))
	sizes := make([]image.Point, len(ys))
	for i := range dets {
		dets[i] = detection.Detection{Score: 0.99 - 0.05*float32(i), Box: box}
		sizes[i] = label
	}
	got := placeLabels(dets, sizes, bounds)
	x := int(box.X1)
	for i, y := range ys {
		if want := image.Rect(x, y, x+label.X+4, y+label.Y+4); got[i] != want {
			t.Errorf("label %d (score %.2f) at %v, want %v", i, dets[i].Score, got[i], want)
		}
	}
}
