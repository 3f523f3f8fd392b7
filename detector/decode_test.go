package detector

import (
	"math"
	"strings"
	"testing"
)

func mustDecoder(t testing.TB, f Format, shape []int64, inW, inH int) Decoder {
	t.Helper()
	d, err := NewDecoder(f, shape, inW, inH)
	if err != nil {
		t.Fatalf("NewDecoder(%q, %v, %d, %d): %v", f, shape, inW, inH, err)
	}
	return d
}

// assertDetections compares class, score and box of got and want, in order.
func assertDetections(t *testing.T, got, want []Detection) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d detections, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ClassID != w.ClassID || abs32(g.Score-w.Score) > 1e-6 {
			t.Errorf("detection %d: class %d score %g, want class %d score %g", i, g.ClassID, g.Score, w.ClassID, w.Score)
		}
		assertBox(t, "detection box", g.Box, w.Box, 1e-4)
	}
}

func assertNoAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(20, f); n != 0 {
		t.Errorf("%s: %g allocs per run, want 0", name, n)
	}
}

func TestYOLOv8Decode(t *testing.T) {
	const nc, n = 3, 4
	out := make([]float32, (4+nc)*n)
	// Channel-major: value(c, i) = out[c*n+i].
	set := func(i int, vals ...float32) {
		for c, v := range vals {
			out[c*n+i] = v
		}
	}
	set(0, 10, 20, 4, 6, 0.1, 0.2, 0.9)      // class 2 wins
	set(1, 50, 50, 10, 10, 0.1, 0.2, 0.1)    // below minScore
	set(2, 100, 50, 20, 10, 0.3, 0.8, 0.8)   // tie: first class wins
	set(3, 200, 150, 40, 30, 0.25, 0.0, 0.1) // exactly minScore: kept
	d := mustDecoder(t, FormatYOLOv8, []int64{1, 4 + nc, n}, 320, 320)
	if got := d.NumClasses(); got != nc {
		t.Errorf("NumClasses = %d, want %d", got, nc)
	}

	prefix := Detection{ClassID: 7, Score: 1}
	got := d.Decode(out, 0.25, []Detection{prefix})
	assertDetections(t, got, []Detection{
		prefix,
		{ClassID: 2, Score: 0.9, Box: Box{8, 17, 12, 23}},
		{ClassID: 1, Score: 0.8, Box: Box{90, 45, 110, 55}},
		{ClassID: 0, Score: 0.25, Box: Box{180, 135, 220, 165}},
	})

	dst := make([]Detection, 0, n)
	assertNoAllocs(t, "yolov8 decode", func() { dst = d.Decode(out, 0.25, dst[:0]) })
}

func TestYOLOv8DecodeAcrossBlocks(t *testing.T) {
	// More anchors than one scoring block, with winners on both sides of
	// the block boundary and in the short last block.
	const nc, n = 5, 2*yolov8Block + 44
	out := make([]float32, (4+nc)*n)
	type hit struct{ i, cls int }
	hits := []hit{{0, 4}, {yolov8Block - 1, 1}, {yolov8Block, 3}, {2 * yolov8Block, 0}, {n - 1, 2}}
	var want []Detection
	for k, h := range hits {
		cx := float32(10 * (k + 1))
		out[h.i], out[n+h.i], out[2*n+h.i], out[3*n+h.i] = cx, 2*cx, 4, 8
		score := 0.5 + float32(k)/10
		out[(4+h.cls)*n+h.i] = score
		want = append(want, Detection{ClassID: h.cls, Score: score, Box: Box{cx - 2, 2*cx - 4, cx + 2, 2*cx + 4}})
	}
	d := mustDecoder(t, FormatYOLOv8, []int64{1, 4 + nc, n}, 640, 640)
	assertDetections(t, d.Decode(out, 0.25, nil), want)
}

