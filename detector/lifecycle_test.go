package detector_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestMinAreaKeepsABoxOfExactlyThatArea: min_area drops boxes smaller than
// it; the dog's box, of exactly min_area frame pixels, stays.
func TestMinAreaKeepsABoxOfExactlyThatArea(t *testing.T) {
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	cfg := yoloxConfig(t)
	res, err := newDetector(t, cfg).Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dogArea float32
	for _, d := range res.Detections {
		if d.Label == "dog" {
			dogArea = d.Box.Area()
		}
	}
	if dogArea == 0 {
		t.Fatalf("no dog in %+v", res.Detections)
	}
	cfg.MinArea = dogArea
	res, err = newDetector(t, cfg).Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, d := range res.Detections {
		labels = append(labels, d.Label)
		if d.Box.Area() < dogArea {
			t.Errorf("%s of area %g kept under min_area %g", d.Label, d.Box.Area(), dogArea)
		}
	}
	if strings.Join(labels, ",") != "dog,bicycle" {
		t.Errorf("min_area = the dog's area %g: kept %v, want dog and bicycle (149k px²)", dogArea, labels)
	}
}

// TestLoadLogsTheModel: loading says what was loaded, and says when the
// model names no labels and the COCO names are used.
func TestLoadLogsTheModel(t *testing.T) {
	initORT(t)
	load := func(model string) string {
		t.Helper()
		var logs testenv.Buffer
		cfg := detector.DefaultConfig()
		cfg.Model, cfg.Threads = model, 1
		d, err := detector.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		return logs.String()
	}
	got := load(testenv.Shared(t, "models", "yolox_nano_416.onnx"))
	for _, want := range []string{"model names no labels; using the 80 COCO classes", "model loaded", "classes=80", "sessions=1", "slots=2", "provider=cpu"} {
		if !strings.Contains(got, want) {
			t.Errorf("yolox log lacks %q:\n%s", want, got)
		}
	}
	named := writeModel(t, reshapeModel("{0: 'a', 1: 'b'}"))
	if got := load(named); strings.Contains(got, "COCO") || !strings.Contains(got, "classes=2") {
		t.Errorf("a model naming its 2 labels logs:\n%s", got)
	}
}

// TestRuntimeDestroyAndReload: without ONNX Runtime, New and Describe are
// errors saying so and nothing is reported loaded; destroying twice is
// harmless, a library that cannot be loaded is an error that leaves none
// loaded, and the runtime loads again afterwards.
func TestRuntimeDestroyAndReload(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	initORT(t)
	if err := detector.DestroyRuntime(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { initORT(t) }) // the other tests need it loaded
	if err := detector.DestroyRuntime(); err != nil {
		t.Errorf("second DestroyRuntime: %v", err)
	}
	if detector.RuntimeLoaded() || detector.RuntimeVersion() != "" || detector.RuntimeLibrary() != "" {
		t.Errorf("after DestroyRuntime: loaded %v, version %q, library %q", detector.RuntimeLoaded(), detector.RuntimeVersion(), detector.RuntimeLibrary())
	}
	cfg := yoloxConfig(t)
	if _, err := detector.New(cfg, quietLog()); err == nil || !strings.Contains(err.Error(), "not initialised") {
		t.Errorf("New without the runtime: %v", err)
	}
	if _, err := detector.Describe(cfg); err == nil || !strings.Contains(err.Error(), "not initialised") {
		t.Errorf("Describe without the runtime: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := detector.InitRuntime(missing); err == nil || !strings.Contains(err.Error(), "load onnx runtime "+missing) {
		t.Errorf("InitRuntime(%s) = %v, want an error naming it", missing, err)
	}
	if detector.RuntimeLoaded() || detector.RuntimeLibrary() != "" {
		t.Errorf("after a failed InitRuntime: loaded %v, library %q", detector.RuntimeLoaded(), detector.RuntimeLibrary())
	}
	if err := detector.InitRuntime(lib); err != nil || detector.RuntimeLibrary() != lib {
		t.Fatalf("InitRuntime after DestroyRuntime: %v (library %q)", err, detector.RuntimeLibrary())
	}
	newDetector(t, cfg) // loads again
}

// TestDescribeValidatesTheConfig: an invalid config is refused before the
// model is read, even when the model is fine.
func TestDescribeValidatesTheConfig(t *testing.T) {
	initORT(t)
	cfg := yoloxConfig(t)
	cfg.Sessions = 17
	if _, err := detector.Describe(cfg); err == nil || !strings.Contains(err.Error(), "detector config: sessions: 17") {
		t.Errorf("Describe(sessions 17) = %v, want the config error", err)
	}
	if _, err := detector.New(cfg, quietLog()); err == nil || !strings.Contains(err.Error(), "detector config: sessions: 17") {
		t.Errorf("New(sessions 17) = %v, want the config error", err)
	}
}

// TestCloseNil: closing a nil detector (what New returned with an error)
// is a no-op.
func TestCloseNil(t *testing.T) {
	var d *detector.Detector
	if err := d.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
}

// TestZeroAreaBoxesAreDropped: reshapeModel's output is its input, so a
// uniform frame gives 2048 identical candidates whose box size comes from
// the green plane: with no green they have zero area and are all dropped,
// with some green NMS keeps one.
func TestZeroAreaBoxesAreDropped(t *testing.T) {
	model := writeModel(t, reshapeModel("{0: 'a', 1: 'b'}"))
	cfg := detector.DefaultConfig()
	cfg.Model, cfg.Threads = model, 1
	d := newDetector(t, cfg)
	for _, tc := range []struct {
		green float64
		want  int
	}{{0, 0}, {100, 1}} {
		img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, tc.green, 100, 0), 64, 64, gocv.MatTypeCV8UC3)
		res, err := d.Detect(context.Background(), img, nil)
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Detections) != tc.want {
			t.Errorf("green %g: %d detections, want %d: %+v", tc.green, len(res.Detections), tc.want, res.Detections)
		}
	}
}

// TestFormatNotMatchingTheOutput: a configured format whose decoder does
// not fit the model's output is an error naming the model.
func TestFormatNotMatchingTheOutput(t *testing.T) {
	initORT(t)
	model := writeModel(t, reshapeModel("{0: 'a', 1: 'b'}"))
	cfg := detector.DefaultConfig()
	cfg.Model, cfg.Format = model, detection.FormatYOLOX // YOLOX at 64x64 has 84 anchors, not 2048
	d, err := detector.New(cfg, quietLog())
	if err == nil {
		d.Close()
		t.Fatal("loaded a YOLOv8 head as YOLOX")
	}
	if !strings.Contains(err.Error(), model) {
		t.Errorf("error %q does not name the model", err)
	}
}
