package detection

import (
	"strings"
	"testing"
)

// TestInputSizeLimits: NewDecoder and DetectFormat take model inputs from
// 1x1 to MaxInputSize on each side and name the size and the range
// otherwise, whatever the output shape.
func TestInputSizeLimits(t *testing.T) {
	for _, size := range [][2]int{{1, 1}, {1, MaxInputSize}, {MaxInputSize, 1}, {MaxInputSize, MaxInputSize}} {
		if _, err := NewDecoder(FormatYOLOv8, []int64{1, 5, 1}, size[0], size[1]); err != nil {
			t.Errorf("NewDecoder at %dx%d: %v", size[0], size[1], err)
		}
		if f, err := DetectFormat([]int64{1, 1, 6}, size[0], size[1]); err != nil || f != FormatEnd2End {
			t.Errorf("DetectFormat at %dx%d: %q, %v; want end2end", size[0], size[1], f, err)
		}
	}
	for _, size := range [][2]int{{0, 32}, {32, 0}, {-1, 32}, {MaxInputSize + 1, 32}, {32, MaxInputSize + 1}} {
		want := []string{"input size", "1..4096"}
		if _, err := NewDecoder(FormatYOLOv8, []int64{1, 5, 1}, size[0], size[1]); err == nil || !containsAll(err.Error(), want) {
			t.Errorf("NewDecoder at %dx%d: %v, want an error containing %q", size[0], size[1], err, want)
		}
		if f, err := DetectFormat([]int64{1, 1, 6}, size[0], size[1]); err == nil || !containsAll(err.Error(), want) {
			t.Errorf("DetectFormat at %dx%d: %q, %v; want an error containing %q", size[0], size[1], f, err, want)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestOutputSizeLimits: an output of exactly MaxOutputValues is accepted
// however it is shaped; one over it is refused, also when rows × columns
// overflows int64 and wraps to a small number.
func TestOutputSizeLimits(t *testing.T) {
	ok := []struct {
		f     Format
		shape []int64
	}{
		{FormatYOLOv5, []int64{1, 1, MaxOutputValues}},
		{FormatYOLOv8, []int64{1, MaxOutputValues, 1}},
		{FormatYOLOv8, []int64{1, 1 << 13, 1 << 13}},
	}
	for _, tt := range ok {
		if _, err := NewDecoder(tt.f, tt.shape, 32, 32); err != nil {
			t.Errorf("NewDecoder(%s, %v): %v", tt.f, tt.shape, err)
		}
	}
	bad := []struct {
		shape []int64
		want  string
	}{
		{[]int64{1, 1 << 62, 4}, "4611686018427387904 x 4 values, more than the 67108864"},
		{[]int64{1, 4, 1 << 62}, "4 x 4611686018427387904 values, more than the 67108864"},
		{[]int64{1, MaxOutputValues + 1, 1}, "67108865 x 1 values"},
		{[]int64{1, 5, 1 << 24}, "5 x 16777216 values"},
	}
	for _, tt := range bad {
		for _, f := range []Format{FormatYOLOv8, FormatYOLOv5} {
			if d, err := NewDecoder(f, tt.shape, 32, 32); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewDecoder(%s, %v) = %v, %v; want an error containing %q", f, tt.shape, d, err, tt.want)
			}
		}
	}
}

// TestDetectFormatBoundaries pins the edges of DetectFormat's rules: the
// fastestv2 row count and its 15 anchor columns, end2end's 1000-row cap,
// and a one-class grid of three times the cells (yolov5 or end2end).
func TestDetectFormatBoundaries(t *testing.T) {
	tests := []struct {
		shape    []int64
		inW, inH int
		want     Format // "" = an error
	}{
		{[]int64{1, 17}, 16, 16, FormatFastestV2},     // one stride-16 cell, no stride-32 cell
		{[]int64{605, 16}, 352, 352, FormatFastestV2}, // one class
		{[]int64{605, 15}, 352, 352, ""},              // no class
		{[]int64{0, 17}, 8, 8, ""},                    // no cells at all
		{[]int64{1, 1000, 6}, 640, 640, FormatEnd2End},
		{[]int64{1, 1001, 6}, 640, 640, ""},
		{[]int64{1, 567, 6}, 96, 96, ""}, // 3 × 189 cells: one-class yolov5 or end2end
	}
	for _, tt := range tests {
		got, err := DetectFormat(tt.shape, tt.inW, tt.inH)
		if tt.want == "" {
			if err == nil {
				t.Errorf("DetectFormat(%v, %d, %d) = %q, want an error", tt.shape, tt.inW, tt.inH, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("DetectFormat(%v, %d, %d) = %q, %v; want %q", tt.shape, tt.inW, tt.inH, got, err, tt.want)
		}
	}
}

// TestNewDecoderNeedsAClass: each layout with class columns refuses an
// output that has none, and takes one with a single class.
func TestNewDecoderNeedsAClass(t *testing.T) {
	tests := []struct {
		f        Format
		none     []int64
		one      []int64
		inW, inH int
	}{
		{FormatYOLOv8, []int64{1, 4, 100}, []int64{1, 5, 100}, 32, 32},
		{FormatYOLOv5, []int64{1, 63, 5}, []int64{1, 63, 6}, 32, 32},
		{FormatYOLOX, []int64{1, 21, 5}, []int64{1, 21, 6}, 32, 32},
		{FormatYOLOXLevels, []int64{1, 21, 5}, []int64{1, 21, 6}, 32, 32},
		{FormatFastestV2, []int64{605, 15}, []int64{605, 16}, 352, 352},
	}
	for _, tt := range tests {
		if d, err := NewDecoder(tt.f, tt.none, tt.inW, tt.inH); err == nil || !strings.Contains(err.Error(), "at least 1 class") {
			t.Errorf("NewDecoder(%s, %v) = %v, %v; want an error asking for a class", tt.f, tt.none, d, err)
		}
		d, err := NewDecoder(tt.f, tt.one, tt.inW, tt.inH)
		if err != nil || d.NumClasses() != 1 {
			t.Errorf("NewDecoder(%s, %v) = %v, %v; want a one-class decoder", tt.f, tt.one, d, err)
		}
	}
}
