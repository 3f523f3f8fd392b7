package detector_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestInitRuntimeOnce: once ONNX Runtime is loaded, loading the same
// library again is a no-op and another library is an error naming both;
// the loaded library and its version are reported.
func TestInitRuntimeOnce(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	initORT(t)
	if err := detector.InitRuntime(lib); err != nil {
		t.Errorf("InitRuntime with the loaded library again: %v", err)
	}
	other := filepath.Join(t.TempDir(), "libonnxruntime.so")
	if err := detector.InitRuntime(other); err == nil || !strings.Contains(err.Error(), lib) || !strings.Contains(err.Error(), other) {
		t.Errorf("InitRuntime(%s) after %s: %v, want an error naming both", other, lib, err)
	}
	if !detector.RuntimeLoaded() || detector.RuntimeLibrary() != lib {
		t.Errorf("RuntimeLoaded %v, RuntimeLibrary %q, want true, %q", detector.RuntimeLoaded(), detector.RuntimeLibrary(), lib)
	}
	if v := detector.RuntimeVersion(); !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(v) {
		t.Errorf("RuntimeVersion() = %q, want a version number", v)
	}
}
