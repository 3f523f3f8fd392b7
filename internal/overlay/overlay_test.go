package overlay

import (
	"image"
	"testing"

	"gocv.io/x/gocv"
)

func pixel(m gocv.Mat, p image.Point) [3]uint8 {
	v := m.GetVecbAt(p.Y, p.X)
	return [3]uint8{v[0], v[1], v[2]} // BGR
}

// near reports whether a BGR pixel is close to want (gocv anti-aliases).
func near(got, want [3]uint8) bool {
	for i := range got {
		if d := int(got[i]) - int(want[i]); d > 40 || d < -40 {
			return false
		}
	}
	return true
}

func TestDrawMotionAndZones(t *testing.T) {
	img := gocv.NewMatWithSize(200, 400, gocv.MatTypeCV8UC3)
	defer img.Close()
	o := Overlay{
		Motion: []image.Rectangle{image.Rect(10, 10, 60, 50)},
		Zones:  []Zone{{Name: "lawn", Points: []image.Point{{200, 20}, {380, 20}, {380, 180}, {200, 180}}}},
	}
	Draw(&img, o, image.Point{}, 1)
	if got := pixel(img, image.Pt(30, 10)); !near(got, [3]uint8{0, 0, 255}) {
		t.Errorf("motion box edge is %v, want red", got)
	}
	if got := pixel(img, image.Pt(300, 20)); !near(got, [3]uint8{0, 215, 255}) {
		t.Errorf("zone edge is %v, want yellow", got)
	}
	if got := pixel(img, image.Pt(100, 100)); got != [3]uint8{} {
		t.Errorf("untouched pixel is %v", got)
	}
	// A crop from (200,0) at half scale: the zone's left edge moves to x 0.
	half := gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8UC3)
	defer half.Close()
	Draw(&half, Overlay{Zones: o.Zones}, image.Pt(200, 0), 0.5)
	if got := pixel(half, image.Pt(0, 50)); !near(got, [3]uint8{0, 215, 255}) {
		t.Errorf("transformed zone edge is %v, want yellow", got)
	}
}
