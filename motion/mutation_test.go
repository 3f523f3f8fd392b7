package motion

import (
	"image"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// Mask coordinates may be anywhere in 0..MaxCoord, both ends included.
func TestMaskCoordinateRange(t *testing.T) {
	ok := Config{Masks: [][]Point{{{0, 0}, {MaxCoord, 0}, {MaxCoord, MaxCoord}, {0, MaxCoord}}}}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("mask at 0 and MaxCoord: %v", err)
	}
	for _, p := range []Point{{MaxCoord + 1, 0}, {0, MaxCoord + 1}, {-1, 0}, {0, -1}} {
		c := Config{Masks: [][]Point{{{0, 0}, {10, 10}, p}}}.WithDefaults()
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "mask[0][2]") {
			t.Errorf("mask point %v: err = %v, want one naming mask[0][2]", p, err)
		}
	}
}

// The ends of every documented range are valid: threshold 1..255,
// frame_height 20..2160, min_area 0, a three-point mask.
func TestValidateAcceptsRangeEnds(t *testing.T) {
	for _, c := range []Config{
		{Threshold: 1, FrameHeight: MinFrameHeight},
		{Threshold: 255, FrameHeight: MaxFrameHeight},
		{MinArea: 0, Masks: [][]Point{{{0, 0}, {10, 0}, {10, 10}}}},
	} {
		if err := c.WithDefaults().Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// A Detector whose mask covers the whole frame has nothing to watch: it
// reports no boxes and never resets (Calibrating stays false), not on the
// first frame and not when every pixel changes at once.
func TestFullyMaskedFrame(t *testing.T) {
	whole := []Point{{0, 0}, {319, 0}, {319, 239}, {0, 239}}
	d := newDetector(t, Config{Masks: [][]Point{whole}})
	bright := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(230, 230, 230, 0), 240, 320, gocv.MatTypeCV8UC3)
	closeMat(t, &bright)
	frames := []gocv.Mat{photo(t, "dog.jpg", 320, 240), photo(t, "dog.jpg", 320, 240), bright}
	var boxes []image.Rectangle
	for i, f := range frames {
		boxes = d.Detect(f, boxes)
		if len(boxes) != 0 || d.Calibrating() {
			t.Errorf("frame %d: boxes %v, calibrating %v; want neither", i, boxes, d.Calibrating())
		}
	}
}

// Motion right at a mask's edge is reported up to the edge, never inside
// the polygon: the blur spreads the changing pixels into the band the mask
// was grown by, and those must not count, while the dilate takes the box
// exactly to the polygon. At frame height 100 motion pixels are frame
// pixels, so the boxes are exact. Both axes, as each maps its own way.
func TestMotionAtMaskEdge(t *testing.T) {
	for _, c := range []struct {
		name           string
		masked, stripe image.Rectangle
	}{
		{"right", image.Rect(50, 0, 100, 100), image.Rect(30, 20, 49, 80)},
		{"below", image.Rect(0, 50, 100, 100), image.Rect(20, 30, 80, 49)},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := c.masked
			d := newDetector(t, Config{Masks: [][]Point{{
				{m.Min.X, m.Min.Y}, {m.Max.X - 1, m.Min.Y}, {m.Max.X - 1, m.Max.Y - 1}, {m.Min.X, m.Max.Y - 1},
			}}})
			flat := greyFrame(t, 60, image.Rectangle{}, 0)
			stripe := greyFrame(t, 60, c.stripe, 255)
			var boxes []image.Rectangle
			for i, f := range []gocv.Mat{flat, flat, stripe} {
				boxes = d.Detect(f, boxes)
				for _, b := range boxes {
					if b.Overlaps(m) {
						t.Errorf("frame %d: box %v reaches into the masked %v", i, b, m)
					}
				}
			}
			if len(boxes) != 1 {
				t.Fatalf("the stripe beside the mask: boxes %v, want one", boxes)
			}
			if !boxes[0].Inset(-1).Overlaps(m) {
				t.Errorf("box %v stops short of the masked %v: the stripe reaches the mask's band", boxes[0], m)
			}
		})
	}
}

// A mask is grown by one motion pixel and what happens in that band is
// masked too, blur included: a flicker over the polygon and the pixel
// around it is not reported at all, not even as its blurred edge on the
// unmasked pixels beside it. At frame height 100 motion pixels are frame
// pixels.
func TestMaskBandDoesNotBleed(t *testing.T) {
	d := newDetector(t, Config{Masks: [][]Point{{{50, 0}, {99, 0}, {99, 99}, {50, 99}}}})
	dark := greyFrame(t, 60, image.Rectangle{}, 0)
	lit := greyFrame(t, 60, image.Rect(49, 0, 100, 100), 255)
	for i, f := range []gocv.Mat{dark, dark, lit, dark, lit} {
		if boxes := d.Detect(f, nil); len(boxes) != 0 {
			t.Errorf("frame %d: boxes %v for a flicker inside the grown mask", i, boxes)
		}
	}
}

