package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

func samples(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "datasets", "samples")
	imgs, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if len(imgs) == 0 {
		t.Fatalf("sample images missing: no *.jpg in %s (the shared datasets checkout must sit beside the repository)", dir)
	}
	return imgs
}

func TestWriteClipReadsBack(t *testing.T) {
	imgs := samples(t)[:3]
	path := filepath.Join(t.TempDir(), "sub", "clip.avi")
	if err := WriteClip(path, imgs, 160, 120, 10, 4); err != nil {
		t.Fatal(err)
	}
	vc, err := gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
	if err != nil {
		if vc != nil {
			vc.Close()
		}
		t.Fatal(err)
	}
	defer vc.Close()
	if fps := vc.Get(gocv.VideoCaptureFPS); fps < 9.9 || fps > 10.1 {
		t.Errorf("fps = %v, want 10", fps)
	}
	m := gocv.NewMat()
	defer m.Close()
	n := 0
	for vc.Read(&m) && !m.Empty() {
		n++
		if m.Cols() != 160 || m.Rows() != 120 || m.Type() != gocv.MatTypeCV8UC3 {
			t.Fatalf("frame %d: %dx%d type %v, want 160x120 CV_8UC3", n, m.Cols(), m.Rows(), m.Type())
		}
	}
	if n != 12 {
		t.Fatalf("read %d frames, want 12", n)
	}
}

func TestWriteClipLetterboxPadding(t *testing.T) {
	imgs := samples(t)
	var wide string
	for _, p := range imgs {
		if strings.HasSuffix(p, "kite.jpg") { // 1352x900, wider than 1:1
			wide = p
		}
	}
	if wide == "" {
		t.Fatal("kite.jpg missing from samples")
	}
	path := filepath.Join(t.TempDir(), "square.avi")
	if err := WriteClip(path, []string{wide}, 128, 128, 5, 1); err != nil {
		t.Fatal(err)
	}
	vc, err := gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
	if err != nil {
		if vc != nil {
			vc.Close()
		}
		t.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	if !vc.Read(&m) || m.Empty() {
		t.Fatal("no frame read back")
	}
	// 1352x900 into 128x128: image 128x85, bands of ~21 rows top and bottom.
	for _, y := range []int{0, 5, 122, 127} {
		v := m.GetVecbAt(y, 64)
		for c := range 3 {
			if d := int(v[c]) - PadGrey; d < -6 || d > 6 { // MJPG is lossy
				t.Fatalf("pixel (64,%d) channel %d = %d, want ~%d", y, c, v[c], PadGrey)
			}
		}
	}
}

func TestWriteClipErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.jpg")
	if err := os.WriteFile(junk, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.avi")
	cases := []struct {
		name   string
		images []string
		w, h   int
		fps    float64
		each   int
		want   string
	}{
		{"no images", nil, 64, 64, 5, 1, "no images"},
		{"bad size", samples(t)[:1], 0, 64, 5, 1, "size 0x64"},
		{"bad fps", samples(t)[:1], 64, 64, 0, 1, "fps 0"},
		{"bad each", samples(t)[:1], 64, 64, 5, 0, "frames each 0"},
		{"junk image", []string{junk}, 64, 64, 5, 1, junk},
	}
	for _, c := range cases {
		err := WriteClip(out, c.images, c.w, c.h, c.fps, c.each)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("failed writes left %s behind (stat err %v)", out, err)
	}
}
