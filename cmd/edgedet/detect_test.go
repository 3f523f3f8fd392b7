package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// noCrash fails when the process died of an abort or a panic rather than
// returning an error.
func noCrash(t *testing.T, args []string, stderr string) {
	t.Helper()
	for _, s := range []string{"SIGABRT", "goroutine ", "panic:", "terminate called"} {
		if strings.Contains(stderr, s) {
			t.Errorf("%v crashed (%q):\n%s", args, s, stderr)
		}
	}
}

// TestCLIDetectOut: --out values that aborted the process (an extension
// OpenCV has no writer for) or did something surprising (two images and
// --out two.jpg made a directory named two.jpg) are usage errors naming the
// value, checked before the model loads; several images go into a directory.
func TestCLIDetectOut(t *testing.T) {
	model := testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	horses := testenv.Shared(t, "datasets", "samples", "horses.jpg")
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	copyDog := filepath.Join(other, "dog.jpg")
	data, err := os.ReadFile(dog)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyDog, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		out    string
		images []string
		want   []string
	}{
		{"txt", filepath.Join(dir, "x.txt"), []string{dog}, []string{"x.txt", `".txt"`, ".jpg", ".png"}},
		{"no extension", filepath.Join(dir, "x"), []string{dog}, []string{"no image extension"}},
		{"two images one file", filepath.Join(dir, "two.jpg"), []string{dog, horses}, []string{"two.jpg", "2 images need a directory"}},
		{"same base name", filepath.Join(dir, "dups"), []string{dog, copyDog}, []string{"would both be written as dog.jpg"}},
		{"the input itself", copyDog, []string{copyDog}, []string{"would overwrite the input image " + copyDog}},
		{"the input's directory", other, []string{copyDog, horses}, []string{"would overwrite the input image " + copyDog}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"detect", "--model", model, "--out", tc.out}, tc.images...)
			_, stderr, code := runCLI(t, args...)
			noCrash(t, args, stderr)
			if code != 2 {
				t.Errorf("exit %d, want 2 (usage)\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
			if tc.out != copyDog && tc.out != other {
				if _, err := os.Stat(tc.out); err == nil {
					t.Errorf("%s was created", tc.out)
				}
			}
		})
	}

	outDir := filepath.Join(dir, "annotated")
	_, stderr, code := runCLI(t, "detect", "--model", model, "--out", outDir, dog, horses)
	if code != 0 {
		t.Fatalf("two images into a directory: exit %d\n%s", code, stderr)
	}
	for _, n := range []string{"dog.jpg", "horses.jpg"} {
		if st, err := os.Stat(filepath.Join(outDir, n)); err != nil || st.Size() < 1000 {
			t.Errorf("%s not written: %v", n, err)
		}
	}
}

// TestCLIDetectBadImages: an image path that is a directory, an empty file
// and a truncated JPEG are reported by name; the good image is still
// processed and the exit status says how many failed.
func TestCLIDetectBadImages(t *testing.T) {
	model := testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	dir := t.TempDir()
	isDir := filepath.Join(dir, "folder.jpg")
	if err := os.Mkdir(isDir, 0o755); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.jpg")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dog)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.jpg")
	if err := os.WriteFile(cut, data[:len(data)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"detect", "--model", model, "--out", filepath.Join(dir, "out"), isDir, empty, cut, dog}
	stdout, stderr, code := runCLI(t, args...)
	noCrash(t, args, stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, stderr)
	}
	for _, w := range []string{"folder.jpg: is a directory", "empty.jpg: empty file", "cut.jpg: truncated JPEG", "3 of 4 images"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not mention %q", stderr, w)
		}
	}
	if !strings.Contains(stdout, "dog.jpg:") {
		t.Errorf("the good image was not processed: %s", stdout)
	}
}

