package detection

import (
	"math"
	"testing"
)

func TestYOLOXDecode(t *testing.T) {
	// A 96x64 input (non-square, so a swapped grid width/height shows):
	// stride 8: 12x8 = 96 cells, stride 16: 6x4 = 24, stride 32: 3x2 = 6.
	const inW, inH, nc, cols = 96, 64, 2, 7
	const rows = 96 + 24 + 6
	out := make([]float32, rows*cols)
	for i := range rows {
		out[i*cols+4] = 0.01 // low objectness everywhere
		out[i*cols+5] = 0.9
	}
	setRow := func(i int, vals ...float32) { copy(out[i*cols:], vals) }
	ln := func(v float64) float32 { return float32(math.Log(v)) }

	// Stride 8, gx=3 gy=2: row 2*12+3 = 27.
	// cx = (0.5+3)*8 = 28, cy = (0.25+2)*8 = 18, w = e^0*8 = 8, h = e^ln2*8 = 16.
	setRow(27, 0.5, 0.25, 0, ln(2), 0.8, 0.5, 0.9)
	// Stride 16, gx=5 gy=2: row 96 + 2*6+5 = 113.
	// cx = 5.5*16 = 88, cy = 2.5*16 = 40, w = 2*16 = 32, h = 16.
	setRow(113, 0.5, 0.5, ln(2), 0, 0.9, 0.6, 0.1)
	// Stride 32, gx=2 gy=1: row 96+24 + 1*3+2 = 125 (the last row).
	// cx = 2*32 = 64, cy = 1.5*32 = 48, w = 0.5*32 = 16, h = 1.5*32 = 48.
	setRow(125, 0, 0.5, ln(0.5), ln(1.5), 1, 0.3, 0.7)
	// High objectness but obj*cls = 0.9*0.2 = 0.18 < 0.3: dropped.
	setRow(50, 0, 0, 0, 0, 0.9, 0.2, 0.1)

	d := mustDecoder(t, FormatYOLOX, []int64{1, rows, cols}, inW, inH)
	if got := d.NumClasses(); got != nc {
		t.Errorf("NumClasses = %d, want %d", got, nc)
	}
	got := d.Decode(out, 0.3, nil)
	assertDetections(t, got, []Detection{
		{ClassID: 1, Score: 0.8 * 0.9, Box: Box{24, 10, 32, 26}},
		{ClassID: 0, Score: 0.9 * 0.6, Box: Box{72, 32, 104, 48}},
		{ClassID: 1, Score: 0.7, Box: Box{56, 24, 72, 72}},
	})

	dst := make([]Detection, 0, 8)
	assertNoAllocs(t, "yolox decode", func() { dst = d.Decode(out, 0.3, dst[:0]) })
}
