package detection

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
		{"over MaxOutputValues", FormatYOLOv8, []int64{1, 84, 1 << 21}, 320, 320, []string{"[1 84 2097152]", "84 x 2097152 values, more than the 67108864"}},
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
	e2e := mustDecoder(t, FormatEnd2End, []int64{1, 6, 6}, 64, 64)
	got := e2e.Decode([]float32{
		nan, 0, 10, 10, 0.9, 0,
		0, -inf, 10, 10, 0.9, 0,
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

// TestFinite: finite accepts every finite float32, the extremes included,
// and refuses NaN and both infinities. The products are computed where
// finite is inlined, as the decoders' score := obj * cls is: where the
// compiler fuses a product with a subtraction (arm64), a v-v == 0 test saw
// the product's rounding error and refused them.
func TestFinite(t *testing.T) {
	for _, v := range []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, -math.MaxFloat32,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, 0x1p-126} {
		if !finite(v) {
			t.Errorf("finite(%g) = false, want true", v)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if finite(float32(v)) {
			t.Errorf("finite(%g) = true, want false", v)
		}
	}
	obj := []float32{0.9, 0.855, 0.3, 1e-3}
	cls := []float32{0.9, 0.95, 0.7, 0.123}
	for i := range obj {
		if !finite(obj[i] * cls[i]) {
			t.Errorf("finite(%g * %g) = false, want true", obj[i], cls[i])
		}
	}
}
