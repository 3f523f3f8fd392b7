package detection

import (
	"math"
	"testing"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// ToFrame clips only what lies outside the frame: coordinates between 0
// and 1 pixel are kept, not rounded down to the edge.
func TestToFrameKeepsSubpixelCoordinates(t *testing.T) {
	g := Geometry{SrcW: 100, SrcH: 50, ScaleX: 2, ScaleY: 2, PadLeft: 4, PadTop: 6}
	// Input (5, 6.5) is frame (0.5, 0.25); (204, 106) is exactly the far corner.
	got := g.ToFrame(Box{X1: 5, Y1: 6.5, X2: 204, Y2: 106})
	if want := (Box{X1: 0.5, Y1: 0.25, X2: 100, Y2: 50}); got != want {
		t.Errorf("ToFrame = %+v, want %+v", got, want)
	}
	// A -0 from the model (an end2end output may hold one) comes out as
	// +0, which JSON encoders do not print as "-0".
	negZero := float32(math.Copysign(0, -1))
	unpadded := Geometry{SrcW: 100, SrcH: 50, ScaleX: 2, ScaleY: 2}
	edge := unpadded.ToFrame(Box{X1: negZero, Y1: negZero, X2: 10, Y2: 10})
	if edge.X1 != 0 || math.Signbit(float64(edge.X1)) || math.Signbit(float64(edge.Y1)) {
		t.Errorf("ToFrame(-0 corner) = %+v, want X1 and Y1 +0", edge)
	}
	// Beyond the frame on every side: clipped to it.
	got = g.ToFrame(Box{X1: 0, Y1: 0, X2: 300, Y2: 300})
	if want := (Box{X1: 0, Y1: 0, X2: 100, Y2: 50}); got != want {
		t.Errorf("ToFrame(outside) = %+v, want %+v", got, want)
	}
}
