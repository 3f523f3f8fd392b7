package detector

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector/lut"
	"github.com/edgedet/edgedet/internal/testenv"
)

// loadShared builds a detector for the shared model name with cfg's
// defaults changed by edit, and returns it with its log.
func loadShared(t *testing.T, model string, edit func(*Config)) (*Detector, *testenv.Buffer) {
	t.Helper()
	if err := InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", model)
	cfg.Threads = 1
	if edit != nil {
		edit(&cfg)
	}
	var logs testenv.Buffer
	d, err := New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("load %s: %v", model, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d, &logs
}

// readDog reads the shared dog.jpg; the caller closes it.
func readDog(t *testing.T) gocv.Mat {
	t.Helper()
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", "dog.jpg"), gocv.IMReadColor)
	if img.Empty() {
		img.Close()
		t.Fatal("cannot read dog.jpg")
	}
	return img
}

func detectDog(t *testing.T, d *Detector) []detection.Detection {
	t.Helper()
	img := readDog(t)
	defer img.Close()
	res, err := d.Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Detections) == 0 {
		t.Fatal("nothing found on dog.jpg")
	}
	return res.Detections
}

// sameObjects fails unless got has, for each detection of want, one of the
// same label with IoU >= 0.9 and a score within 0.03, and nothing else.
func sameObjects(t *testing.T, want, got []detection.Detection) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%d detections, want %d:\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			if used[i] || g.Label != w.Label || detection.IoU(g.Box, w.Box) < 0.9 ||
				math.Abs(float64(g.Score-w.Score)) > 0.03 {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			t.Errorf("no match for %s %.3f %v in %v", w.Label, w.Score, w.Box, got)
		}
	}
}

// TestFusedINT8FindsSameObjects: the QDQ INT8 yolov8n (58 SiLUs) loads with
// its activations fused, says so once at info level, and finds what the
// standard graph finds on dog.jpg.
func TestFusedINT8FindsSameObjects(t *testing.T) {
	const model = "yolov8n_int8qdq_320.onnx"
	plain, plainLog := loadShared(t, model, func(c *Config) { c.FuseActivations = false })
	fused, logs := loadShared(t, model, nil)

	if n := plain.Info().FusedActivations; n != 0 {
		t.Errorf("fuse_activations = false: FusedActivations = %d, want 0", n)
	}
	if l := plainLog.Lines("activations fused"); len(l) != 0 {
		t.Errorf("fuse_activations = false logged %q", l)
	}
	if n := fused.Info().FusedActivations; n < 50 {
		t.Errorf("FusedActivations = %d, want the model's SiLUs (58)", n)
	}
	info := logs.Lines("level=INFO", `msg="int8 activations fused"`, "model="+fused.Info().Path,
		"path="+lut.BestPath().String(), "count=")
	if len(info) != 1 {
		t.Errorf("want one info line for the fusion, got %q", logs.Lines("fused"))
	}
	if w := logs.Lines("level=WARN"); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	sameObjects(t, detectDog(t, plain), detectDog(t, fused))
}

// TestFuseLeavesOtherModelsUnchanged: FP32 models are not touched (no log
// line), and an INT8 model with nothing to rewrite (dynamic quantisation:
// no QDQ SiLU) loads its standard graph with one info line, no warning:
// nothing failed.
func TestFuseLeavesOtherModelsUnchanged(t *testing.T) {
	for _, tc := range []struct {
		model     string
		infoLines int // "no activation to fuse"
	}{
		{"yolox_nano_416.onnx", 0},
		{"yolov8n_int8dyn_320.onnx", 1},
	} {
		t.Run(tc.model, func(t *testing.T) {
			var calls int
			defer swapRegister(func(o *ort.SessionOptions, lib string) error {
				calls++
				return lut.Register(o, lib)
			})()
			d, logs := loadShared(t, tc.model, nil)
			if n := d.Info().FusedActivations; n != 0 {
				t.Errorf("FusedActivations = %d, want 0", n)
			}
			if w := logs.Lines("level=WARN"); len(w) != 0 {
				t.Errorf("warnings: %q", w)
			}
			if i := logs.Lines("level=INFO", "no activation to fuse"); len(i) != tc.infoLines {
				t.Errorf("%d \"no activation to fuse\" lines, want %d: %q", len(i), tc.infoLines, i)
			}
			if tc.infoLines == 0 && calls != 0 {
				t.Errorf("operators registered %d times for a float model", calls)
			}
			detectDog(t, d)
		})
	}
}

