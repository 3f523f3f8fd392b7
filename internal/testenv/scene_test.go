package testenv

import (
	"image"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"
)

func TestSceneRendersMovingSprite(t *testing.T) {
	s := Scene{Background: Shared(t, "datasets", "samples", "scream.jpg"), W: 640, H: 360,
		Sprite: Shared(t, "datasets", "samples", "dog.jpg"), SpriteRect: image.Rect(130, 220, 310, 540), SpriteW: 90,
		From: image.Pt(-40, 100), To: image.Pt(400, 150), Enter: 5, Stop: 15, Leave: 20}
	r, err := NewScene(s)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, b := gocv.NewMat(), gocv.NewMat()
	defer a.Close()
	defer b.Close()
	diffBox := func(i, j int) image.Rectangle {
		r.Frame(i, &a)
		r.Frame(j, &b)
		d := gocv.NewMat()
		defer d.Close()
		gocv.AbsDiff(a, b, &d)
		g := gocv.NewMat()
		defer g.Close()
		gocv.CvtColor(d, &g, gocv.ColorBGRToGray)
		pts := gocv.NewMat()
		defer pts.Close()
		gocv.FindNonZero(g, &pts)
		if pts.Empty() {
			return image.Rectangle{}
		}
		pv := gocv.NewPointVectorFromMat(pts)
		defer pv.Close()
		return gocv.BoundingRect(pv)
	}
	if got := diffBox(0, 4); !got.Empty() {
		t.Errorf("frames before Enter differ at %v", got)
	}
	if got := diffBox(15, 19); !got.Empty() {
		t.Errorf("the stopped sprite moved: %v", got)
	}
	if box, ok := r.SpriteBox(5); !ok || box.Min.X != 0 || box.Max.X != 50 {
		t.Errorf("sprite entering at the left edge: %v %v", box, ok)
	}
	box, _ := r.SpriteBox(10)
	if got := diffBox(4, 10); got != box {
		t.Errorf("frame 10 differs from the background at %v, sprite at %v", got, box)
	}
	if _, ok := r.SpriteBox(20); ok {
		t.Error("sprite still there after Leave")
	}
	path := filepath.Join(t.TempDir(), "scene.avi")
	if err := WriteScene(path, s, 10, 25); err != nil {
		t.Fatal(err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if n := vc.Get(gocv.VideoCaptureFrameCount); n != 25 {
		t.Errorf("clip has %v frames, want 25", n)
	}
}
