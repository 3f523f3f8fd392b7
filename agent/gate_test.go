package agent

import (
	"image"
	"testing"

	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
)

// TestGateObserve: what finish tells the gate decides which motion it
// explains. An object seen at the same place in two detections is still,
// and motion within its box (grown by a tenth) is no news; motion elsewhere
// is. An object that moved, one seen once, one covering half the frame and
// anything after a frame the detector did not run on explain nothing new.
func TestGateObserve(t *testing.T) {
	const frameArea = 640 * 480
	obj := func(id string, x1, y1, x2, y2 float32) track.Object {
		return track.Object{ID: id, Box: detection.Box{X1: x1, Y1: y1, X2: x2, Y2: y2}}
	}
	inside := []image.Rectangle{image.Rect(105, 105, 190, 190)}
	edge := []image.Rectangle{image.Rect(95, 95, 205, 205)} // within the grown box
	outside := []image.Rectangle{image.Rect(300, 300, 340, 340)}

	var g gate
	if g.unexplained(nil) {
		t.Error("no motion is unexplained")
	}
	g.observe([]track.Object{obj("a", 100, 100, 200, 200), obj("b", 0, 0, 640, 400)}, true, frameArea)
	if !g.unexplained(inside) {
		t.Error("an object seen once explains its motion; it must be seen still twice")
	}
	g.observe([]track.Object{obj("a", 101, 100, 201, 200), obj("b", 0, 0, 640, 400)}, true, frameArea)
	if g.active.Load() != 2 || len(g.tracked) != 2 || len(g.still) != 1 {
		t.Fatalf("active %d, tracked %v, still %v; want 2 tracked, a still (b covers most of the frame)", g.active.Load(), g.tracked, g.still)
	}
	if g.unexplained(inside) || g.unexplained(edge) {
		t.Error("motion on a still object is unexplained")
	}
	if !g.unexplained(append(inside, outside...)) {
		t.Error("motion away from every still object is explained")
	}
	// Not run: the count follows, the boxes stay.
	g.observe([]track.Object{obj("a", 101, 100, 201, 200)}, false, frameArea)
	if g.active.Load() != 1 || len(g.still) != 1 {
		t.Errorf("after a frame not run: active %d, still %v; want 1 and a's box kept", g.active.Load(), g.still)
	}
	// a moves on: its motion is news again.
	g.observe([]track.Object{obj("a", 160, 100, 260, 200)}, true, frameArea)
	if !g.unexplained(inside) {
		t.Error("motion of an object that moved is explained")
	}
}
