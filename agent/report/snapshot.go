package report

import (
	"errors"
	"fmt"
	"image"
	"math"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/detection"
)

// SnapshotConfig is the [snapshots] section: JPEG snapshots of an object's
// best frame on <prefix>/<device>/<camera>/<label>/snapshot.
type SnapshotConfig struct {
	// Enabled publishes snapshots.
	Enabled bool `toml:"enabled"`
	// Crop cuts the image to a square-ish region around the object (the
	// box enlarged by 50 %, clamped to the frame) instead of the whole frame.
	Crop bool `toml:"crop"`
	// Height of the JPEG in pixels, the width following the aspect ratio;
	// 0 keeps the height of the frame (or of the crop).
	Height int `toml:"height"`
	// Quality is the JPEG quality, 1..100 (default 70).
	Quality int `toml:"quality"`
	// DrawBox draws the box and "label score" on the snapshot (default true).
	DrawBox bool `toml:"draw_box"`
	// Overlay draws the camera's zones and the frame's motion boxes, to
	// tune them (default false).
	Overlay bool `toml:"overlay"`
}

// Snapshot defaults and limits.
const (
	DefaultSnapshotQuality = 70
	// MaxSnapshotHeight bounds Height, so a typo cannot ask for a huge image.
	MaxSnapshotHeight = 8192
	// cropScale enlarges the box side for the crop, as Frigate does.
	cropScale = 1.5
	// minCropSide keeps crops of tiny objects from being a few pixels wide.
	minCropSide = 64
)

// DefaultSnapshotConfig is the configuration a file that says nothing about
// snapshots gets: disabled, full frame, frame height, quality 70, box drawn.
func DefaultSnapshotConfig() SnapshotConfig {
	return SnapshotConfig{Quality: DefaultSnapshotQuality, DrawBox: true}
}

// WithDefaults returns c with a zero Quality set to its default. DrawBox is
// a bool whose zero value is a valid choice, so it is only defaulted (to
// true) when c is the zero SnapshotConfig, which WithDefaults turns into
// DefaultSnapshotConfig. Decode a file over DefaultSnapshotConfig (or
// SnapshotConfig{}.WithDefaults()) so draw_box = false is kept.
func (c SnapshotConfig) WithDefaults() SnapshotConfig {
	if c == (SnapshotConfig{}) {
		return DefaultSnapshotConfig()
	}
	if c.Quality == 0 {
		c.Quality = DefaultSnapshotQuality
	}
	return c
}

// Validate reports every invalid field, named snapshots.<key> with its value.
func (c SnapshotConfig) Validate() error {
	var errs []error
	if c.Height < 0 || c.Height > MaxSnapshotHeight {
		errs = append(errs, fmt.Errorf("snapshots.height: %d not in [0,%d] (0 = frame height)", c.Height, MaxSnapshotHeight))
	}
	if c.Quality < 1 || c.Quality > 100 {
		errs = append(errs, fmt.Errorf("snapshots.quality: %d not in [1,100]", c.Quality))
	}
	return errors.Join(errs...)
}

// CropRect is the region a snapshot crops to for box in a w×h frame, in the
// Frigate style: a square of side 1.5 × the box's longer side (at least
// 64 px) centred on the box, shifted to lie inside the frame and clamped
// to it, so it is square unless the frame is too small. It is empty when
// the box does not overlap the frame.
func CropRect(box detection.Box, w, h int) image.Rectangle {
	frame := image.Rect(0, 0, w, h)
	b := image.Rect(
		int(math.Floor(float64(box.X1))), int(math.Floor(float64(box.Y1))),
		int(math.Ceil(float64(box.X2))), int(math.Ceil(float64(box.Y2))),
	).Intersect(frame)
	if b.Empty() {
		return image.Rectangle{}
	}
	side := max(int(math.Ceil(float64(max(b.Dx(), b.Dy()))*cropScale)), minCropSide)
	sw, sh := min(side, w), min(side, h)
	cx, cy := (b.Min.X+b.Max.X)/2, (b.Min.Y+b.Max.Y)/2
	x := min(max(cx-sw/2, 0), w-sw)
	y := min(max(cy-sh/2, 0), h-sh)
	return image.Rect(x, y, x+sw, y+sh)
}

// SnapshotMessage wraps a JPEG for <prefix>/<device>/<camera>/<label>/snapshot,
// retained and QoS 1, produced at at.
func SnapshotMessage(t topic.Tree, camera, label string, jpeg []byte, at time.Time) publish.Message {
	return publish.Message{
		Topic:    t.Snapshot(camera, label),
		Payload:  jpeg,
		QoS:      1,
		Retained: true,
		Time:     at,
	}
}
