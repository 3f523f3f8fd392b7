package detector_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestDescribeMatchesNew: Describe resolves the same description as New
// (input size, format, precision, preprocessing, where it came from).
func TestDescribeMatchesNew(t *testing.T) {
	for _, name := range []string{"yolox_nano_416.onnx", "yolo11n_int8dyn_320.onnx"} {
		t.Run(name, func(t *testing.T) {
			cfg := detector.DefaultConfig()
			cfg.Model = testenv.Shared(t, "models", name)
			d := newDetector(t, cfg)
			got, err := detector.Describe(cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := d.Info()
			if !reflect.DeepEqual(got.Spec, want.Spec) || got.Format != want.Format || got.Precision != want.Precision ||
				!reflect.DeepEqual(got.InputShape, want.InputShape) || !reflect.DeepEqual(got.OutputShape, want.OutputShape) ||
				got.InputName != want.InputName || got.SpecSource != want.SpecSource {
				t.Errorf("Describe = %+v\nNew.Info = %+v", got, want)
			}
		})
	}
}

// TestDescribeBuildsNothing: a description whose labels do not fit the
// model is only an error when the decoder is built (New), so Describe,
// which builds no decoder, session or tensors, still reads it.
func TestDescribeBuildsNothing(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(testenv.Shared(t, "models", "yolox_nano_416.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(model, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "m.toml"), []byte("labels = [\"a\", \"b\"]\nresize = \"stretch\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	initORT(t)
	cfg := detector.DefaultConfig()
	cfg.Model = model
	if _, err := detector.New(cfg, quietLog()); err == nil || !strings.Contains(err.Error(), "2 labels for 80 classes") {
		t.Fatalf("New: want the label-count error, got %v", err)
	}
	info, err := detector.Describe(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if info.Spec.InputWidth != 416 || info.Spec.InputHeight != 416 || info.Spec.Resize != detection.ResizeStretch ||
		!strings.Contains(info.SpecSource, "m.toml") || info.Labels != nil {
		t.Errorf("Describe = %+v", info)
	}
}

func TestDescribeBadModel(t *testing.T) {
	initORT(t)
	cfg := detector.DefaultConfig()
	cfg.Model = filepath.Join(t.TempDir(), "missing.onnx")
	if _, err := detector.Describe(cfg); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("want an error naming the file, got %v", err)
	}
	cfg.Model = ""
	if _, err := detector.Describe(cfg); err == nil {
		t.Error("empty config: want an error")
	}
}

// The description edgedet stores in a derived model's metadata
// (detection.MetadataSpecKey) is used; a sidecar next to the model wins
// over it; a bad one is an error naming the model and the key.
func TestEdgedetMetadataDescribesModel(t *testing.T) {
	initORT(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "derived.onnx")
	src, err := os.ReadFile(testenv.Shared(t, "models", "yolox_nano_416.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, src, 0o644); err != nil {
		t.Fatal(err)
	}
	pad := 100
	desc, err := detection.Spec{Format: detection.FormatYOLOX, ChannelOrder: "rgb", PadValue: &pad}.EncodeMetadata()
	if err != nil {
		t.Fatal(err)
	}
	withMetadata(t, model, detection.MetadataSpecKey, desc)
	cfg := detector.DefaultConfig()
	cfg.Model = model
	info, err := detector.Describe(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if info.Spec.ChannelOrder != "rgb" || info.Spec.PadValue == nil || *info.Spec.PadValue != 100 || !strings.Contains(info.SpecSource, detection.MetadataSpecKey) {
		t.Errorf("metadata description not used: order %q, pad %v, source %q", info.Spec.ChannelOrder, info.Spec.PadValue, info.SpecSource)
	}
	if err := os.WriteFile(filepath.Join(dir, "derived.toml"), []byte("channel_order = \"bgr\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if info, err = detector.Describe(cfg); err != nil || info.Spec.ChannelOrder != "bgr" || *info.Spec.PadValue != 100 {
		t.Errorf("sidecar over metadata: %+v, %v; want bgr from the sidecar, pad 100 from the metadata", info.Spec, err)
	}
	withMetadata(t, model, detection.MetadataSpecKey, "colour = \"blue\"\n")
	if _, err := detector.Describe(cfg); err == nil || !strings.Contains(err.Error(), model) || !strings.Contains(err.Error(), "colour") {
		t.Errorf("bad metadata description: err %v, want the model path and the key", err)
	}
}
