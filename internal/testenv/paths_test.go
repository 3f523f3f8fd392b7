package testenv

import (
	"path/filepath"
	"testing"
)

// TestSharedOptional: a shared file that is there is returned like Shared
// returns it; a missing one skips the test instead of failing it.
func TestSharedOptional(t *testing.T) {
	t.Setenv("EDGEDET_SHARED", t.TempDir())
	var sub *testing.T
	t.Run("missing", func(t *testing.T) {
		sub = t
		SharedOptional(t, "models", "absent.onnx")
		t.Error("SharedOptional returned for a missing file")
	})
	if !sub.Skipped() || sub.Failed() {
		t.Errorf("missing file: skipped %v, failed %v; want skipped only", sub.Skipped(), sub.Failed())
	}
	if got, want := SharedOptional(t, "."), filepath.Clean(SharedDir()); got != want {
		t.Errorf("present path: %q, want %q", got, want)
	}
}
