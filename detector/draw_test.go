package detector

import (
	"image"
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

// dogAndCat are dog.jpg's dog (0.86) and the cat (0.26) found on the same
// animal, in the detector's order (best first): the cat's label was drawn
// last, over the dog's.
var dogAndCat = []detection.Detection{
	{ClassID: 16, Label: "dog", Score: 0.86, Box: detection.Box{X1: 133, Y1: 207, X2: 326, Y2: 543}},
	{ClassID: 15, Label: "cat", Score: 0.26, Box: detection.Box{X1: 131, Y1: 213, X2: 322, Y2: 541}},
}

// nonZero counts the non-zero values of m, over all channels.
func nonZero(m gocv.Mat) int {
	c := m.Clone() // a region is not continuous: Reshape needs a copy
	defer c.Close()
	flat := c.Reshape(1, 0)
	defer flat.Close()
	return gocv.CountNonZero(flat)
}

// TestDrawHighestScoreOnTop: the dog's label, drawn alone, is unchanged
// when the cat (lower score, overlapping box) is drawn with it, whatever
// the order the detections come in.
func TestDrawHighestScoreOnTop(t *testing.T) {
	alone := gocv.NewMatWithSize(576, 768, gocv.MatTypeCV8UC3)
	defer alone.Close()
	Draw(&alone, dogAndCat[:1])
	// The dog's label is above its box: rows 0..206, where the box line is not.
	label := image.Rect(0, 0, 768, 207-1)
	roiAlone := alone.Region(label)
	defer roiAlone.Close()
	if nonZero(roiAlone) == 0 {
		t.Fatal("no label above the dog's box")
	}
	for _, dets := range [][]detection.Detection{dogAndCat, {dogAndCat[1], dogAndCat[0]}} {
		both := gocv.NewMatWithSize(576, 768, gocv.MatTypeCV8UC3)
		Draw(&both, dets)
		roi := both.Region(label)
		diff := gocv.NewMat()
		gocv.AbsDiff(roiAlone, roi, &diff)
		if n := nonZero(diff); n > 0 {
			t.Errorf("detections %s, %s: %d values of the dog's label area changed by the cat", dets[0].Label, dets[1].Label, n)
		}
		diff.Close()
		roi.Close()
		both.Close()
	}
}

// TestPlaceLabelsNoOverlap: labels of boxes that share their top-left
// corner are placed without overlapping one another, inside the image,
// the highest score in the first place (above its box), also at the image
// border; labels are moved only as much as needed.
func TestPlaceLabelsNoOverlap(t *testing.T) {
	size := image.Pt(60, 10)
	for _, tc := range []struct {
		name string
		dets []detection.Detection
	}{
		{"dog and cat", dogAndCat},
		{"four on one corner", []detection.Detection{
			{Score: 0.3, Box: detection.Box{X1: 50, Y1: 100, X2: 200, Y2: 300}},
			{Score: 0.9, Box: detection.Box{X1: 50, Y1: 100, X2: 210, Y2: 310}},
			{Score: 0.5, Box: detection.Box{X1: 52, Y1: 101, X2: 190, Y2: 290}},
			{Score: 0.7, Box: detection.Box{X1: 48, Y1: 99, X2: 205, Y2: 305}},
		}},
		{"at the top edge", []detection.Detection{
			{Score: 0.4, Box: detection.Box{X1: 0, Y1: 0, X2: 100, Y2: 100}},
			{Score: 0.8, Box: detection.Box{X1: 0, Y1: 0, X2: 120, Y2: 90}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sizes := make([]image.Point, len(tc.dets))
			for i := range sizes {
				sizes[i] = size
			}
			bounds := image.Pt(768, 576)
			r := placeLabels(tc.dets, sizes, bounds)
			for i := range r {
				if !r[i].In(image.Rect(0, 0, bounds.X, bounds.Y)) || r[i].Dx() != size.X+2*labelPad || r[i].Dy() != size.Y+2*labelPad {
					t.Errorf("label %d at %v: not %v plus padding inside the image", i, r[i], size)
				}
				for j := range i {
					if r[i].Overlaps(r[j]) {
						t.Errorf("labels of scores %.2f and %.2f overlap: %v, %v", tc.dets[i].Score, tc.dets[j].Score, r[i], r[j])
					}
				}
			}
			best := byScore(tc.dets)[0]
			b := boxRect(tc.dets[best].Box)
			want := clampRect(image.Rect(b.Min.X, b.Min.Y-size.Y-2*labelPad, b.Min.X+size.X+2*labelPad, b.Min.Y), bounds)
			if r[best] != want {
				t.Errorf("highest score's label at %v, want %v (above its box, or inside at the image's edge)", r[best], want)
			}
		})
	}
}
