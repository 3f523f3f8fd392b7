package main

import (
	"encoding/json"
	"math"
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
	// Unpaced files drop nothing: every captured frame is processed. The
	// window can only split the frames a stream holds when it opens or
	// closes (poolSize = 4 per camera), whatever the machine's speed, so
	// compare counts, not rates against a tolerance.
	captured, processed := r.CaptureFPS*r.Seconds, r.ProcessedFPS*r.Seconds
	if r.ProcessedFPS <= 0 || r.BareFPS <= 0 || math.Abs(captured-processed) > float64(4*r.Cameras)+1 {
		t.Errorf("frames in %.2f s: captured %.1f, processed %.1f (bare inference %.1f fps); want equal within %d",
			r.Seconds, captured, processed, r.BareFPS, 4*r.Cameras)
	}
	if d := r.Ratio - r.ProcessedFPS/r.BareFPS; d > 1e-9 || d < -1e-9 {
		t.Errorf("ratio %g is not processed/bare", r.Ratio)
	}
	// A share of the window: at most all of it, plus the inferences of the
	// frames already in the model or queued for it (Slots = 2) when the
	// window opened, which finish, and count, inside it (and one more for
	// an inference slower than the mean).
	if d := r.Busy - r.ProcessedFPS*r.InferenceMs/1000/float64(r.Sessions); d > 1e-9 || d < -1e-9 {
		t.Errorf("model busy %g is not processed fps x inference time / sessions", r.Busy)
	}
	if maxBusy := 1 + 3*r.InferenceMs/1000/r.Seconds; r.Busy <= 0.1 || r.Busy > maxBusy {
		t.Errorf("model busy %.2f of the time: not a share (at most %.2f)", r.Busy, maxBusy)
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

// TestPrintBenchCounts: counts are in the singular for one, and a thread
// count of 0 says what it means (it printed "0 threads", "1 runs").
func TestPrintBenchCounts(t *testing.T) {
	var b strings.Builder
	printBench(&b, benchReport{Model: "m", Precision: "fp32", Input: "416x416", Threads: 0, Runs: 1, CPU: "linux/amd64, 2 logical CPUs"}, 1)
	want := "model m (fp32, 416x416 input, ONNX Runtime's default threads), 1 run after 1 warm-up run, linux/amd64"
	if !strings.HasPrefix(b.String(), want) {
		t.Errorf("bench header:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printE2E(&b, e2eReport{Model: "m", Cameras: 1, Threads: 1, Sessions: 1, CPUs: 1})
	if !strings.Contains(b.String(), "1 camera on") || !strings.Contains(b.String(), "1 thread x 1 session,") || !strings.Contains(b.String(), "1 CPU\n") {
		t.Errorf("end-to-end header: %s", b.String())
	}
}
