package detector_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// bubbliiiingSidecar is the description README.md gives for
// yolox_nano_640_bubbliiiing.onnx: everything spelt out, although
// format = "yolox_levels" alone implies the rest.
const bubbliiiingSidecar = `format = "yolox_levels"
channel_order = "rgb"
resize = "letterbox"
pad_value = 128
scale = 0.00392156862745098
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
`

// linkWithSidecar puts a symlink to the shared model, named m.onnx, in a
// temporary directory with sidecar as m.toml (none when empty), and
// returns the link's path. The model itself is never copied.
func linkWithSidecar(t *testing.T, model, sidecar string) string {
	t.Helper()
	dir := t.TempDir()
	link := filepath.Join(dir, "m.onnx")
	if err := os.Symlink(model, link); err != nil {
		t.Fatal(err)
	}
	if sidecar != "" {
		if err := os.WriteFile(filepath.Join(dir, "m.toml"), []byte(sidecar), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return link
}

// TestYOLOXLevelsRealModel runs yolox_nano_640_bubbliiiing.onnx, whose
// [1,8400,85] output is three channel-major level blocks, on dog.jpg with a
// sidecar naming yolox_levels (spelt out, or the format alone), and finds
// the reference objects of ../shared/models/yolox_nano_640_bubbliiiing.md
// (score >= 0.3: dog 0.852, bicycle 0.827, truck 0.758, car 0.540) with
// IoU >= 0.95 and scores within 0.02 (BGR input, pad 0 or a top-left
// letterbox each miss that). Without the sidecar the shape says yolox and
// the same boxes are not found: the layout must be named.
func TestYOLOXLevelsRealModel(t *testing.T) {
	model := testenv.SharedOptional(t, "models", "yolox_nano_640_bubbliiiing.onnx")
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	refs := []struct {
		label string
		score float32
		box   detection.Box
	}{
		{"dog", 0.852, detection.Box{X1: 122, Y1: 213, X2: 336, Y2: 513}},
		{"bicycle", 0.827, detection.Box{X1: 115, Y1: 133, X2: 556, Y2: 462}},
		{"truck", 0.758, detection.Box{X1: 471, Y1: 79, X2: 682, Y2: 171}},
		{"car", 0.540, detection.Box{X1: 467, Y1: 83, X2: 680, Y2: 172}},
	}
	// found returns the best IoU of a detection labelled label with box,
	// and that detection's score.
	found := func(dets []detection.Detection, label string, box detection.Box) (bestIoU, score float32) {
		for _, d := range dets {
			if iou := detection.IoU(d.Box, box); d.Label == label && iou > bestIoU {
				bestIoU, score = iou, d.Score
			}
		}
		return bestIoU, score
	}
	for _, tc := range []struct{ name, sidecar string }{
		{"full sidecar", bubbliiiingSidecar},
		{"format only", "format = \"yolox_levels\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := detector.DefaultConfig()
			cfg.Model = linkWithSidecar(t, model, tc.sidecar)
			cfg.ScoreThreshold = 0.3
			d := newDetector(t, cfg)
			info := d.Info()
			spec := info.Spec
			if info.Format != detection.FormatYOLOXLevels || !strings.Contains(info.SpecSource, "m.toml") ||
				spec.ChannelOrder != "rgb" || spec.Resize != detection.ResizeLetterbox || *spec.PadValue != 128 {
				t.Errorf("model info: format %s from %q, %s %s pad %d; want yolox_levels from m.toml, rgb letterbox pad 128",
					info.Format, info.SpecSource, spec.ChannelOrder, spec.Resize, *spec.PadValue)
			}
			res, err := d.Detect(context.Background(), img, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range refs {
				iou, score := found(res.Detections, r.label, r.box)
				if iou < 0.95 {
					t.Errorf("%s: best IoU with the reference %v is %.3f (< 0.95); got %+v", r.label, r.box, iou, res.Detections)
				} else if diff := score - r.score; diff > 0.02 || diff < -0.02 {
					t.Errorf("%s: score %.3f, reference %.3f", r.label, score, r.score)
				}
			}
			if len(res.Detections) != len(refs) {
				t.Errorf("%d detections, want the %d references: %+v", len(res.Detections), len(refs), res.Detections)
			}
		})
	}

	t.Run("no sidecar", func(t *testing.T) {
		cfg := detector.DefaultConfig()
		cfg.Model = linkWithSidecar(t, model, "")
		cfg.ScoreThreshold = 0.3
		d := newDetector(t, cfg)
		if f := d.Info().Format; f != detection.FormatYOLOX {
			t.Fatalf("format %s from the shape, want yolox", f)
		}
		res, err := d.Detect(context.Background(), img, nil)
		if err != nil {
			t.Fatal(err)
		}
		if iou, _ := found(res.Detections, "dog", refs[0].box); iou >= 0.5 {
			t.Errorf("read as yolox, the dog is still found (IoU %.3f): the layouts do not differ", iou)
		}
	})
}
