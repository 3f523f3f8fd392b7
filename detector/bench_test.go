package detector_test

import (
	"context"
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

func yoloxSpec() detection.Spec {
	return detection.Spec{Format: detection.FormatYOLOX, InputWidth: 416, InputHeight: 416}.WithDefaults()
}

func TestPreprocessValuesAndAllocs(t *testing.T) {
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg")) // 768x576
	spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 320, InputHeight: 320}.WithDefaults()
	p, err := detector.NewPreprocessor(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dst := make([]float32, p.Len())
	g, err := p.Run(img, dst)
	if err != nil {
		t.Fatal(err)
	}
	// 768x576 → r = 320/768: 320x240 centred, 40 px of padding above and below.
	if g.ResizedW != 320 || g.ResizedH != 240 || g.PadTop != 40 || g.PadLeft != 0 {
		t.Fatalf("geometry %+v", g)
	}
	pad := float32(114) / 255
	plane := 320 * 320
	for c := 0; c < 3; c++ {
		if v := dst[c*plane]; math.Abs(float64(v-pad)) > 1e-6 {
			t.Errorf("channel %d top-left padding = %v, want %v", c, v, pad)
		}
		if v := dst[c*plane+319*320+319]; math.Abs(float64(v-pad)) > 1e-6 {
			t.Errorf("channel %d bottom-right padding = %v, want %v", c, v, pad)
		}
	}
	// Image area: scaled pixels, not padding.
	for c := 0; c < 3; c++ {
		v := dst[c*plane+160*320+160]
		if v < 0 || v > 1 || math.Abs(float64(v-pad)) < 1e-6 {
			t.Errorf("channel %d centre value %v not a scaled pixel", c, v)
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := p.Run(img, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("Preprocessor.Run allocates %.0f times per frame", allocs)
	}
}

func TestPreprocessChannelOrderAndScale(t *testing.T) {
	// A uniform BGR image (10, 20, 30) stretched: every model pixel is known.
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	img.SetTo(gocvScalar(10, 20, 30))
	for _, tc := range []struct {
		order string
		want  [3]float32
	}{{"bgr", [3]float32{10, 20, 30}}, {"rgb", [3]float32{30, 20, 10}}} {
		spec := detection.Spec{Format: detection.FormatYOLOX, InputWidth: 64, InputHeight: 64, ChannelOrder: tc.order,
			Scale: 1, Mean: []float32{1, 2, 3}, Std: []float32{2, 2, 2}, Resize: detection.ResizeStretch}.WithDefaults()
		p, err := detector.NewPreprocessor(spec)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, p.Len())
		if _, err := p.Run(img, dst); err != nil {
			t.Fatal(err)
		}
		for c := 0; c < 3; c++ {
			want := (tc.want[c] - spec.Mean[c]) / 2
			if got := dst[c*64*64+33*64+17]; got != want {
				t.Errorf("%s channel %d = %v, want %v", tc.order, c, got, want)
			}
		}
		p.Close()
	}
}

func BenchmarkPreprocessYOLOX(b *testing.B) {
	img := readImage(b, testenv.Shared(b, "datasets", "samples", "dog.jpg"))
	p, err := detector.NewPreprocessor(yoloxSpec())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	dst := make([]float32, p.Len())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Run(img, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDetectYOLOX times the whole Detect call (pre + inference + post)
// of the FP32 reference model on one thread, with the stage split reported.
func BenchmarkDetectYOLOX(b *testing.B) {
	img := readImage(b, testenv.Shared(b, "datasets", "samples", "dog.jpg"))
	cfg := detector.DefaultConfig()
	cfg.Model = testenv.Shared(b, "models", "yolox_nano_416.onnx")
	cfg.Threads = 1
	d := newDetector(b, cfg)
	dets := make([]detection.Detection, 0, 128)
	var pre, inf, post float64
	b.ReportAllocs()
	for b.Loop() {
		res, err := d.Detect(context.Background(), img, dets)
		if err != nil {
			b.Fatal(err)
		}
		pre += float64(res.Timings.Preprocess)
		inf += float64(res.Timings.Inference)
		post += float64(res.Timings.Postprocess)
	}
	n := float64(b.N)
	b.ReportMetric(pre/n/1e6, "pre-ms/op")
	b.ReportMetric(inf/n/1e6, "infer-ms/op")
	b.ReportMetric(post/n/1e6, "post-ms/op")
	b.ReportMetric((pre+post)/inf*100, "overhead-%")
}

func gocvScalar(b, g, r float64) gocv.Scalar { return gocv.NewScalar(b, g, r, 0) }

// TestPreprocessRegion: a region of a larger frame (a view into its memory)
// preprocesses exactly like the same pixels copied out, resized or not.
func TestPreprocessRegion(t *testing.T) {
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg")) // 768x576
	spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 320, InputHeight: 320}.WithDefaults()
	p, err := detector.NewPreprocessor(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, r := range []image.Rectangle{image.Rect(100, 50, 420, 370), image.Rect(0, 0, 500, 400)} {
		view := img.Region(r)
		copied := view.Clone()
		a, b := make([]float32, p.Len()), make([]float32, p.Len())
		ga, errA := p.Run(view, a)
		gb, errB := p.Run(copied, b)
		view.Close()
		copied.Close()
		if errA != nil || errB != nil {
			t.Fatalf("region %v: %v, %v", r, errA, errB)
		}
		if ga != gb {
			t.Errorf("region %v: geometry %+v vs %+v", r, ga, gb)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("region %v: value %d differs: %v vs %v", r, i, a[i], b[i])
			}
		}
	}
}
