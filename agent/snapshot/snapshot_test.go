package snapshot

import (
	"bytes"
	"image"
	"image/jpeg"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/overlay"
	"github.com/edgedet/edgedet/internal/testenv"
)

var dogBox = detection.Box{X1: 133, Y1: 207, X2: 327, Y2: 543}

func dogObject() track.Object {
	return track.Object{ID: "1-000001", Label: "dog", ClassID: 16, Score: 0.87, TopScore: 0.87, Box: dogBox, Area: dogBox.Area()}
}

// readDog loads the shared dog sample; the Mat is closed at cleanup.
func readDog(t *testing.T) gocv.Mat {
	t.Helper()
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", "dog.jpg"), gocv.IMReadColor)
	if img.Empty() {
		img.Close()
		t.Fatal("cannot decode dog.jpg")
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func jpegSize(t *testing.T, b []byte) image.Config {
	t.Helper()
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("output is not a JPEG: %v", err)
	}
	return cfg
}

func snap(t *testing.T, img gocv.Mat, obj track.Object, cfg report.SnapshotConfig) []byte {
	t.Helper()
	b, err := Encode(img, obj, cfg, overlay.Overlay{})
	if err != nil {
		t.Fatalf("Encode(%+v): %v", cfg, err)
	}
	return b
}

func TestSnapshot(t *testing.T) {
	img := readDog(t)
	fw, fh := img.Cols(), img.Rows()
	sumBefore := img.Sum()
	def := report.DefaultSnapshotConfig()

	for _, tc := range []struct {
		name string
		cfg  report.SnapshotConfig
	}{
		{"full frame height", def},
		{"full 240", report.SnapshotConfig{Height: 240, Quality: 70, DrawBox: true}},
		{"full 900 upscale", report.SnapshotConfig{Height: 900, Quality: 70}},
		{"crop 240", report.SnapshotConfig{Crop: true, Height: 240, Quality: 70, DrawBox: true}},
		{"crop native", report.SnapshotConfig{Crop: true, Quality: 70, DrawBox: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := jpegSize(t, snap(t, img, dogObject(), tc.cfg))
			wantH := tc.cfg.Height
			src := image.Rect(0, 0, fw, fh)
			if tc.cfg.Crop {
				src = report.CropRect(dogBox, fw, fh)
			}
			if wantH == 0 {
				wantH = src.Dy()
			}
			if got.Height != wantH {
				t.Errorf("height = %d, want %d", got.Height, wantH)
			}
			wantW := float64(src.Dx()) * float64(wantH) / float64(src.Dy())
			if d := float64(got.Width) - wantW; d > 1 || d < -1 {
				t.Errorf("width = %d, want %.1f (aspect of %v kept)", got.Width, wantW, src.Size())
			}
			if tc.cfg.Crop {
				full := jpegSize(t, snap(t, img, dogObject(), report.SnapshotConfig{Height: tc.cfg.Height, Quality: 70}))
				if full.Height == got.Height && got.Width >= full.Width {
					t.Errorf("crop width %d not smaller than full frame width %d", got.Width, full.Width)
				}
				if got.Width >= fw {
					t.Errorf("crop width %d not smaller than the frame's %d", got.Width, fw)
				}
			}
		})
	}

	if sumAfter := img.Sum(); sumAfter != sumBefore {
		t.Errorf("input Mat changed: pixel sum %v before, %v after", sumBefore, sumAfter)
	}
}

func TestSnapshotQuality(t *testing.T) {
	img := readDog(t)
	low := snap(t, img, dogObject(), report.SnapshotConfig{Quality: 30, DrawBox: true})
	high := snap(t, img, dogObject(), report.SnapshotConfig{Quality: 90, DrawBox: true})
	if len(low) >= len(high) {
		t.Errorf("quality 30 gives %d bytes, quality 90 %d: want smaller", len(low), len(high))
	}
}

func TestSnapshotDrawBox(t *testing.T) {
	img := readDog(t)
	cfg := report.SnapshotConfig{Crop: true, Quality: 95}
	plain := snap(t, img, dogObject(), cfg)
	cfg.DrawBox = true
	drawn := snap(t, img, dogObject(), cfg)
	if bytes.Equal(plain, drawn) {
		t.Error("draw_box made no difference to the snapshot")
	}
}

func TestSnapshotErrors(t *testing.T) {
	img := readDog(t)
	obj := dogObject()
	for _, tc := range []struct {
		name string
		cfg  report.SnapshotConfig
		want string
	}{
		{"quality 0", report.SnapshotConfig{}, "snapshots.quality: 0"},
		{"quality 101", report.SnapshotConfig{Quality: 101}, "snapshots.quality: 101"},
		{"height -1", report.SnapshotConfig{Quality: 70, Height: -1}, "snapshots.height: -1"},
		{"height huge", report.SnapshotConfig{Quality: 70, Height: 100000}, "snapshots.height: 100000"},
	} {
		if _, err := Encode(img, obj, tc.cfg, overlay.Overlay{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}

	outside := obj
	outside.Box = detection.Box{X1: 5000, Y1: 5000, X2: 5100, Y2: 5100}
	if _, err := Encode(img, outside, report.SnapshotConfig{Crop: true, Quality: 70}, overlay.Overlay{}); err == nil {
		t.Error("crop of a box outside the frame: no error")
	}
	// Without crop the frame is still worth sending.
	snap(t, img, outside, report.SnapshotConfig{Quality: 70, DrawBox: true})

	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := Encode(empty, obj, report.DefaultSnapshotConfig(), overlay.Overlay{}); err == nil {
		t.Error("empty image: no error")
	}
	grey := gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8UC1)
	defer grey.Close()
	if _, err := Encode(grey, obj, report.DefaultSnapshotConfig(), overlay.Overlay{}); err == nil {
		t.Error("grey image: no error")
	}
}

// TestSnapshotOverlay: with overlay on, the zone outline is drawn in the
// snapshot where the zone is; off (or no zones), nothing changes.
func TestSnapshotOverlay(t *testing.T) {
	img := readDog(t)
	ov := overlay.Overlay{Zones: []overlay.Zone{{Name: "lawn", Points: []image.Point{{0, 400}, {767, 400}, {767, 575}, {0, 575}}}}}
	cfg := report.SnapshotConfig{Quality: 100}
	plain := snap(t, img, dogObject(), cfg)
	off, err := Encode(img, dogObject(), cfg, ov)
	if err != nil || !bytes.Equal(plain, off) {
		t.Fatalf("overlay off changed the snapshot (err %v)", err)
	}
	cfg.Overlay = true
	on, err := Encode(img, dogObject(), cfg, ov)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gocv.IMDecode(on, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v := m.GetVecbAt(400, 600) // on the zone's top edge: yellow (BGR 0,215,255)
	if v[0] > 80 || v[1] < 170 || v[2] < 200 {
		t.Errorf("zone edge pixel is BGR %v, want yellow", v)
	}
}