// swapRegister replaces registerLUT until the returned func is called.
func swapRegister(f func(*ort.SessionOptions, string) error) func() {
	old := registerLUT
	registerLUT = f
	return func() { registerLUT = old }
}

// TestFuseRegisterFailureFallsBack: when the operators cannot be
// registered, the detector skips the optimisation (the failed check is
// the only registration tried, nothing is reported fused) and loads the
// standard graph with one warning that names the reason, and still
// detects.
func TestFuseRegisterFailureFallsBack(t *testing.T) {
	var calls int
	defer swapRegister(func(*ort.SessionOptions, string) error {
		calls++
		return errors.New("injected register failure")
	})()
	d, logs := loadShared(t, "yolov8n_int8qdq_320.onnx", func(c *Config) { c.Sessions = 2 })
	if n := d.Info().FusedActivations; n != 0 {
		t.Errorf("FusedActivations = %d, want 0", n)
	}
	if calls != 1 {
		t.Errorf("operators registered %d times, want only the check", calls)
	}
	if fused := logs.Lines("int8 activations fused"); len(fused) != 0 {
		t.Errorf("a failed check still optimised the model: %q", fused)
	}
	warns := logs.Lines("level=WARN")
	if len(warns) != 1 || !strings.Contains(warns[0], "injected register failure") {
		t.Errorf("want one warning naming the reason, got %q", warns)
	}
	detectDog(t, d)
}

// TestFuseSessionFailureFallsBack: registration checks out but creating the
// fused session fails: the standard graph is loaded, with one warning.
func TestFuseSessionFailureFallsBack(t *testing.T) {
	var calls int
	defer swapRegister(func(o *ort.SessionOptions, lib string) error {
		calls++
		if calls > 1 { // the check passes, the session's registration fails
			return errors.New("injected session failure")
		}
		return lut.Register(o, lib)
	})()
	d, logs := loadShared(t, "yolov8n_int8qdq_320.onnx", nil)
	if n := d.Info().FusedActivations; n != 0 {
		t.Errorf("FusedActivations = %d, want 0", n)
	}
	warns := logs.Lines("level=WARN")
	if len(warns) != 1 || !strings.Contains(warns[0], "injected session failure") {
		t.Errorf("want one warning naming the reason, got %q", warns)
	}
	detectDog(t, d)
}

// TestFuseGraphOptimizationBelowAll: the fused graph needs ORT's layout
// optimisation, so a lower level keeps the standard graph and says why.
func TestFuseGraphOptimizationBelowAll(t *testing.T) {
	d, logs := loadShared(t, "yolov8n_int8qdq_320.onnx", func(c *Config) { c.GraphOptimization = "basic" })
	if n := d.Info().FusedActivations; n != 0 {
		t.Errorf("FusedActivations = %d, want 0", n)
	}
	if w := logs.Lines("level=WARN", "graph_optimization"); len(w) != 1 {
		t.Errorf("want one warning naming graph_optimization, got %q", logs.Lines("level=WARN"))
	}
}

// TestFuseEverySession: with two sessions, both are created from the fused
// graph (the operators are registered for each) and give the same result.
func TestFuseEverySession(t *testing.T) {
	var calls int
	defer swapRegister(func(o *ort.SessionOptions, lib string) error {
		calls++
		return lut.Register(o, lib)
	})()
	d, _ := loadShared(t, "yolov8n_int8qdq_320.onnx", func(c *Config) { c.Sessions, c.Slots = 2, 1 })
	if calls != 1+2 { // the check, then one per session
		t.Errorf("operators registered %d times, want 3 (check + 2 sessions)", calls)
	}
	if d.Info().FusedActivations == 0 {
		t.Fatal("not fused")
	}
	var used []int
	d.runHook = func(s int, running bool) {
		if running {
			used = append(used, s)
		}
	}
	// Sessions are handed out in FIFO order: two sequential frames run on
	// session 0, then session 1.
	a, b := detectDog(t, d), detectDog(t, d)
	if len(used) != 2 || used[0] == used[1] {
		t.Fatalf("frames ran on sessions %v, want both", used)
	}
	if len(a) != len(b) {
		t.Fatalf("sessions disagree: %v and %v", a, b)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("sessions disagree at %d: %v and %v", i, a[i], b[i])
		}
	}
}

// TestFuseLeavesNoFiles: the machine-specific optimised graph is never
// left on disk.
func TestFuseLeavesNoFiles(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	d, _ := loadShared(t, "yolov8n_int8qdq_320.onnx", nil)
	if d.Info().FusedActivations == 0 {
		t.Fatal("not fused")
	}
	left, err := filepath.Glob(filepath.Join(tmp, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal(err)
	}
}