// TestCLIFloatFlags: NaN and ±Inf (which strconv accepts and which pass
// every range test: --score NaN turned NMS off) are refused for every float
// flag, naming the flag.
func TestCLIFloatFlags(t *testing.T) {
	for _, args := range [][]string{
		{"detect", "--score", "NaN", "x.jpg"},
		{"detect", "--iou", "inf", "x.jpg"},
		{"detect", "--score", "-Inf", "x.jpg"},
		{"detect", "--score", "1e40", "x.jpg"}, // +Inf as a float32
		{"detect", "--score", "0.5abc", "x.jpg"},
		{"bench", "--seconds", "NaN", "x.jpg"},
		{"bench", "--warmup-seconds", "+Inf", "x.jpg"},
		{"quantize", "--percentile", "nan", "x.onnx"},
		{"quantize", "--max-error", "-inf", "x.onnx"},
		{"prune", "--target", "ratio=NaN", "--model", "x.onnx", "--out", "y.onnx", "--refit=false", "--importance", "l1"},
	} {
		_, stderr, code := runCLI(t, args...)
		noCrash(t, args, stderr)
		name, val := strings.TrimLeft(args[1], "-"), args[2]
		if code == 0 || !strings.Contains(stderr, name) || !strings.Contains(stderr, val) {
			t.Errorf("%v: exit %d, want an error naming %s and %s:\n%s", args, code, name, val, stderr)
		}
	}
}

// TestDetectJSONRounded: `detect --json` prints scores with at most 4
// decimals, boxes with at most 1 and normalised boxes with at most 4, as
// the agent's detections message (it printed float32 noise such as
// 0.85512346 and 132.79123).
func TestDetectJSONRounded(t *testing.T) {
	res := detector.Result{Width: 768, Height: 576, Detections: []detection.Detection{{
		Label: "dog", ClassID: 16, Score: 0.85512346,
		Box: detection.Box{X1: 132.79123, Y1: 206.6449, X2: 325.6851, Y2: 543.0901},
	}}}
	b, err := json.Marshal(newImageResult("dog.jpg", res, detector.ModelInfo{Name: "m", Precision: "fp32"}))
	if err != nil {
		t.Fatal(err)
	}
	want := `"score":0.8551,"box":[132.8,206.6,325.7,543.1],"box_norm":[0.1729,0.3588,0.4241,0.9429]`
	if !strings.Contains(string(b), want) {
		t.Errorf("detect --json detection:\n%s\nwant it to contain\n%s", b, want)
	}
}

// TestCLIDetectSaysWhatItWrote: --out names each file written, on stdout,
// or on stderr when stdout is JSON (which stays one object per line).
func TestCLIDetectSaysWhatItWrote(t *testing.T) {
	model := testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	horses := testenv.Shared(t, "datasets", "samples", "horses.jpg")
	eagle := testenv.Shared(t, "datasets", "samples", "eagle.jpg")
	dir := t.TempDir()
	one := filepath.Join(dir, "one.png")
	stdout, stderr, code := runCLI(t, "detect", "--model", model, "--out", one, eagle)
	if code != 0 || !strings.Contains(stdout, "wrote "+one+"\n") {
		t.Errorf("detect --out %s: exit %d, stdout lacks \"wrote %s\":\n%s%s", one, code, one, stdout, stderr)
	}
	if !strings.Contains(stdout, "eagle.jpg: 1 object (") { // the bird; it said "1 objects"
		t.Errorf("want one object in the singular:\n%s", stdout)
	}
	outDir := filepath.Join(dir, "annotated")
	stdout, stderr, code = runCLI(t, "detect", "--model", model, "--json", "--out", outDir, dog, horses)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, n := range []string{"dog.jpg", "horses.jpg"} {
		if !strings.Contains(stderr, "wrote "+filepath.Join(outDir, n)+"\n") {
			t.Errorf("stderr does not say it wrote %s:\n%s", n, stderr)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r imageResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("stdout line is not JSON: %v: %s", err, line)
		}
	}
}
