package motion

import (
	"strings"
	"testing"
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
