package detection

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestDecodeShortOutputPanics: every decoder checks the output length
// against its shape before reading and panics naming both sizes, not with
// an index error part-way through.
func TestDecodeShortOutputPanics(t *testing.T) {
	tests := []struct {
		f          Format
		shape      []int64
		inW, inH   int
		have, want int
	}{
		{FormatYOLOv8, []int64{1, 84, 2100}, 320, 320, 100, 84 * 2100},
		{FormatYOLOv5, []int64{1, 4, 7}, 320, 320, 27, 4 * 7},
		{FormatYOLOX, []int64{1, 126, 7}, 96, 64, 125 * 7, 126 * 7},
		{FormatYOLOXLevels, []int64{1, 126, 7}, 96, 64, 125 * 7, 126 * 7},
		{FormatEnd2End, []int64{1, 9, 6}, 640, 640, 53, 9 * 6},
		{FormatFastestV2, []int64{20, 17}, 64, 64, 339, 20 * 17},
	}
	for _, tt := range tests {
		t.Run(string(tt.f), func(t *testing.T) {
			d := mustDecoder(t, tt.f, tt.shape, tt.inW, tt.inH)
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("Decode of a short output did not panic")
				}
				want := fmt.Sprintf("%s decode: output has %d values, want %d", tt.f, tt.have, tt.want)
				if msg, _ := r.(string); !strings.Contains(msg, want) {
					t.Errorf("panic %v does not say %q", r, want)
				}
			}()
			d.Decode(make([]float32, tt.have), 0, nil)
		})
	}
}

// TestDecodeKeepsScoreEqualToMin: every decoder keeps a candidate whose
// score (and, where there is one, objectness) is exactly minScore.
func TestDecodeKeepsScoreEqualToMin(t *testing.T) {
	const minScore = 0.5
	yoloxRows := gridCells(32, 32)
	yolox := make([]float32, yoloxRows*6)
	copy(yolox[5*6:], []float32{0.5, 0.5, 0, 0, minScore, 1}) // stride 8, gx=1, gy=1
	levels := newLevelsTensor(32, 32, 1)
	for i := range levels.out {
		levels.out[i] = float32(math.Inf(-1))
	}
	levels.set(0, 1, 1, 0.5, 0.5, 0, 0, float32(math.Inf(1)), 0) // stride 8, gx=1, gy=1: 1 * 0.5
	fastest := make([]float32, 20*16)
	copy(fastest[5*16:], []float32{0.5, 0.5, 0.5, 0.5}) // stride 16, gx=1, gy=1, anchor 0
	fastest[5*16+12], fastest[5*16+15] = minScore, 1
	tests := []struct {
		f     Format
		shape []int64
		in    int
		out   []float32
	}{
		{FormatYOLOv8, []int64{1, 5, 1}, 32, []float32{10, 10, 4, 4, minScore}},
		{FormatYOLOv5, []int64{1, 1, 6}, 32, []float32{10, 10, 4, 4, minScore, 1}},
		{FormatYOLOX, []int64{1, int64(yoloxRows), 6}, 32, yolox},
		{FormatYOLOXLevels, []int64{1, int64(yoloxRows), 6}, 32, levels.out},
		{FormatEnd2End, []int64{1, 1, 6}, 32, []float32{8, 8, 12, 12, minScore, 0}},
		{FormatFastestV2, []int64{20, 16}, 64, fastest},
	}
	for _, tt := range tests {
		d := mustDecoder(t, tt.f, tt.shape, tt.in, tt.in)
		got := d.Decode(tt.out, minScore, nil)
		if len(got) != 1 || got[0].Score != minScore || got[0].ClassID != 0 {
			t.Errorf("%s: got %+v, want one class-0 candidate scoring exactly %g", tt.f, got, minScore)
		}
	}
}
