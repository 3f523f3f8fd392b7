package detector

import (
	"fmt"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
)

// ultralyticsPalette is the class colour cycle of Ultralytics' plotting
// (RGB hex), which Draw follows so annotated frames match the reference
// tools' colours.
var ultralyticsPalette = []string{
	"FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334", "00D4BB",
	"2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF", "FF95C8", "FF37C7",
}

// TestDrawUsesUltralyticsPalette: class k's label background is filled
// with colour k of the palette, cycling after 20 (and for negative ids).
func TestDrawUsesUltralyticsPalette(t *testing.T) {
	for _, class := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 39, -1} {
		img := gocv.NewMatWithSize(200, 200, gocv.MatTypeCV8UC3)
		Draw(&img, []detection.Detection{{ClassID: class, Label: "x", Score: 0.5, Box: detection.Box{X1: 10, Y1: 100, X2: 60, Y2: 150}}})
		// In the label's left padding, left of its text (the box line is
		// anti-aliased, the label background is not).
		v := img.GetVecbAt(95, 11)
		img.Close()
		got := fmt.Sprintf("%02X%02X%02X", v[2], v[1], v[0]) // BGR in the Mat
		if want := ultralyticsPalette[((class%20)+20)%20]; got != want {
			t.Errorf("class %d drawn in #%s, want #%s", class, got, want)
		}
	}
}
