//go:build matprofile

package motion

import (
	"bytes"
	"image"
	"os"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestMain fails the run when any gocv.Mat is still open after the tests.
func TestMain(m *testing.M) { os.Exit(testenv.RunCheckingMats(m)) }

// TestMatsPerCycle: a Detector's whole life (frames, a size change,
// masks, Close) leaves no live Mat behind, and steady-state frames create
// none.
func TestMatsPerCycle(t *testing.T) {
	_, frames := steadyFrames(t, 640, 360)
	_, large := steadyFrames(t, 1280, 720)
	start := gocv.MatProfile.Count()
	for range 3 {
		d, err := NewDetector(steadyConfig.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		var boxes []image.Rectangle
		for i := range 6 {
			boxes = d.Detect(frames[i%2], boxes)
		}
		live := gocv.MatProfile.Count()
		for i := range 6 {
			boxes = d.Detect(frames[i%2], boxes)
		}
		if n := gocv.MatProfile.Count(); n != live {
			t.Fatalf("steady-state frames changed the live Mats from %d to %d", live, n)
		}
		for i := range 4 {
			boxes = d.Detect(large[i%2], boxes)
		}
		if len(boxes) == 0 {
			t.Fatal("no motion found")
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := gocv.MatProfile.Count(); n != start {
		var b bytes.Buffer
		gocv.MatProfile.WriteTo(&b, 1)
		t.Fatalf("live Mats: %d before, %d after the detector cycles:\n%s", start, n, b.String())
	}
}
