package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/eval"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/prune"
)

// TestCLIPrune: pruning yolox_nano_416 a little (3 % of its multiply-adds,
// the channels contributing least on 8 calibration frames, with
// least-squares reconstruction) writes a smaller model that ONNX Runtime
// runs and that still finds the dog, the bicycle and the car.
func TestCLIPrune(t *testing.T) {
	model := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	out := filepath.Join(t.TempDir(), "pruned.onnx")
	stdout, stderr, code := runCLI(t, "prune", "--model", model, "--calib", testenv.Shared(t, "datasets", "coco128", "train"),
		"--max-images", "8", "--target", "flops=0.97", "--out", out)
	if code != 0 {
		t.Fatalf("prune exit %d: %s", code, stderr)
	}
	t.Log(stdout)
	for _, want := range []string{"wrote " + out, "parameters", "multiply-adds", "latency", "re-fitted"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("prune output lacks %q", want)
		}
	}
	if !strings.Contains(stdout, "%") || fileSize(out) >= fileSize(model) {
		t.Errorf("pruned model is %d bytes, the original %d", fileSize(out), fileSize(model))
	}
	js, stderr, code := runCLI(t, "detect", "--model", out, "--format", "yolox", "--json", testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	if code != 0 {
		t.Fatalf("detect with the pruned model: %s", stderr)
	}
	var res struct {
		Detections []struct {
			Label string `json:"label"`
		} `json:"detections"`
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("%v: %s", err, js)
	}
	seen := map[string]bool{}
	for _, d := range res.Detections {
		seen[d.Label] = true
	}
	if !seen["dog"] || !seen["bicycle"] || !seen["car"] {
		t.Errorf("pruned model finds %v on dog.jpg, want dog, bicycle and car", seen)
	}
}

func TestCLIPruneRejectsBadInput(t *testing.T) {
	model := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	calib := testenv.Shared(t, "datasets", "coco128", "train")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"quantized model", []string{"--model", testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx"), "--calib", calib, "--out", filepath.Join(t.TempDir(), "x.onnx")}, "is quantized"},
		{"output is the input", []string{"--model", model, "--calib", calib, "--out", model}, "is the input model"},
		{"bad target", []string{"--model", model, "--calib", calib, "--out", filepath.Join(t.TempDir(), "x.onnx"), "--target", "speed=2"}, `kind "speed"`},
		{"unknown format", []string{"--model", model, "--calib", calib, "--out", filepath.Join(t.TempDir(), "x.onnx"), "--format", "yolo9"}, `format: "yolo9" is not one of`},
		{"contribution without calibration", []string{"--model", model, "--refit=false", "--out", filepath.Join(t.TempDir(), "x.onnx")}, "needs --calib"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, append([]string{"prune"}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want an error mentioning %q", code, stderr, tc.want)
			}
		})
	}
}

// TestCLIPruneSensitivityAndPlot: --sensitivity scores every prunable group
// alone and prints the table the allocation follows; --plot writes the
// mAP-against-latency PNG of the original and the pruned model.
func TestCLIPruneSensitivityAndPlot(t *testing.T) {
	data := t.TempDir()
	imgs, _ := filepath.Glob(filepath.Join(testenv.Shared(t, "datasets", "coco128", "train"), "*.jpg"))
	slices.Sort(imgs)
	for _, img := range imgs[:4] {
		for _, f := range []string{img, strings.TrimSuffix(img, ".jpg") + ".txt"} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(data, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "pruned.onnx")
	plot := filepath.Join(t.TempDir(), "tradeoff.png")
	stdout, stderr, code := runCLI(t, "prune", "--model", testenv.Shared(t, "models", "yolox_nano_416.onnx"),
		"--calib", data, "--target", "flops=0.95", "--sensitivity", "--sensitivity-images", "2", "--eval", data,
		"--out", out, "--plot", plot)
	if code != 0 {
		t.Fatalf("prune exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "sensitivity: mAP@0.5:0.95 lost with one group pruned") ||
		!strings.Contains(stdout, "/backbone/backbone/stem/conv/conv/Conv") || !strings.Contains(stdout, "wrote "+plot) {
		t.Errorf("output lacks the sensitivity table or the plot:\n%s", stdout)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("plot is not a PNG: %v", err)
	}
}

// TestPrunePrintsMAPLikeEval: prune prints mAP as a fraction with three
// decimals, as eval does (it printed 32.5 where eval prints 0.325), in the
// evaluation lines and in the sensitivity table.
func TestPrunePrintsMAPLikeEval(t *testing.T) {
	var b strings.Builder
	printEvalCompare(&b, []string{"/m/fp32.onnx", "/m/pruned.onnx"},
		[]eval.Summary{{AP: 0.3251, AP50: 0.4992}, {AP: 0.2812, AP50: 0.4502}},
		[]*eval.DeltaInterval{nil, {Resamples: 1000, AP: [2]float64{-0.0712, -0.0121}}}, "/d/coco128", 1)
	for _, want := range []string{
		"fp32.onnx                0.325 (+0.000)   mAP@0.5 0.499 (+0.000)   (coco128, 1 image)\n",
		"pruned.onnx              0.281 (-0.044)   mAP@0.5 0.450 (-0.049)   (coco128, 1 image)   95 % interval of the mAP@0.5:0.95 difference [-0.071, -0.012]\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("prune --eval output lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	rep := &prune.Report{
		Analysis:    &prune.Analysis{Groups: []prune.Group{{ID: 0, Channels: 16, Producers: []string{"conv0"}}}},
		Sensitivity: &prune.Sensitivity{Base: 0.3251, Ratios: []float64{0.25, 0.5}, Loss: map[int][]float64{0: {0.0123, 0.05}}},
	}
	printSensitivity(&b, rep, 8)
	for _, want := range []string{"(of 0.325, on 8 images)", "-0.012    -0.050  conv0"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("sensitivity table lacks %q:\n%s", want, b.String())
		}
	}
}
