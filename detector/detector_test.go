package detector_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/labels"
	"github.com/edgedet/edgedet/internal/testenv"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func initORT(t testing.TB) {
	t.Helper()
	if err := detector.InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
}

func newDetector(t testing.TB, cfg detector.Config) *detector.Detector {
	t.Helper()
	initORT(t)
	d, err := detector.New(cfg, quietLog())
	if err != nil {
		t.Fatalf("load %s: %v", cfg.Model, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

func readImage(t testing.TB, path string) gocv.Mat {
	t.Helper()
	m := gocv.IMRead(path, gocv.IMReadColor)
	if m.Empty() {
		t.Fatalf("cannot read %s", path)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

type want struct {
	label string
	box   detection.Box
}

// TestRealModelsOnDog checks the decoders end to end against the reference
// detections in ../shared/models/<model>.md.
func TestRealModelsOnDog(t *testing.T) {
	cases := []struct {
		model     string
		precision string
		format    detection.Format
		score     float32
		want      []want
	}{
		{"yolox_nano_416.onnx", "fp32", detection.FormatYOLOX, 0.3, []want{
			{"dog", detection.Box{X1: 133, Y1: 207, X2: 327, Y2: 543}},
			{"bicycle", detection.Box{X1: 56, Y1: 137, X2: 572, Y2: 424}},
			{"car", detection.Box{X1: 466, Y1: 78, X2: 693, Y2: 171}},
		}},
		{"yolo-fastestv2_352.onnx", "fp32", detection.FormatFastestV2, 0.3, []want{
			{"dog", detection.Box{X1: 122, Y1: 198, X2: 333, Y2: 556}},
			{"car", detection.Box{X1: 449, Y1: 72, X2: 687, Y2: 170}},
			{"bicycle", detection.Box{X1: 146, Y1: 186, X2: 568, Y2: 442}},
		}},
		{"yolo11n_int8dyn_320.onnx", "int8", detection.FormatYOLOv8, 0.25, []want{
			{"dog", detection.Box{X1: 132, Y1: 197, X2: 311, Y2: 543}},
			{"car", detection.Box{X1: 465, Y1: 78, X2: 697, Y2: 170}},
			{"bicycle", detection.Box{X1: 144, Y1: 136, X2: 565, Y2: 425}},
		}},
	}
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			cfg := detector.DefaultConfig()
			cfg.Model = testenv.Shared(t, "models", tc.model)
			cfg.ScoreThreshold = tc.score
			d := newDetector(t, cfg)
			info := d.Info()
			if info.Precision != tc.precision || info.Format != tc.format {
				t.Errorf("info: precision %s format %s, want %s %s", info.Precision, info.Format, tc.precision, tc.format)
			}
			res, err := d.Detect(context.Background(), img, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Width != img.Cols() || res.Height != img.Rows() {
				t.Errorf("result size %dx%d, want %dx%d", res.Width, res.Height, img.Cols(), img.Rows())
			}
			for _, w := range tc.want {
				best := float32(0)
				for _, got := range res.Detections {
					if got.Label == w.label || (w.label == "car" && got.Label == "truck") {
						best = max(best, detection.IoU(got.Box, w.box))
					}
				}
				if best < 0.8 {
					t.Errorf("%s: best IoU with reference %v is %.3f (< 0.8); got %+v", w.label, w.box, best, res.Detections)
				}
			}
			for _, got := range res.Detections {
				b := got.Box
				if b.X1 < 0 || b.Y1 < 0 || b.X2 > float32(res.Width) || b.Y2 > float32(res.Height) || b.Area() <= 0 {
					t.Errorf("box %v not clipped to the %dx%d image", b, res.Width, res.Height)
				}
				if got.Score < tc.score {
					t.Errorf("%s score %.3f below threshold %.2f", got.Label, got.Score, tc.score)
				}
			}
			if res.Timings.Inference <= 0 {
				t.Errorf("inference time not measured: %+v", res.Timings)
			}
		})
	}
}

func TestDetectFiltersAndReuse(t *testing.T) {
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	cfg := detector.DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
	cfg.AllowLabels = []string{"dog", "car"}
	cfg.MinScores = map[string]float32{"car": 0.95}
	d := newDetector(t, cfg)
	dst := make([]detection.Detection, 0, 16)
	res, err := d.Detect(context.Background(), img, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Detections) != 1 || res.Detections[0].Label != "dog" {
		t.Fatalf("allow-list dog,car with car >= 0.95: want only the dog, got %+v", res.Detections)
	}
	if &res.Detections[:1][0] != &dst[:1][0] {
		t.Error("Detect did not append into the caller's slice")
	}
	// Same image again: identical results (padding cache, reused tensors).
	res2, err := d.Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Detections) != 1 || res2.Detections[0] != res.Detections[0] {
		t.Fatalf("second run differs: %+v vs %+v", res2.Detections, res.Detections)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Detect(ctx, img, nil); err != context.Canceled {
		t.Fatalf("cancelled context: want context.Canceled, got %v", err)
	}
	if _, err := d.Detect(context.Background(), img, nil); err != nil {
		t.Fatalf("detector must work again after a cancelled call: %v", err)
	}
}

func TestMaxDetectionsAndMinArea(t *testing.T) {
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	cfg := detector.DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
	cfg.MaxDetections = 1
	d := newDetector(t, cfg)
	res, err := d.Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Detections) != 1 {
		t.Fatalf("max_detections 1: got %d", len(res.Detections))
	}
	cfg.MaxDetections = 0
	cfg.MinArea = 50000 // dog ≈ 194x336 = 65k px², car ≈ 227x93 = 21k px²
	d2 := newDetector(t, cfg)
	res, err = d2.Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, det := range res.Detections {
		if det.Box.Area() < 50000 || det.Label == "car" {
			t.Errorf("min_area 50000 kept %s with area %.0f", det.Label, det.Box.Area())
		}
	}
	if len(res.Detections) == 0 {
		t.Error("min_area 50000 dropped the dog too")
	}
}

func TestSidecarDescribesModel(t *testing.T) {
	// A copy of the YOLOX model with a sidecar that sets wrong labels count
	// must be rejected, naming the counts; a correct one must be used.
	dir := t.TempDir()
	src, err := os.ReadFile(testenv.Shared(t, "models", "yolox_nano_416.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(model, src, 0o644); err != nil {
		t.Fatal(err)
	}
	initORT(t)
	cfg := detector.DefaultConfig()
	cfg.Model = model
	os.WriteFile(filepath.Join(dir, "m.toml"), []byte("labels = [\"a\", \"b\"]\n"), 0o644)
	if _, err := detector.New(cfg, quietLog()); err == nil || !strings.Contains(err.Error(), "2 labels for 80 classes") {
		t.Fatalf("want label-count error, got %v", err)
	}
	os.WriteFile(filepath.Join(dir, "m.toml"), []byte("format = \"yolox\"\nlabels_file = \"names.txt\"\n"), 0o644)
	names := strings.Join(labels.COCO80, "\n")
	os.WriteFile(filepath.Join(dir, "names.txt"), []byte(strings.Replace(names, "dog", "hound", 1)), 0o644)
	d := newDetector(t, cfg)
	if got := d.Info().Labels[16]; got != "hound" {
		t.Fatalf("labels_file from sidecar not used: class 16 = %q", got)
	}
	if !strings.Contains(d.Info().SpecSource, "m.toml") {
		t.Errorf("spec source %q does not name the sidecar", d.Info().SpecSource)
	}
	os.WriteFile(filepath.Join(dir, "m.toml"), []byte("colour = \"blue\"\n"), 0o644)
	if _, err := detector.New(cfg, quietLog()); err == nil || !strings.Contains(err.Error(), "colour") || !strings.Contains(err.Error(), "m.toml") {
		t.Fatalf("unknown sidecar key: want error naming key and file, got %v", err)
	}
}

func TestBadModels(t *testing.T) {
	initORT(t)
	dir := t.TempDir()
	notONNX := filepath.Join(dir, "notes.onnx")
	os.WriteFile(notONNX, []byte("this is not a protobuf"), 0o644)
	cases := []struct {
		name  string
		model string
		want  []string
	}{
		{"missing file", filepath.Join(dir, "missing.onnx"), []string{"missing.onnx", "no such file"}},
		{"not onnx", notONNX, []string{"notes.onnx", "not a valid ONNX model"}},
		{"multi-output model", testenv.Shared(t, "models", "nanodet-m_320.onnx"), []string{"nanodet-m_320.onnx", "outputs"}},
		{"wrong input rank", testenv.IdentityModel(t, "rank3.onnx", []int64{1, 3, 64}), []string{"rank3.onnx", "[1 3 64]", "NCHW"}},
		{"no decoder matches", testenv.IdentityModel(t, "ident.onnx", []int64{1, 3, 64, 64}), []string{"ident.onnx", "[1 3 64 64]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := detector.DefaultConfig()
			cfg.Model = tc.model
			d, err := detector.New(cfg, quietLog())
			if err == nil {
				d.Close()
				t.Fatal("want error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := detector.DefaultConfig()
	cfg.Model = "m.onnx"
	cfg.ScoreThreshold = 2
	cfg.IoUThreshold = 0
	cfg.GraphOptimization = "max"
	cfg.ChannelOrder = "grb"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, w := range []string{"score_threshold: 2", "iou_threshold: 0", `graph_optimization: "max"`, `channel_order: "grb"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}
