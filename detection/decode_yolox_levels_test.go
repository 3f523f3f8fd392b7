package detection

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// levelsTensor builds a yolox_levels output for an inW x inH input with nc
// classes: one channel-major block [5+nc][gridH*gridW] per stride 8, 16, 32.
type levelsTensor struct {
	out          []float32
	ch           int
	base, gw, gh [3]int
}

func newLevelsTensor(inW, inH, nc int) *levelsTensor {
	l := &levelsTensor{ch: 5 + nc}
	n := 0
	for i, s := range yoloxStrides {
		l.base[i] = n * l.ch
		l.gw[i], l.gh[i] = inW/s, inH/s
		n += l.gw[i] * l.gh[i]
	}
	l.out = make([]float32, n*l.ch)
	return l
}

// set writes channel values vals[0], vals[1], … of cell (gx, gy) of level lv.
func (l *levelsTensor) set(lv, gx, gy int, vals ...float32) {
	cells := l.gw[lv] * l.gh[lv]
	for k, v := range vals {
		l.out[l.base[lv]+k*cells+gy*l.gw[lv]+gx] = v
	}
}

// logit is the inverse of the sigmoid.
func logit(p float64) float32 { return float32(math.Log(p / (1 - p))) }

func TestYOLOXLevelsDecode(t *testing.T) {
	// A 96x64 input (non-square, so a swapped grid width/height shows):
	// stride 8: 12x8 = 96 cells, stride 16: 6x4 = 24, stride 32: 3x2 = 6.
	const inW, inH, nc = 96, 64, 2
	l := newLevelsTensor(inW, inH, nc)
	for lv := range 3 {
		for gy := range l.gh[lv] {
			for gx := range l.gw[lv] {
				l.set(lv, gx, gy, 0, 0, 0, 0, -10, 5, -5) // objectness ~4.5e-5 everywhere
			}
		}
	}
	ln := func(v float64) float32 { return float32(math.Log(v)) }

	// Stride 8, gx=3 gy=2: cx = (0.5+3)*8 = 28, cy = (0.25+2)*8 = 18,
	// w = e^0*8 = 8, h = e^ln2*8 = 16.
	l.set(0, 3, 2, 0.5, 0.25, 0, ln(2), logit(0.8), logit(0.5), logit(0.9))
	// Stride 16, gx=5 gy=2: cx = 5.5*16 = 88, cy = 2.5*16 = 40, w = 32, h = 16.
	l.set(1, 5, 2, 0.5, 0.5, ln(2), 0, logit(0.9), logit(0.6), logit(0.1))
	// Stride 32, gx=2 gy=1 (the last cell): cx = 64, cy = 48, w = 16, h = 48.
	// A +Inf logit is probability 1.
	l.set(2, 2, 1, 0, 0.5, ln(0.5), ln(1.5), float32(math.Inf(1)), logit(0.3), logit(0.7))
	// High objectness but obj*cls = 0.9*0.2 = 0.18 < 0.3: dropped.
	l.set(0, 0, 1, 0, 0, 0, 0, logit(0.9), logit(0.2), logit(0.1))

	d := mustDecoder(t, FormatYOLOXLevels, []int64{1, 126, 7}, inW, inH)
	if got := d.NumClasses(); got != nc {
		t.Errorf("NumClasses = %d, want %d", got, nc)
	}
	want := []Detection{
		{ClassID: 1, Score: 0.8 * 0.9, Box: Box{24, 10, 32, 26}},
		{ClassID: 0, Score: 0.9 * 0.6, Box: Box{72, 32, 104, 48}},
		{ClassID: 1, Score: 0.7, Box: Box{56, 24, 72, 72}},
	}
	got := d.Decode(l.out, 0.3, nil)
	assertDetections(t, got, want)

	// The same memory read as a plain yolox [N][5+nc] array does not give
	// these boxes: the format must be chosen, it cannot be a no-op.
	plain := mustDecoder(t, FormatYOLOX, []int64{1, 126, 7}, inW, inH).Decode(l.out, 0.3, nil)
	if reflect.DeepEqual(plain, got) {
		t.Errorf("yolox reads the yolox_levels tensor the same way: %+v", plain)
	}

	dst := make([]Detection, 0, 8)
	assertNoAllocs(t, "yolox_levels decode", func() { dst = d.Decode(l.out, 0.3, dst[:0]) })
}

