package detection

import (
	"math"
	"testing"
)

// TestBoxArea: width times height, and 0 (never negative) for an empty or
// inverted box.
func TestBoxArea(t *testing.T) {
	inf32 := float32(math.Inf(1))
	tests := []struct {
		b    Box
		want float32
	}{
		{Box{X1: 0, Y1: 0, X2: 10, Y2: 5}, 50},
		{Box{X1: 1.5, Y1: 2, X2: 2, Y2: 6}, 2},
		{Box{X1: 10, Y1: 0, X2: 0, Y2: 5}, 0},  // inverted in x
		{Box{X1: 0, Y1: 5, X2: 10, Y2: 0}, 0},  // inverted in y
		{Box{X1: 10, Y1: 10, X2: 0, Y2: 0}, 0}, // inverted in both
		{Box{}, 0},
		{Box{X1: 3, Y1: 0, X2: 3, Y2: 9}, 0}, // a line
		// A line of infinite length is empty too (0 × Inf would be NaN).
		{Box{X1: 3, Y1: 0, X2: 3, Y2: inf32}, 0},
		{Box{X1: 0, Y1: 3, X2: inf32, Y2: 3}, 0},
	}
	for _, tt := range tests {
		if got := tt.b.Area(); got != tt.want {
			t.Errorf("%+v.Area() = %g, want %g", tt.b, got, tt.want)
		}
	}
}