func TestYOLOv5Decode(t *testing.T) {
	out := []float32{
		50, 60, 10, 20, 0.9, 0.5, 0.8, // score 0.9*0.8 = 0.72, class 1
		10, 10, 4, 4, 0.2, 0.9, 0.9, // obj below minScore
		30, 30, 8, 8, 0.5, 0.4, 0.2, // 0.5*0.4 = 0.2 < 0.3
		70, 80, 6, 2, 0.6, 0.5, 0.5, // 0.6*0.5 = 0.3, tie -> class 0
	}
	d := mustDecoder(t, FormatYOLOv5, []int64{1, 4, 7}, 320, 320)
	if got := d.NumClasses(); got != 2 {
		t.Errorf("NumClasses = %d, want 2", got)
	}
	got := d.Decode(out, 0.3, nil)
	assertDetections(t, got, []Detection{
		{ClassID: 1, Score: 0.9 * 0.8, Box: Box{45, 50, 55, 70}},
		{ClassID: 0, Score: float32(0.6) * 0.5, Box: Box{67, 79, 73, 81}},
	})

	// The objectness gate skips the class scan: a row whose obj is below
	// minScore is dropped even if its (out-of-range) class score would
	// lift the product above it.
	gate := []float32{0, 0, 2, 2, 0.2, 5, 0}
	d1 := mustDecoder(t, FormatYOLOv5, []int64{1, 1, 7}, 320, 320)
	if got := d1.Decode(gate, 0.3, nil); len(got) != 0 {
		t.Errorf("obj 0.2 < minScore 0.3: got %+v, want nothing", got)
	}

	dst := make([]Detection, 0, 4)
	assertNoAllocs(t, "yolov5 decode", func() { dst = d.Decode(out, 0.3, dst[:0]) })
}

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

func TestEnd2EndDecode(t *testing.T) {
	nan := float32(math.NaN())
	out := []float32{
		10, 20, 30, 40, 0.9, 2, // kept
		1, 2, 3, 4, 0.1, 0, // score below minScore
		5, 6, 7, 8, 0.8, 1.5, // class not an integer
		5, 6, 7, 8, 0.8, -1, // negative class
		5, 6, 7, 8, 0.8, nan, // NaN class
		5, 6, 7, 8, 0.8, 1e30, // class out of range
		5, 6, 7, 8, nan, 0, // NaN score
		50, 60, 70, 80, 0.5, 0, // kept, class 0
		0, 0, 0, 0, 0, 0, // padding row (score 0)
	}
	const k = 9
	d := mustDecoder(t, FormatEnd2End, []int64{1, k, 6}, 640, 640)
	if got := d.NumClasses(); got != 0 {
		t.Errorf("NumClasses = %d, want 0 (unknown)", got)
	}
	got := d.Decode(out, 0.25, nil)
	assertDetections(t, got, []Detection{
		{ClassID: 2, Score: 0.9, Box: Box{10, 20, 30, 40}},
		{ClassID: 0, Score: 0.5, Box: Box{50, 60, 70, 80}},
	})

	dst := make([]Detection, 0, k)
	assertNoAllocs(t, "end2end decode", func() { dst = d.Decode(out, 0.25, dst[:0]) })
}

func TestDecodeShortOutputPanics(t *testing.T) {
	d := mustDecoder(t, FormatYOLOv8, []int64{1, 84, 2100}, 320, 320)
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Decode of a short output did not panic")
		}
		if msg, _ := r.(string); !strings.Contains(msg, "100 values, want 176400") {
			t.Errorf("panic %v does not give the sizes", r)
		}
	}()
	d.Decode(make([]float32, 100), 0.25, nil)
}

