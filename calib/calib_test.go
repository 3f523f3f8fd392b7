package calib_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/calib"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

func spec() detection.Spec {
	return detection.Spec{InputWidth: 64, InputHeight: 48, Format: detection.FormatYOLOX}.WithDefaults()
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// preprocessed is what the detector's own preprocessing makes of an image.
func preprocessed(t testing.TB, path string) []float32 {
	t.Helper()
	img := gocv.IMRead(path, gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		t.Fatalf("cannot read %s", path)
	}
	pre, err := detector.NewPreprocessor(spec())
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	dst := make([]float32, pre.Len())
	if _, err := pre.Run(img, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestFromDir: a directory's images, sorted, junk and non-images skipped,
// at most limit of them, preprocessed as the detector does.
func TestFromDir(t *testing.T) {
	dir := t.TempDir()
	dog, horses := testenv.Shared(t, "datasets", "samples", "dog.jpg"), testenv.Shared(t, "datasets", "samples", "horses.jpg")
	copyFile(t, horses, filepath.Join(dir, "b.jpg"))
	copyFile(t, dog, filepath.Join(dir, "a.jpg"))
	os.WriteFile(filepath.Join(dir, "0junk.jpg"), []byte("not a jpeg"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644)
	var logs bytes.Buffer
	in, err := calib.FromDir(dir, 0, spec(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if want := []string{filepath.Join(dir, "a.jpg"), filepath.Join(dir, "b.jpg")}; !slices.Equal(in.Names(), want) {
		t.Fatalf("names %v, want %v", in.Names(), want)
	}
	if !strings.Contains(logs.String(), "0junk.jpg") {
		t.Errorf("the junk image was skipped silently: %q", logs.String())
	}
	dst := make([]float32, 3*64*48)
	for i, src := range []string{dog, horses} {
		if err := in.Input(context.Background(), i, dst); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dst, preprocessed(t, src)) {
			t.Errorf("input %d differs from the detector's preprocessing of %s", i, src)
		}
	}
	if err := in.Input(context.Background(), 2, dst); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("input 2 of 2: %v", err)
	}
	// Image gives the decoded frame (dog.jpg is 768×576).
	img, err := in.Image(0)
	if err != nil {
		t.Fatal(err)
	}
	if img.Cols() != 768 || img.Rows() != 576 || img.Channels() != 3 {
		t.Errorf("image 0 is %dx%d with %d channels, want dog.jpg's 768x576x3", img.Cols(), img.Rows(), img.Channels())
	}
	img.Close()
	if _, err := in.Image(-1); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("image -1: %v", err)
	}

	one, err := calib.FromDir(dir, 1, spec(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if one.Len() != 1 {
		t.Errorf("limit 1: %d inputs", one.Len())
	}
}

func TestFromDirErrors(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	empty := t.TempDir()
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "x.png"), []byte("no"), 0o644)
	for _, tc := range []struct{ dir, want string }{
		{filepath.Join(empty, "missing"), "calibration directory"},
		{empty, "has no images"},
		{junk, "none of its 1 images can be read"},
	} {
		if in, err := calib.FromDir(tc.dir, 0, spec(), quiet); err == nil || !strings.Contains(err.Error(), tc.want) {
			in.Close()
			t.Errorf("%s: error %v, want one mentioning %q", tc.dir, err, tc.want)
		} else if in != nil || in.Len() != 0 {
			t.Errorf("%s: %d inputs returned with the error", tc.dir, in.Len())
		}
	}
}

// TestFromCamera captures frames from a video file camera, names them by
// camera, and stops at the end of the stream.
func TestFromCamera(t *testing.T) {
	imgs := []string{testenv.Shared(t, "datasets", "samples", "dog.jpg"), testenv.Shared(t, "datasets", "samples", "horses.jpg")}
	clip := filepath.Join(t.TempDir(), "clip.avi")
	if err := testenv.WriteClip(clip, imgs, 640, 480, 10, 2); err != nil {
		t.Fatal(err)
	}
	realtime := false
	cc := camera.Config{Name: "porch", Source: clip, Realtime: &realtime}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	in, err := calib.FromCamera(context.Background(), "porch", cc, 3, spec(), quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.Len() != 3 || in.Names()[2] != "camera porch frame 3" {
		t.Errorf("%d frames named %v", in.Len(), in.Names())
	}
	dst := make([]float32, 3*64*48)
	if err := in.Input(context.Background(), 0, dst); err != nil {
		t.Fatal(err)
	}
	if slices.Max(dst) == slices.Min(dst) {
		t.Error("frame 0 preprocessed to a constant")
	}
	in.Close()
	if err := in.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	all, err := calib.FromCamera(context.Background(), "porch", cc, 100, spec(), quiet, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if all.Len() != 4 {
		t.Errorf("a 4-frame clip gave %d frames", all.Len())
	}
	if _, err := calib.FromCamera(context.Background(), "porch", cc, 0, spec(), quiet, nil); err == nil {
		t.Error("0 frames: want an error")
	}
}
