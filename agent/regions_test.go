package agent

import (
	"image"
	"testing"

	"github.com/edgedet/edgedet/detection"
)

func TestPlanRegions(t *testing.T) {
	const W, H, side = 1920, 1080, 416
	frame := image.Rect(0, 0, W, H)
	cases := []struct {
		name  string
		boxes []image.Rectangle
		want  []image.Rectangle
	}{
		{"none", nil, nil},
		{"small box: model-size square centred on it", []image.Rectangle{image.Rect(1000, 500, 1040, 560)},
			[]image.Rectangle{image.Rect(812, 322, 1228, 738)}},
		{"near a corner: shifted inside", []image.Rectangle{image.Rect(1900, 1060, 1915, 1075)},
			[]image.Rectangle{image.Rect(W-side, H-side, W, H)}},
		{"two far apart: two crops", []image.Rectangle{image.Rect(100, 100, 120, 120), image.Rect(1700, 900, 1720, 920)},
			[]image.Rectangle{image.Rect(0, 0, 416, 416), image.Rect(1502, 664, 1918, 1080)}},
		{"two overlapping crops merge into one square", []image.Rectangle{image.Rect(500, 500, 520, 520), image.Rect(700, 500, 720, 520)},
			nil}, // checked below: one square covering both
		{"most of the frame: the whole frame", []image.Rectangle{image.Rect(0, 0, 1800, 1000)},
			[]image.Rectangle{frame}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planRegions(tc.boxes, W, H, side, nil)
			for _, r := range got {
				if !r.In(frame) || r.Dx() < side || r.Dy() < side {
					t.Errorf("region %v is outside the frame or smaller than the model input", r)
				}
			}
			for _, b := range tc.boxes {
				covered := false
				for _, r := range got {
					covered = covered || b.Intersect(frame).In(r)
				}
				if !covered {
					t.Errorf("box %v not inside any region of %v", b, got)
				}
			}
			if tc.want != nil && !equalRects(got, tc.want) {
				t.Errorf("regions %v, want %v", got, tc.want)
			}
			if tc.name == "two overlapping crops merge into one square" && (len(got) != 1 || got[0].Dx() != got[0].Dy()) {
				t.Errorf("regions %v, want one square", got)
			}
		})
	}
	// Small frames: the region is the frame, never larger.
	if got := planRegions([]image.Rectangle{image.Rect(10, 10, 20, 20)}, 320, 240, side, nil); !equalRects(got, []image.Rectangle{image.Rect(0, 0, 320, 240)}) {
		t.Errorf("320x240 frame: %v", got)
	}
	// No allocation once dst has room.
	dst := make([]image.Rectangle, 0, 8)
	boxes := []image.Rectangle{image.Rect(100, 100, 120, 120), image.Rect(1700, 900, 1720, 920)}
	if n := testing.AllocsPerRun(20, func() { dst = planRegions(boxes, W, H, side, dst) }); n != 0 {
		t.Errorf("planRegions allocates %g times", n)
	}
}

func equalRects(a, b []image.Rectangle) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDedupeRegions(t *testing.T) {
	box := func(x1, y1, x2, y2 float32) detection.Box { return detection.Box{X1: x1, Y1: y1, X2: x2, Y2: y2} }
	dets := []detection.Detection{
		{ClassID: 0, Score: 0.9, Box: box(100, 100, 200, 300)},
		{ClassID: 0, Score: 0.8, Box: box(102, 101, 201, 298)}, // same person from the other crop
		{ClassID: 0, Score: 0.7, Box: box(100, 100, 200, 180)}, // cut by a crop edge: inside the first
		{ClassID: 2, Score: 0.6, Box: box(100, 100, 200, 300)}, // another class at the same place
		{ClassID: 0, Score: 0.5, Box: box(400, 100, 500, 300)}, // another person
	}
	got := dedupeRegions(dets, 0.5)
	if len(got) != 3 || got[0].Score != 0.9 || got[1].ClassID != 2 || got[2].Score != 0.5 {
		t.Errorf("kept %+v", got)
	}
}
