package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
)

// TestHugeClassIDCommands: a model whose names metadata has the class id
// 4611686018427387903 panicked detect, eval and quantize (makeslice out of
// range). Each must now fail with exit 1 and an error naming the model
// file and the id.
func TestHugeClassIDCommands(t *testing.T) {
	m, err := onnx.LoadModel(yoloxPath(t))
	if err != nil {
		t.Fatal(err)
	}
	onnx.SetMetadata(m, "names", "{0: 'person', 4611686018427387903: 'x'}")
	model := filepath.Join(t.TempDir(), "huge-id.onnx")
	if err := onnx.SaveModel(model, m); err != nil {
		t.Fatal(err)
	}
	img := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	for _, args := range [][]string{
		{"detect", "--model", model, img},
		{"eval", "--model", model, "--data", evalData(t, 2)},
		{"quantize", "--model", model, "--calib", calibDir(t, 1), "--out", filepath.Join(t.TempDir(), "q.onnx")},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, stderr, code := runCLI(t, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s", code, stderr)
			}
			for _, w := range []string{model, "class id 4611686018427387903"} {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, stderr)
				}
			}
		})
	}
}