func TestNewDecoderErrors(t *testing.T) {
	tests := []struct {
		name      string
		f         Format
		shape     []int64
		inW, inH  int
		wantInErr []string
	}{
		{"unknown format", "yolov3", []int64{1, 84, 2100}, 320, 320, []string{`"yolov3"`}},
		{"empty format", "", []int64{1, 84, 2100}, 320, 320, []string{`""`}},
		{"rank 2", FormatYOLOv8, []int64{84, 2100}, 320, 320, []string{"[84 2100]", "rank 2"}},
		{"batch 2", FormatYOLOv8, []int64{2, 84, 2100}, 320, 320, []string{"[2 84 2100]", "batch 2"}},
		{"dynamic dim", FormatYOLOv5, []int64{1, -1, 85}, 320, 320, []string{"[1 -1 85]", "dimension 1 is -1"}},
		{"zero dim", FormatEnd2End, []int64{1, 300, 0}, 320, 320, []string{"[1 300 0]", "dimension 2 is 0"}},
		{"yolov8 no classes", FormatYOLOv8, []int64{1, 4, 2100}, 320, 320, []string{"yolov8 output [1 4 2100]", "4 channels"}},
		{"yolov5 no classes", FormatYOLOv5, []int64{1, 25200, 5}, 640, 640, []string{"yolov5 output [1 25200 5]", "rows of 5"}},
		{"yolox no classes", FormatYOLOX, []int64{1, 3549, 5}, 416, 416, []string{"yolox output [1 3549 5]", "rows of 5"}},
		{"end2end 7 columns", FormatEnd2End, []int64{1, 300, 7}, 640, 640, []string{"end2end output [1 300 7]", "rows of 7"}},
		{"bad input size", FormatYOLOX, []int64{1, 3549, 85}, 0, 416, []string{"0x416"}},
		{"too large", FormatYOLOv8, []int64{1, 1 << 20, 1 << 20}, 320, 320, []string{"[1 1048576 1048576]"}},
		// 84 x 2^21 fits an int32 but is 704 MiB of float32 per slot.
		{"over MaxOutputValues", FormatYOLOv8, []int64{1, 84, 1 << 21}, 320, 320, []string{"[1 84 2097152]", "more than the 67108864"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDecoder(tt.f, tt.shape, tt.inW, tt.inH)
			if err == nil {
				t.Fatalf("NewDecoder = %T, want an error", d)
			}
			if d != nil {
				t.Errorf("NewDecoder returned %T with an error, want nil", d)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}

	// The yolox row count error spells out the arithmetic.
	_, err := NewDecoder(FormatYOLOX, []int64{1, 100, 85}, 416, 416)
	const want = "yolox output [1 100 85]: 100 rows, want 3549 for a 416x416 input with strides 8,16,32"
	if err == nil || err.Error() != want {
		t.Errorf("NewDecoder yolox [1 100 85] @416: error %v, want %q", err, want)
	}
}

func TestNewDecoderRealShapes(t *testing.T) {
	tests := []struct {
		f        Format
		shape    []int64
		inW, inH int
		nc       int
	}{
		{FormatYOLOv8, []int64{1, 84, 2100}, 320, 320, 80},
		{FormatYOLOv8, []int64{1, 84, 8400}, 640, 640, 80},
		{FormatYOLOX, []int64{1, 3549, 85}, 416, 416, 80},
		{FormatYOLOX, []int64{1, 8400, 85}, 640, 640, 80},
		{FormatYOLOv5, []int64{1, 25200, 85}, 640, 640, 80},
		{FormatEnd2End, []int64{1, 300, 6}, 640, 640, 0},
	}
	for _, tt := range tests {
		d := mustDecoder(t, tt.f, tt.shape, tt.inW, tt.inH)
		if got := d.NumClasses(); got != tt.nc {
			t.Errorf("%s %v: NumClasses = %d, want %d", tt.f, tt.shape, got, tt.nc)
		}
		// An all-zero output decodes to nothing at a positive threshold.
		size := tt.shape[1] * tt.shape[2]
		if got := d.Decode(make([]float32, size), 0.01, nil); len(got) != 0 {
			t.Errorf("%s %v: zero output decoded to %d detections", tt.f, tt.shape, len(got))
		}
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		shape    []int64
		inW, inH int
		want     Format
	}{
		{[]int64{1, 84, 2100}, 320, 320, FormatYOLOv8},
		{[]int64{1, 84, 8400}, 640, 640, FormatYOLOv8},
		{[]int64{1, 5, 2100}, 320, 320, FormatYOLOv8}, // one class
		{[]int64{1, 3549, 85}, 416, 416, FormatYOLOX},
		{[]int64{1, 8400, 85}, 640, 640, FormatYOLOX},
		{[]int64{1, 10647, 85}, 416, 416, FormatYOLOv5},
		{[]int64{1, 25200, 85}, 640, 640, FormatYOLOv5},
		{[]int64{1, 1764, 85}, 384, 224, FormatYOLOX}, // 48*28 + 24*14 + 12*7
		{[]int64{1, 300, 6}, 640, 640, FormatEnd2End},
		{[]int64{1, 300, 6}, 416, 416, FormatEnd2End},
		{[]int64{1, 3549, 6}, 416, 416, FormatYOLOX}, // one-class yolox: K > 1000
	}
	for _, tt := range tests {
		got, err := DetectFormat(tt.shape, tt.inW, tt.inH)
		if err != nil {
			t.Errorf("DetectFormat(%v, %d, %d): %v", tt.shape, tt.inW, tt.inH, err)
			continue
		}
		if got != tt.want {
			t.Errorf("DetectFormat(%v, %d, %d) = %q, want %q", tt.shape, tt.inW, tt.inH, got, tt.want)
		}
		// Whatever DetectFormat picks, NewDecoder accepts.
		if _, err := NewDecoder(got, tt.shape, tt.inW, tt.inH); err != nil {
			t.Errorf("NewDecoder(%q, %v): %v", got, tt.shape, err)
		}
	}
}

func TestDetectFormatErrors(t *testing.T) {
	tests := []struct {
		name      string
		shape     []int64
		inW, inH  int
		wantInErr []string
	}{
		{"rank 2", []int64{3549, 85}, 416, 416, []string{"[3549 85]", "rank 2", "supported"}},
		{"rank 4", []int64{1, 85, 22, 22}, 352, 352, []string{"[1 85 22 22]", "rank 4"}},
		{"square", []int64{1, 85, 85}, 416, 416, []string{"[1 85 85]", "supported"}},
		{"rows match no grid", []int64{1, 100, 85}, 416, 416, []string{"[1 100 85]", "ambiguous", "format"}},
		{"640 grid at 416", []int64{1, 8400, 85}, 416, 416, []string{"[1 8400 85]", "ambiguous", "3549", "10647"}},
		{"one-class grid with 6 columns", []int64{1, 525, 6}, 160, 160, []string{"[1 525 6]", "ambiguous", "format"}},
		{"zero dim", []int64{1, 0, 85}, 416, 416, []string{"[1 0 85]", "dimension 1 is 0"}},
		{"dynamic dim", []int64{1, 84, -1}, 320, 320, []string{"[1 84 -1]", "dimension 2 is -1"}},
		{"batch 4", []int64{4, 84, 2100}, 320, 320, []string{"[4 84 2100]", "batch 4"}},
		{"too few channels", []int64{1, 4, 2100}, 320, 320, []string{"[1 4 2100]", "supported"}},
		{"too few columns", []int64{1, 2100, 5}, 320, 320, []string{"[1 2100 5]", "supported"}},
		{"bad input size", []int64{1, 84, 2100}, 320, -320, []string{"320x-320"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DetectFormat(tt.shape, tt.inW, tt.inH)
			if err == nil {
				t.Fatalf("DetectFormat = %q, want an error", f)
			}
			if f != "" {
				t.Errorf("DetectFormat returned %q with an error, want \"\"", f)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// TestDecodeDropsNonFinite: a broken model (NaN from the runtime, exp
// overflow, Inf scores) must not hand NaN or Inf boxes on to NMS and the
// JSON that is published; a score slightly over 1 counts as 1.
func TestDecodeDropsNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	// end2end rows x1,y1,x2,y2,score,class.
	e2e := mustDecoder(t, FormatEnd2End, []int64{1, 4, 6}, 64, 64)
	got := e2e.Decode([]float32{
		0, 0, nan, 10, 0.9, 0,
		0, 0, 10, inf, 0.9, 0,
		0, 0, 10, 10, inf, 0,
		1, 1, 10, 10, 1.004, 3,
	}, 0.25, nil)
	assertDetections(t, got, []Detection{{ClassID: 3, Score: 1, Box: Box{1, 1, 10, 10}}})
	// yolox: exp(100) overflows float32 to +Inf.
	yx := mustDecoder(t, FormatYOLOX, []int64{1, int64(gridCells(32, 32)), 6}, 32, 32)
	out := make([]float32, 6*gridCells(32, 32))
	copy(out, []float32{0, 0, 100, 0, 1, 1})
	if got := yx.Decode(out, 0.25, nil); len(got) != 0 {
		t.Fatalf("yolox with exp overflow: %+v, want nothing", got)
	}
}
