package main

import (
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestModelSpecFormat: a format named to quantize, prune or distill
// (--format) decides how the model is read, with that format's defaults;
// without it the format comes from the output shape. yolox_nano_640
// from bubbliiiing has yolox's output shape but is yolox_levels, with
// RGB input and ImageNet normalisation: read as yolox, its calibration
// frames and its detection metric are wrong.
func TestModelSpecFormat(t *testing.T) {
	model := bubbliiiing640(t)
	guessed, err := modelSpec(model, "")
	if err != nil {
		t.Fatal(err)
	}
	named, err := modelSpec(model, detection.FormatYOLOXLevels)
	if err != nil {
		t.Fatal(err)
	}
	if guessed.Format != detection.FormatYOLOX {
		t.Errorf("without --format: format %q, want %q (from the output shape)", guessed.Format, detection.FormatYOLOX)
	}
	if named.Format != detection.FormatYOLOXLevels {
		t.Errorf("--format yolox_levels: format %q", named.Format)
	}
	if named.ChannelOrder == guessed.ChannelOrder || len(named.Mean) != 3 || named.Mean[0] == guessed.Mean[0] {
		t.Errorf("--format yolox_levels kept yolox's preprocessing: channel order %q, mean %v (yolox: %q, %v)",
			named.ChannelOrder, named.Mean, guessed.ChannelOrder, guessed.Mean)
	}
	if named.InputWidth != 640 || named.InputHeight != 640 {
		t.Errorf("input %dx%d, want 640x640", named.InputWidth, named.InputHeight)
	}
}

// bubbliiiing640 is the shared yolox_nano_640_bubbliiiing model (the test
// is skipped without it), with ONNX Runtime initialised until the test
// ends. It has no sidecar: read by its output shape it is taken for yolox.
func bubbliiiing640(t *testing.T) string {
	t.Helper()
	model := testenv.SharedOptional(t, "models", "yolox_nano_640_bubbliiiing.onnx")
	cleanup, err := initRuntime(testenv.ORTLibrary(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	return model
}
