package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	img := filepath.Join("..", "..", "..", "..", "shared", "datasets", "samples", "dog.jpg")
	if _, err := os.Stat(img); err != nil {
		t.Fatalf("sample image missing: %v", err)
	}
	out := filepath.Join(t.TempDir(), "build", "sample.avi")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-out", out, "-w", "64", "-h", "48", "-fps", "5", "-each", "2", img}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Fatalf("no clip written: %v", err)
	}
	if !strings.Contains(stdout.String(), "wrote ") {
		t.Errorf("stdout = %q", stdout.String())
	}
	stderr.Reset()
	if code := run(nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage") {
		t.Errorf("no images: exit %d, stderr %q; want 2 with usage", code, stderr.String())
	}
}

// A bad flag is a usage error; an image that cannot be read fails naming
// it, and writes no clip.
func TestRunErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-w", "wide"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "-w") {
		t.Errorf("bad -w: exit %d, stderr %q; want 2 naming -w", code, stderr.String())
	}
	stderr.Reset()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.jpg")
	out := filepath.Join(dir, "clip.avi")
	if code := run([]string{"-out", out, missing}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "missing.jpg") {
		t.Errorf("missing image: exit %d, stderr %q; want 1 naming the file", code, stderr.String())
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a clip was written from a missing image")
	}
}
