//go:build matprofile

package camera

import (
	"bytes"
	"os"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestMain fails the run when any gocv.Mat is still open after the tests.
func TestMain(m *testing.M) { os.Exit(testenv.RunCheckingMats(m)) }

// TestMatProfileCycles: stream cycles of every source kind close every Mat
// they create (the pool, conversion scratch, decoded images).
func TestMatProfileCycles(t *testing.T) {
	clip := writeClip(t, 2, 10, 30)
	imgDir, _ := imagesDir(t)
	start := gocv.MatProfile.Count()
	for range 3 {
		cycle(t, clip, imgDir)
	}
	if n := gocv.MatProfile.Count(); n != start {
		var b bytes.Buffer
		gocv.MatProfile.WriteTo(&b, 1)
		t.Fatalf("live Mats: %d before, %d after the cycles:\n%s", start, n, b.String())
	}
}
