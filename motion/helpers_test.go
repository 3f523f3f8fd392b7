package motion

import (
	"fmt"
	"image"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/testenv"
)

// closeMat closes m when the test ends.
func closeMat(t testing.TB, m *gocv.Mat) {
	t.Helper()
	t.Cleanup(func() { m.Close() })
}

// photo loads a shared sample image resized to w×h (INTER_AREA).
func photo(t testing.TB, name string, w, h int) gocv.Mat {
	t.Helper()
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", name), gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		t.Fatalf("cannot decode sample %s", name)
	}
	out := gocv.NewMat()
	closeMat(t, &out)
	gocv.Resize(img, &out, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	return out
}

// sprite crops r from a shared sample image and resizes it to size: the
// object the tests move across a scene. The default crop is the dog's
// head and shoulders in dog.jpg.
func sprite(t testing.TB, size image.Point) gocv.Mat {
	t.Helper()
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", "dog.jpg"), gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		t.Fatal("cannot decode sample dog.jpg")
	}
	roi := img.Region(image.Rect(130, 210, 320, 400))
	defer roi.Close()
	out := gocv.NewMat()
	closeMat(t, &out)
	gocv.Resize(roi, &out, size, 0, 0, gocv.InterpolationArea)
	return out
}

// paste copies src into dst with its top-left corner at at.
func paste(t testing.TB, dst *gocv.Mat, src gocv.Mat, at image.Point) {
	t.Helper()
	r := image.Rectangle{Min: at, Max: at.Add(image.Pt(src.Cols(), src.Rows()))}
	if !r.In(image.Rect(0, 0, dst.Cols(), dst.Rows())) {
		t.Fatalf("paste %v outside the %dx%d frame", r, dst.Cols(), dst.Rows())
	}
	roi := dst.Region(r)
	src.CopyTo(&roi)
	roi.Close()
}

// fill sets r of dst to grey level v.
func fill(dst *gocv.Mat, r image.Rectangle, v float64) {
	roi := dst.Region(r)
	roi.SetTo(gocv.NewScalar(v, v, v, 0))
	roi.Close()
}

// addNoise adds Gaussian noise (sigma in grey levels) to frame in place,
// like a camera sensor.
func addNoise(t testing.TB, frame *gocv.Mat, sigma float64) {
	t.Helper()
	noise := gocv.NewMatWithSize(frame.Rows(), frame.Cols(), frame.Type())
	defer noise.Close()
	gocv.RandN(&noise, gocv.NewScalar(128, 128, 128, 0), gocv.NewScalar(sigma, sigma, sigma, 0))
	gocv.AddWeighted(*frame, 1, noise, 1, -128, frame)
}

// throughClip writes frames to an MJPG clip with testenv.WriteClip and
// returns the frames read back with the FFmpeg backend: the compression
// artefacts a real camera stream has. Every returned Mat is closed when
// the test ends.
func throughClip(t testing.TB, frames []gocv.Mat) []gocv.Mat {
	t.Helper()
	dir := t.TempDir()
	names := make([]string, len(frames))
	for i, f := range frames {
		names[i] = filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		if !gocv.IMWrite(names[i], f) {
			t.Fatalf("write %s", names[i])
		}
	}
	w, h := frames[0].Cols(), frames[0].Rows()
	clip := filepath.Join(dir, "clip.avi")
	if err := testenv.WriteClip(clip, names, w, h, 10, 1); err != nil {
		t.Fatal(err)
	}
	vc, err := gocv.VideoCaptureFileWithAPI(clip, gocv.VideoCaptureFFmpeg)
	if err != nil {
		if vc != nil {
			vc.Close()
		}
		t.Fatal(err)
	}
	defer vc.Close()
	out := make([]gocv.Mat, 0, len(frames))
	for {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			break
		}
		closeMat(t, &m)
		out = append(out, m)
	}
	if len(out) != len(frames) {
		t.Fatalf("clip read back %d frames, want %d", len(out), len(frames))
	}
	return out
}

// newDetector returns a Detector for cfg.WithDefaults(), closed when the
// test ends.
func newDetector(t testing.TB, cfg Config) *Detector {
	t.Helper()
	d, err := NewDetector(cfg.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// iou is the intersection over union of a and b.
func iou(a, b image.Rectangle) float64 {
	in := area(a.Intersect(b))
	return float64(in) / float64(area(a)+area(b)-in)
}

func area(r image.Rectangle) int { return r.Dx() * r.Dy() }

// best returns the box of boxes with the highest IoU with truth.
func best(boxes []image.Rectangle, truth image.Rectangle) (image.Rectangle, float64) {
	var b image.Rectangle
	score := 0.0
	for _, r := range boxes {
		if s := iou(r, truth); s > score {
			b, score = r, s
		}
	}
	return b, score
}

// anyOverlaps reports whether a box of boxes overlaps r.
func anyOverlaps(boxes []image.Rectangle, r image.Rectangle) bool {
	for _, b := range boxes {
		if b.Overlaps(r) {
			return true
		}
	}
	return false
}
