package report

import (
	"image"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/detection"
)

var dogBox = detection.Box{X1: 133, Y1: 207, X2: 327, Y2: 543}

func TestSnapshotConfig(t *testing.T) {
	if got := (SnapshotConfig{}).WithDefaults(); got != DefaultSnapshotConfig() {
		t.Errorf("zero WithDefaults = %+v, want %+v", got, DefaultSnapshotConfig())
	}
	if d := DefaultSnapshotConfig(); d.Quality != 70 || !d.DrawBox || d.Enabled || d.Crop || d.Height != 0 {
		t.Errorf("defaults = %+v", d)
	}
	got := SnapshotConfig{Enabled: true, Height: 270}.WithDefaults()
	if got != (SnapshotConfig{Enabled: true, Height: 270, Quality: 70}) {
		t.Errorf("WithDefaults = %+v: want quality filled, draw_box = false kept", got)
	}
	if err := DefaultSnapshotConfig().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	err := SnapshotConfig{Height: -5, Quality: 0}.Validate()
	if err == nil || !strings.Contains(err.Error(), "snapshots.height: -5") || !strings.Contains(err.Error(), "snapshots.quality: 0") {
		t.Errorf("Validate = %v, want both fields named with values", err)
	}
}

func TestCropRect(t *testing.T) {
	for _, tc := range []struct {
		name string
		box  detection.Box
		w, h int
		want image.Rectangle
	}{
		// dog: side 336*1.5 = 504, centred (230,375) → shifted inside 768x576.
		{"dog", dogBox, 768, 576, image.Rect(0, 72, 504, 576)},
		{"centre", detection.Box{X1: 300, Y1: 200, X2: 340, Y2: 280}, 1000, 1000, image.Rect(260, 180, 380, 300)},
		{"tiny gets 64", detection.Box{X1: 500, Y1: 500, X2: 504, Y2: 502}, 1000, 1000, image.Rect(470, 469, 534, 533)},
		{"bigger than frame", detection.Box{X1: 0, Y1: 0, X2: 600, Y2: 400}, 640, 480, image.Rect(0, 0, 640, 480)},
		{"outside", detection.Box{X1: 700, Y1: 10, X2: 800, Y2: 50}, 640, 480, image.Rectangle{}},
	} {
		if got := CropRect(tc.box, tc.w, tc.h); got != tc.want {
			t.Errorf("%s: CropRect = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSnapshotMessage(t *testing.T) {
	at := time.Unix(1700000000, 0)
	m := SnapshotMessage(testTopics, "front", "traffic light", []byte{0xff, 0xd8}, at)
	if m.Topic != "edgedet/pi5/front/traffic light/snapshot" || !m.Retained || m.QoS != 1 || !m.Time.Equal(at) || len(m.Payload) != 2 {
		t.Errorf("message = %+v", m)
	}
}
