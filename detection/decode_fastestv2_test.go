package detection

import (
	"math"
	"strings"
	"testing"
)

func TestFastestV2Decode(t *testing.T) {
	// 64x64 input: stride 16 → 4x4 cells, stride 32 → 2x2 cells; 2 classes.
	const nc = 2
	cols := 15 + nc
	n := 16 + 4
	out := make([]float32, n*cols)
	// Level 2 (stride 32), cell gx=1, gy=0 → row 16+1; anchor 1 fires.
	row := out[17*cols : 18*cols]
	row[4], row[5], row[6], row[7] = 0.5, 0.25, 0.5, 1 // anchor 1: tx, ty, tw, th
	row[13] = 0.9                                      // objectness of anchor 1
	row[15], row[16] = 0.2, 0.8                        // class probabilities
	anchors := []float32{1, 1, 2, 2, 3, 3, 10, 20, 30, 40, 50, 60}
	d, err := newFastestV2Decoder(nc, 64, 64, anchors)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Decode(out, 0.5, nil)
	if len(got) != 1 {
		t.Fatalf("want 1 detection, got %+v", got)
	}
	// cx = (2·0.5 − 0.5 + 1)·32 = 48; cy = (2·0.25 − 0.5 + 0)·32 = 0
	// w = (2·0.5)²·30 = 30; h = (2·1)²·40 = 160; score = 0.9·0.8.
	want := Detection{ClassID: 1, Score: 0.72, Box: Box{X1: 33, Y1: -80, X2: 63, Y2: 80}}
	g := got[0]
	if g.ClassID != want.ClassID || math.Abs(float64(g.Score-want.Score)) > 1e-6 ||
		math.Abs(float64(g.Box.X1-want.Box.X1)) > 1e-4 || math.Abs(float64(g.Box.Y2-want.Box.Y2)) > 1e-4 {
		t.Fatalf("got %+v, want %+v", g, want)
	}
	if got := d.Decode(out, 0.75, nil); len(got) != 0 {
		t.Fatalf("score 0.72 below 0.75 must be dropped: %+v", got)
	}
}

func TestFastestV2Format(t *testing.T) {
	f, err := DetectFormat([]int64{605, 95}, 352, 352)
	if err != nil || f != FormatFastestV2 {
		t.Fatalf("[605 95] @352: got %q, %v", f, err)
	}
	if _, err := NewDecoder(FormatFastestV2, []int64{600, 95}, 352, 352); err == nil || !strings.Contains(err.Error(), "want 605") {
		t.Fatalf("wrong row count: want error naming 605, got %v", err)
	}
	if _, err := newFastestV2Decoder(80, 352, 352, []float32{1, 2}); err == nil || !strings.Contains(err.Error(), "want 12") {
		t.Fatalf("bad anchors: got %v", err)
	}
	s := Spec{Format: FormatFastestV2}.WithDefaults()
	if s.ChannelOrder != "bgr" || s.Resize != ResizeStretch || s.Scale != 1.0/255 || len(s.Anchors) != 12 {
		t.Fatalf("fastestv2 defaults: %+v", s)
	}
}

// TestSpecDecoderUsesAnchors: a Yolo-FastestV2 spec decodes with its own
// anchors, not the COCO defaults; a bad spec gives an error and no decoder.
func TestSpecDecoderUsesAnchors(t *testing.T) {
	// 64x64 input: 16+4 rows of 15+1 values. Stride 32, cell (0,0), anchor
	// 0: tw = th = 0.5, so w = h = (2·0.5)²·anchor = the anchor itself.
	const cols = 16
	out := make([]float32, 20*cols)
	row := out[16*cols : 17*cols]
	row[2], row[3], row[12], row[15] = 0.5, 0.5, 0.9, 1
	spec := Spec{Format: FormatFastestV2, InputWidth: 64, InputHeight: 64,
		Anchors: []float32{1, 1, 2, 2, 3, 3, 10, 20, 30, 40, 50, 60}}.WithDefaults()
	shape := []int64{20, cols}
	for _, tt := range []struct {
		name string
		spec Spec
		w, h float32
	}{
		{"own anchors", spec, 10, 20},
		{"default anchors", Spec{Format: FormatFastestV2, InputWidth: 64, InputHeight: 64}.WithDefaults(),
			DefaultFastestV2Anchors[6], DefaultFastestV2Anchors[7]},
	} {
		d, err := tt.spec.Decoder(shape)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := d.Decode(out, 0.5, nil)
		if len(got) != 1 {
			t.Fatalf("%s: want 1 detection, got %+v", tt.name, got)
		}
		if w, h := got[0].Box.X2-got[0].Box.X1, got[0].Box.Y2-got[0].Box.Y1; abs32(w-tt.w) > 1e-4 || abs32(h-tt.h) > 1e-4 {
			t.Errorf("%s: box %gx%g, want %gx%g", tt.name, w, h, tt.w, tt.h)
		}
	}

	bad := spec
	bad.Anchors = []float32{1, 2}
	if d, err := bad.Decoder(shape); err == nil || d != nil || !strings.Contains(err.Error(), "want 12") {
		t.Errorf("2 anchors: got %v, %v; want no decoder and an error naming 12", d, err)
	}
	if d, err := spec.Decoder([]int64{19, cols}); err == nil || d != nil || !strings.Contains(err.Error(), "want 20") {
		t.Errorf("19 rows: got %v, %v; want no decoder and an error naming 20", d, err)
	}
}

// TestFastestV2DecodeBox pins a whole box off the first grid row and
// column, with tw, th away from 1, so every term of cx, cy, w and h shows.
func TestFastestV2DecodeBox(t *testing.T) {
	// 64x64 input, 1 class: stride 16 has 4x4 cells; cell gx=2, gy=1 is
	// row 1*4+2 = 6. Anchor 2 of stride 16 is anchors[4], anchors[5].
	const cols = 16
	out := make([]float32, 20*cols)
	row := out[6*cols : 7*cols]
	copy(row[8:12], []float32{0.25, 0.5, 0.75, 0.25}) // anchor 2: tx, ty, tw, th
	row[14], row[15] = 0.8, 0.9                       // its objectness, the class
	anchors := []float32{1, 1, 2, 2, 8, 12, 10, 20, 30, 40, 50, 60}
	d, err := newFastestV2Decoder(1, 64, 64, anchors)
	if err != nil {
		t.Fatal(err)
	}
	// cx = (2·0.25 − 0.5 + 2)·16 = 32, cy = (2·0.5 − 0.5 + 1)·16 = 24,
	// w = (2·0.75)²·8 = 18, h = (2·0.25)²·12 = 3.
	got := d.Decode(out, 0.5, nil)
	assertDetections(t, got, []Detection{{ClassID: 0, Score: 0.8 * 0.9, Box: Box{X1: 23, Y1: 22.5, X2: 41, Y2: 25.5}}})
}
