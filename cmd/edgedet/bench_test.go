package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestCLIBenchComparesModels: image mode times each model and prints the
// ratios against the first; --json carries the same figures.
func TestCLIBenchComparesModels(t *testing.T) {
	fp32 := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	int8 := testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	out, errOut, code := runCLI(t, "bench", "--model", fp32, "--model", int8, "--runs", "5", "--warmup", "1", "--threads", "1", dog)
	if code != 0 {
		t.Fatalf("bench exit %d: %s", code, errOut)
	}
	for _, want := range []string{"model yolox_nano_416 (fp32", "model yolo11n_int8dyn_320 (int8", "compared with yolox_nano_416", "(pre+post)/inference"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	out, errOut, code = runCLI(t, "bench", "--model", fp32, "--runs", "5", "--warmup", "1", "--threads", "1", "--json", dog)
	if code != 0 {
		t.Fatalf("bench --json exit %d: %s", code, errOut)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	if r.Runs != 5 || r.Inference.P50 <= 0 || r.FPS <= 0 || r.Precision != "fp32" || r.Input != "416x416" {
		t.Errorf("bench --json report %+v", r)
	}
}

// TestCLIBenchEndToEnd: --video runs the real pipeline against a real
// broker and reports rates, their ratio, memory and the first event.
func TestCLIBenchEndToEnd(t *testing.T) {
	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	prof := filepath.Join(t.TempDir(), "allocs.pprof")
	out, errOut, code := runCLI(t, "bench", "--model", testenv.Shared(t, "models", "yolox_nano_416.onnx"),
		"--video", clip, "--seconds", "3", "--warmup-seconds", "1", "--threads", "1", "--cameras", "2",
		"--broker", broker.URL, "--memprofile", prof, "--json")
	if code != 0 {
		t.Fatalf("bench --video exit %d: %s", code, errOut)
	}
	var r e2eReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --video --json: %v\n%s", err, out)
	}
	t.Logf("%+v", r)
	if r.Cameras != 2 || r.Model != "yolox_nano_416" || r.Seconds < 2.5 {
		t.Errorf("report header %+v", r)
	}
	// Unpaced files drop nothing: every captured frame is processed.
	if r.ProcessedFPS <= 0 || r.BareFPS <= 0 || r.CaptureFPS < r.ProcessedFPS*0.9 || r.CaptureFPS > r.ProcessedFPS*1.1+2 {
		t.Errorf("rates: capture %.1f, processed %.1f, bare %.1f", r.CaptureFPS, r.ProcessedFPS, r.BareFPS)
	}
	if d := r.Ratio - r.ProcessedFPS/r.BareFPS; d > 1e-9 || d < -1e-9 {
		t.Errorf("ratio %g is not processed/bare", r.Ratio)
	}
	if r.Busy <= 0.1 || r.Busy > 1.05 {
		t.Errorf("model busy %.2f of the time: not a share", r.Busy)
	}
	if r.InferenceMs <= 0 || r.PreprocessMs <= 0 || r.OverheadRatio <= 0 {
		t.Errorf("stage times %+v", r)
	}
	if r.PeakRSSMB < r.RSSAnonMB || r.RSSAnonMB <= 0 || r.RSSFileMB <= 0 || r.CPUPercent <= 0 {
		t.Errorf("memory/cpu figures %+v", r)
	}
	if r.FirstEventS <= 0 || r.FirstEventS > 30 {
		t.Errorf("first event after %.2f s", r.FirstEventS)
	}
	_, errOut, code = runCLI(t, "bench", "--model", "m.onnx", "--video", filepath.Dir(clip))
	if code == 0 || !strings.Contains(errOut, "is a directory") {
		t.Errorf("a directory as --video: exit %d, %s", code, errOut)
	}
}
