package main

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestCLIEvalPinnedCOCO128 pins yolox_nano_416's accuracy on the whole
// shared coco128 set (100 images, eval defaults: score >= 0.001, NMS 0.65,
// 100 detections), so a regression in preprocessing, decoding, box mapping
// or the evaluator fails here; TestCLIEval only checks the numbers are
// ordered. The values are the README's (mAP@.5:.95 0.325) as measured with
// ONNX Runtime 1.24.1 on CPU (0.32498, 0.49602); ±0.002 leaves room for
// another CPU's floating-point rounding, not for a one-pixel shift.
func TestCLIEvalPinnedCOCO128(t *testing.T) {
	stdout, stderr, code := runCLI(t, "eval", "--json", "--model", testenv.Shared(t, "models", "yolox_nano_416.onnx"),
		"--data", testenv.Shared(t, "datasets", "coco128", "train"))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	var r evalReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, stdout)
	}
	if r.Images != 100 || r.Objects != 741 || len(r.Models) != 1 {
		t.Fatalf("evaluated %d images, %d objects, %d models; want coco128's 100 and 741, one model", r.Images, r.Objects, len(r.Models))
	}
	s := r.Models[0].Summary
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"mAP@.5:.95", s.AP, 0.325},
		{"mAP@.5", s.AP50, 0.496},
		{"mAP@.75", s.AP75, 0.306},
		{"AR@100", s.AR100, 0.460},
	} {
		if math.Abs(c.got-c.want) > 0.002 {
			t.Errorf("yolox_nano_416 on coco128: %s = %.4f, want %.3f ± 0.002", c.name, c.got, c.want)
		}
	}
}