// TestYOLOXLevelsSigmoid: objectness and class are logits; the score is
// the product of their sigmoids, NaN logits give no candidate and a -Inf
// objectness none either.
func TestYOLOXLevelsSigmoid(t *testing.T) {
	tests := []struct {
		name     string
		obj, cls float32
		want     float32 // -1: no candidate
	}{
		{"zero logits", 0, 0, 0.25},
		{"obj 2, cls -1", 2, -1, float32(1 / (1 + math.Exp(-2)) / (1 + math.Exp(1)))},
		{"certain", inf, inf, 1},
		{"obj -Inf", -inf, inf, -1},
		{"obj NaN", nan, inf, -1},
		{"cls NaN", inf, nan, -1},
	}
	for _, tt := range tests {
		l := newLevelsTensor(32, 32, 1)
		for lv := range 3 {
			for gy := range l.gh[lv] {
				for gx := range l.gw[lv] {
					l.set(lv, gx, gy, 0, 0, 0, 0, -inf, -inf)
				}
			}
		}
		l.set(1, 1, 0, 0.5, 0.5, 0, 0, tt.obj, tt.cls) // stride 16: box 16x16 at (24, 8)
		d := mustDecoder(t, FormatYOLOXLevels, []int64{1, int64(gridCells(32, 32)), 6}, 32, 32)
		got := d.Decode(l.out, 0.01, nil)
		if tt.want < 0 {
			if len(got) != 0 {
				t.Errorf("%s: got %+v, want no candidate", tt.name, got)
			}
			continue
		}
		assertDetections(t, got, []Detection{{ClassID: 0, Score: tt.want, Box: Box{16, 0, 32, 16}}})
	}
}

// TestYOLOXLevelsShape: yolox_levels takes the shapes yolox takes and
// refuses the others the same way, naming its format.
func TestYOLOXLevelsShape(t *testing.T) {
	if _, err := NewDecoder(FormatYOLOXLevels, []int64{1, 8400, 85}, 640, 640); err != nil {
		t.Errorf("[1 8400 85] at 640x640: %v", err)
	}
	for _, tt := range []struct {
		shape []int64
		want  string
	}{
		{[]int64{1, 8000, 85}, "yolox_levels output [1 8000 85]: 8000 rows, want 8400"},
		{[]int64{1, 8400, 5}, "yolox_levels output [1 8400 5]: rows of 5"},
		{[]int64{1, 85, 8400}, "85 rows, want 8400"},
	} {
		if d, err := NewDecoder(FormatYOLOXLevels, tt.shape, 640, 640); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewDecoder(yolox_levels, %v) = %v, %v; want an error containing %q", tt.shape, d, err, tt.want)
		}
	}
	// The shape alone says yolox: yolox_levels is never detected.
	if f, err := DetectFormat([]int64{1, 8400, 85}, 640, 640); err != nil || f != FormatYOLOX {
		t.Errorf("DetectFormat([1 8400 85]) = %q, %v; want yolox", f, err)
	}
}

// TestYOLOXLevelsSpec: the format's description defaults are the
// bubbliiiing preprocessing (RGB, /255, ImageNet mean/std, centred
// letterbox, grey 128), a sidecar can name the format, and an unknown
// format's error lists it.
func TestYOLOXLevelsSpec(t *testing.T) {
	got := Spec{Format: FormatYOLOXLevels}.WithDefaults()
	want := Spec{Format: FormatYOLOXLevels, ChannelOrder: "rgb", Scale: 1.0 / 255,
		Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225},
		Resize: ResizeLetterbox, PadValue: intp(128), Strides: []int{8, 16, 32}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("yolox_levels defaults\n got %+v\nwant %+v", got, want)
	}
	got.Mean[0], got.Std[0] = -1, -1
	if ImageNetMean[0] != 0.485 || ImageNetStd[0] != 0.229 {
		t.Error("WithDefaults handed out ImageNetMean/ImageNetStd themselves")
	}

	spec, err := ParseSidecar([]byte("format = \"yolox_levels\"\npad_value = 100\nchannel_order = \"bgr\"\n"), "/m/x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Format != FormatYOLOXLevels || *spec.WithDefaults().PadValue != 100 || spec.WithDefaults().ChannelOrder != "bgr" {
		t.Errorf("sidecar: %+v; want yolox_levels with pad 100, bgr", spec)
	}
	if _, err := ParseSidecar([]byte("format = \"yolox-levels\"\n"), "/m/x.toml"); err == nil ||
		!containsAll(err.Error(), []string{"/m/x.toml", `format: "yolox-levels"`, "yolox_levels"}) {
		t.Errorf("misspelt format: %v; want an error naming the file, the value and yolox_levels", err)
	}
}
