package motion

import (
	"fmt"
	"image"
	"testing"

	"gocv.io/x/gocv"
)

// greyFrame is a 100x100 grey frame (the default motion resolution, so no
// downscaling) at level bg, with r set to level v.
func greyFrame(t testing.TB, bg float64, r image.Rectangle, v float64) gocv.Mat {
	t.Helper()
	f := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(bg, 0, 0, 0), 100, 100, gocv.MatTypeCV8UC1)
	closeMat(t, &f)
	if !r.Empty() {
		fill(&f, r, v)
	}
	return f
}

// TestThresholdIsInclusive: a pixel whose difference to the background is
// exactly Threshold counts as changed; one grey level less does not. The
// frames are flat, so the blur leaves the inside of the square at exactly
// the level it was drawn with.
func TestThresholdIsInclusive(t *testing.T) {
	square := image.Rect(40, 40, 60, 60)
	for _, threshold := range []int{1, 7, 30, 254} {
		for _, sign := range []float64{1, -1} {
			bg := 100.0
			if sign > 0 && threshold > 150 {
				bg = 0
			} else if sign < 0 && threshold > 100 {
				bg = 255
			}
			for _, delta := range []int{threshold, threshold - 1} {
				name := fmt.Sprintf("threshold %d, background %g, difference %+g", threshold, bg, sign*float64(delta))
				t.Run(name, func(t *testing.T) {
					d := newDetector(t, Config{Threshold: threshold, MinArea: 1})
					still := greyFrame(t, bg, image.Rectangle{}, 0)
					if boxes := d.Detect(still, nil); len(boxes) != 0 || !d.Calibrating() {
						t.Fatalf("first frame: boxes %v, calibrating %v; want a reset", boxes, d.Calibrating())
					}
					moved := greyFrame(t, bg, square, bg+sign*float64(delta))
					boxes := d.Detect(moved, nil)
					if d.Calibrating() {
						t.Fatal("calibrating on a 4 % change")
					}
					if delta < threshold || delta == 0 {
						if len(boxes) != 0 {
							t.Errorf("difference %d below threshold %d: boxes %v, want none", delta, threshold, boxes)
						}
						return
					}
					// The square, give or take its blurred border, grown by
					// the 3x3 dilate.
					want := image.Rect(40, 40, 60, 60)
					if len(boxes) != 1 || !boxes[0].In(want.Inset(-1)) || boxes[0].Dx() < 20 || boxes[0].Dy() < 20 {
						t.Errorf("difference %d at threshold %d: boxes %v, want one box of about %v", delta, threshold, boxes, want)
					}
				})
			}
		}
	}
}

// TestSettleHalvesLightningThreshold: on the frame right after a reset the
// share of changed pixels that means "global change" is halved (package
// comment); on other frames it is LightningThreshold itself.
func TestSettleHalvesLightningThreshold(t *testing.T) {
	// Rows 0..59 change by 100 levels: 60 rows change (row 60 is blurred
	// to 27 levels, under the threshold 30), 61 after the dilate: 61 % of
	// the frame, between half the default 0.8 and 0.8. Rows 0..29 change
	// 31 % of it, under half of 0.8.
	big, small := image.Rect(0, 0, 100, 60), image.Rect(0, 0, 100, 30)
	type step struct {
		frame       gocv.Mat
		calibrating bool
		motion      bool
		why         string
	}
	flat := greyFrame(t, 100, image.Rectangle{}, 0)
	bigChange := greyFrame(t, 100, big, 200)
	smallChange := greyFrame(t, 100, small, 200)
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"61 % right after a reset", []step{
			{flat, true, false, "first frame resets"},
			{bigChange, true, false, "61 % > 0.8/2 on the settling frame resets"},
			{bigChange, false, false, "no change: settled"},
			{flat, false, true, "61 % <= 0.8 once settled is motion"},
		}},
		{"31 % right after a reset", []step{
			{flat, true, false, "first frame resets"},
			{smallChange, false, true, "31 % <= 0.8/2 on the settling frame is motion"},
		}},
		{"reset again while settling", []step{
			{flat, true, false, "first frame resets"},
			{bigChange, true, false, "61 % while settling resets"},
			{flat, true, false, "61 % on the frame after that reset resets again"},
			{flat, false, false, "settled"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDetector(t, Config{})
			for i, s := range tc.steps {
				boxes := d.Detect(s.frame, nil)
				if d.Calibrating() != s.calibrating || (len(boxes) > 0) != s.motion {
					t.Fatalf("frame %d (%s): calibrating %v, boxes %v; want calibrating %v, motion %v",
						i, s.why, d.Calibrating(), boxes, s.calibrating, s.motion)
				}
			}
		})
	}
}
