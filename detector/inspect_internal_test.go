package detector

import "testing"

// TestHasDynamic: a shape is dynamic when any dimension is unknown: -1 as
// ONNX Runtime reports a symbolic axis, or 0.
func TestHasDynamic(t *testing.T) {
	for _, tc := range []struct {
		shape []int64
		want  bool
	}{
		{[]int64{1, 84, 8400}, false},
		{[]int64{1}, false},
		{nil, false},
		{[]int64{1, -1, 85}, true},
		{[]int64{-1, -1, -1}, true},
		{[]int64{1, 85, 0}, true},
	} {
		if got := hasDynamic(tc.shape); got != tc.want {
			t.Errorf("hasDynamic(%v) = %v, want %v", tc.shape, got, tc.want)
		}
	}
}
