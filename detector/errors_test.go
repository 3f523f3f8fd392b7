package detector_test

import (
	"context"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestNewPreprocessorRefusesIncompleteSpecs: each unset field WithDefaults
// would fill, and an unset input size, is an error.
func TestNewPreprocessorRefusesIncompleteSpecs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		unset   func(*detection.Spec)
		wantErr string
	}{
		{"channel order", func(s *detection.Spec) { s.ChannelOrder = "" }, "incomplete"},
		{"scale", func(s *detection.Spec) { s.Scale = 0 }, "incomplete"},
		{"mean", func(s *detection.Spec) { s.Mean = nil }, "incomplete"},
		{"std", func(s *detection.Spec) { s.Std = nil }, "incomplete"},
		{"resize", func(s *detection.Spec) { s.Resize = "" }, "incomplete"},
		{"width", func(s *detection.Spec) { s.InputWidth = 0 }, "input size 0x320 not set"},
		{"height", func(s *detection.Spec) { s.InputHeight = 0 }, "input size 320x0 not set"},
		{"invalid", func(s *detection.Spec) { s.ChannelOrder = "grb" }, `channel_order: "grb"`},
	} {
		spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 320, InputHeight: 320}.WithDefaults()
		tc.unset(&spec)
		p, err := detector.NewPreprocessor(spec)
		if err == nil {
			p.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s unset: NewPreprocessor = %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestPreprocessOnePixelInput: the smallest input, 1x1, is a valid size.
func TestPreprocessOnePixelInput(t *testing.T) {
	spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 1, InputHeight: 1, Resize: detection.ResizeStretch}.WithDefaults()
	p, err := detector.NewPreprocessor(spec)
	if err != nil {
		t.Fatalf("1x1 input: %v", err)
	}
	defer p.Close()
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 255, 0), 10, 10, gocv.MatTypeCV8UC3)
	defer img.Close()
	dst := make([]float32, p.Len())
	if _, err := p.Run(img, dst); err != nil || len(dst) != 3 || dst[0] != 1 || dst[1] != 0 || dst[2] != 0 {
		t.Errorf("1x1 of a red frame: %v, %v; want RGB 1, 0, 0", dst, err)
	}
}

// TestPreprocessRefusesBadInput: a destination of the wrong length, an
// empty image and an image that is not 8-bit BGR are errors saying so;
// Close is idempotent.
func TestPreprocessRefusesBadInput(t *testing.T) {
	spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 64, InputHeight: 32}.WithDefaults()
	p, err := detector.NewPreprocessor(spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 3*64*32 || p.Spec().InputWidth != 64 || p.Spec().InputHeight != 32 {
		t.Errorf("Len %d, Spec %+v", p.Len(), p.Spec())
	}
	img := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV8UC3)
	defer img.Close()
	grey := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV8UC1)
	defer grey.Close()
	empty := gocv.NewMat()
	defer empty.Close()
	for _, tc := range []struct {
		name    string
		img     gocv.Mat
		n       int
		wantErr string
	}{
		{"short destination", img, p.Len() - 1, "destination has 6143 values, want 6144"},
		{"long destination", img, p.Len() + 1, "destination has 6145 values, want 6144"},
		{"empty image", empty, p.Len(), "empty image"},
		{"grey image", grey, p.Len(), "CV_8UC3"},
	} {
		if _, err := p.Run(tc.img, make([]float32, tc.n)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Run = %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
	if _, err := p.Run(img, make([]float32, p.Len())); err != nil {
		t.Errorf("Run after errors: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var none *detector.Preprocessor
	if err := none.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
}

// TestDetectBadImage: a frame Prepare refuses is an error, with the
// frame's size in the result, and the Job goes back to the detector.
func TestDetectBadImage(t *testing.T) {
	cfg := yoloxConfig(t)
	cfg.Slots = 1
	d := newDetector(t, cfg)
	grey := gocv.NewMatWithSize(30, 40, gocv.MatTypeCV8UC1)
	defer grey.Close()
	res, err := d.Detect(context.Background(), grey, nil)
	if err == nil || !strings.Contains(err.Error(), "CV_8UC3") || res.Width != 40 || res.Height != 30 || len(res.Detections) != 0 {
		t.Errorf("Detect(grey) = %+v, %v; want an 8-bit BGR error and the 40x30 size", res, err)
	}
	d.Release(nil) // no-op
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	if res, err := d.Detect(context.Background(), img, nil); err != nil || len(res.Detections) < 3 {
		t.Errorf("Detect after the bad frame: %d detections, %v", len(res.Detections), err)
	}
}