// The downscale plan the package doc promises, which only the cost of
// Detect shows otherwise: the motion frame keeps the aspect ratio (at least
// one pixel wide), and frames at least 4 times the motion size in both
// directions go through an intermediate of twice the motion size.
func TestDownscalePlan(t *testing.T) {
	for _, c := range []struct {
		w, h       int
		small, mid image.Point
	}{
		{100, 100, image.Pt(100, 100), image.Point{}},
		{64, 48, image.Pt(64, 48), image.Point{}}, // smaller than FrameHeight: used as it is
		{1920, 1080, image.Pt(178, 100), image.Pt(356, 200)},
		{400, 400, image.Pt(100, 100), image.Pt(200, 200)}, // exactly 4x
		{400, 399, image.Pt(100, 100), image.Point{}},      // just under 4x tall
		{399, 400, image.Pt(100, 100), image.Point{}},      // just under 4x wide
		{1, 300, image.Pt(1, 100), image.Point{}},          // rounds to 0 wide
	} {
		d := newDetector(t, Config{})
		f := gocv.NewMatWithSize(c.h, c.w, gocv.MatTypeCV8UC1)
		d.Detect(f, nil)
		f.Close()
		if d.small != c.small || d.mid != c.mid {
			t.Errorf("%dx%d frame: motion size %v via %v, want %v via %v", c.w, c.h, d.small, d.mid, c.small, c.mid)
		}
	}
}

// min_area 0 means the default fraction of the frame (0.05 %: 5 pixels of
// the 100x100 motion frame), not "any size"; min_area 1 is one pixel. A
// one-pixel speck dilates to a 3x3 blob, a contour of area 4.
func TestMinAreaZeroMeansDefault(t *testing.T) {
	flat := greyFrame(t, 50, image.Rectangle{}, 0)
	speck := greyFrame(t, 50, image.Rect(50, 50, 51, 51), 255)
	for _, c := range []struct {
		minArea int
		want    int
	}{{0, 0}, {1, 1}} {
		d := newDetector(t, Config{MinArea: c.minArea})
		d.Detect(flat, nil)
		if boxes := d.Detect(speck, nil); len(boxes) != c.want {
			t.Errorf("min_area %d: boxes %v for a one-pixel speck, want %d", c.minArea, boxes, c.want)
		}
	}
}

// min_area is in frame pixels: on a 400x400 frame one motion pixel is 4x4
// frame pixels, so the 80x80 square (20x20 motion pixels, a contour of
// area 441 once dilated) is reported up to min_area 441*16 = 7056.
func TestMinAreaInFramePixels(t *testing.T) {
	flat := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(100, 0, 0, 0), 400, 400, gocv.MatTypeCV8UC1)
	closeMat(t, &flat)
	square := flat.Clone()
	closeMat(t, &square)
	fill(&square, image.Rect(160, 160, 240, 240), 200)
	for _, c := range []struct {
		minArea int
		want    int
	}{{7056, 1}, {7057, 0}} {
		d := newDetector(t, Config{MinArea: c.minArea})
		d.Detect(flat, nil)
		if boxes := d.Detect(square, nil); len(boxes) != c.want {
			t.Errorf("min_area %d: boxes %v, want %d", c.minArea, boxes, c.want)
		}
	}
}

// A change of exactly LightningThreshold of the frame is still motion; one
// row more is a global change that resets the background. Rows 0..48
// change by 100 levels: 49 rows pass the threshold (row 49 is blurred
// under it) and the dilate makes 50, half the 100x100 frame.
func TestLightningThresholdIsInclusive(t *testing.T) {
	flat := greyFrame(t, 100, image.Rectangle{}, 0)
	for _, c := range []struct {
		rows        int
		calibrating bool
	}{{49, false}, {50, true}} {
		d := newDetector(t, Config{LightningThreshold: 0.5})
		change := greyFrame(t, 100, image.Rect(0, 0, 100, c.rows), 200)
		d.Detect(flat, nil)
		d.Detect(flat, nil) // settled: the limit is LightningThreshold itself
		boxes := d.Detect(change, nil)
		if d.Calibrating() != c.calibrating || (len(boxes) > 0) == c.calibrating {
			t.Errorf("rows 0..%d changed: calibrating %v, boxes %v; want calibrating %v",
				c.rows-1, d.Calibrating(), boxes, c.calibrating)
		}
	}
}

// min_area is inclusive: a region whose contour area is exactly MinArea is
// reported, with MinArea one more it is not. The 20x20 square changes by
// 100 levels on a flat 100x100 frame (motion pixels are frame pixels):
// the dilate makes it 22x22, a contour of area 21*21 = 441.
func TestMinAreaIsInclusive(t *testing.T) {
	flat := greyFrame(t, 100, image.Rectangle{}, 0)
	square := greyFrame(t, 100, image.Rect(40, 40, 60, 60), 200)
	for _, c := range []struct {
		minArea int
		want    int
	}{{441, 1}, {442, 0}} {
		d := newDetector(t, Config{MinArea: c.minArea})
		d.Detect(flat, nil)
		if boxes := d.Detect(square, nil); len(boxes) != c.want {
			t.Errorf("min_area %d: boxes %v, want %d", c.minArea, boxes, c.want)
		}
	}
}
