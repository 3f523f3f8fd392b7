package detector

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgedet/edgedet/detector/lut"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestFuseTempDirFailureFallsBack: without a temporary directory to
// optimise in, the standard graph is loaded with one warning saying so.
func TestFuseTempDirFailureFallsBack(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	d, logs := loadShared(t, "yolov8n_int8qdq_320.onnx", nil)
	if n := d.Info().FusedActivations; n != 0 {
		t.Errorf("FusedActivations = %d, want 0", n)
	}
	if w := logs.Lines("level=WARN", "temporary directory"); len(w) != 1 {
		t.Errorf("want one warning naming the temporary directory, got %q", logs.Lines("level=WARN"))
	}
	detectDog(t, d)
}

// TestFuseLaterSessionFailureIsAnError: once a session runs the fused
// graph, another that cannot be created is an error, not a silent switch
// to the standard graph for the rest.
func TestFuseLaterSessionFailureIsAnError(t *testing.T) {
	if err := InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	var calls int
	defer swapRegister(func(o *ort.SessionOptions, lib string) error {
		calls++
		if calls == 3 { // the check and the first session pass, the second fails
			return errors.New("injected second session failure")
		}
		return lut.Register(o, lib)
	})()
	cfg := DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolov8n_int8qdq_320.onnx")
	cfg.Threads, cfg.Sessions = 1, 2
	d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		d.Close()
		t.Fatal("loaded with the second fused session failing")
	}
	if !strings.Contains(err.Error(), "session 2 of 2") || !strings.Contains(err.Error(), "injected second session failure") {
		t.Errorf("error %q, want session 2 of 2 and the reason", err)
	}
}

// TestFuseOptimizeFailureFallsBack: when ONNX Runtime cannot optimise the
// model for the rewrite, the standard graph is loaded with one warning that
// names the reason (not the info line of a model with nothing to fuse).
func TestFuseOptimizeFailureFallsBack(t *testing.T) {
	old := optimizeAndRewrite
	optimizeAndRewrite = func([]byte, string, func(*ort.SessionOptions) error) ([]byte, int, error) {
		return nil, 0, errors.New("injected optimise failure")
	}
	defer func() { optimizeAndRewrite = old }()
	d, logs := loadShared(t, "yolov8n_int8qdq_320.onnx", nil)
	if n := d.Info().FusedActivations; n != 0 {
		t.Errorf("FusedActivations = %d, want 0", n)
	}
	warns := logs.Lines("level=WARN")
	if len(warns) != 1 || !strings.Contains(warns[0], "injected optimise failure") {
		t.Errorf("want one warning naming the reason, got %q", warns)
	}
	if info := logs.Lines("no activation to fuse"); len(info) != 0 {
		t.Errorf("a failed optimisation logged as a model with nothing to fuse: %q", info)
	}
	detectDog(t, d)
}
