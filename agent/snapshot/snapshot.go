// Package snapshot encodes the JPEG an event carries: the frame or the
// crop around the object, resized, with its box and overlay drawn. It is the
// part of the report path that needs OpenCV; the configuration, the crop
// rectangle and the MQTT message are plain Go in package report.
package snapshot

import (
	"errors"
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/cvsafe"
	"github.com/edgedet/edgedet/internal/overlay"
)

// Encode renders a JPEG of obj in img, a BGR frame (CV_8UC3) that it does
// not modify: the frame, or with cfg.Crop the region around obj.Box (see
// report.CropRect), resized to cfg.Height keeping the aspect ratio, with the box
// and "label score" drawn when cfg.DrawBox, encoded at cfg.Quality. cfg must
// be valid (apply WithDefaults first). Every Mat it creates is closed
// before it returns. ov (zones, motion boxes, in frame pixels) is drawn
// when cfg.Overlay is set.
func Encode(img gocv.Mat, obj track.Object, cfg report.SnapshotConfig, ov overlay.Overlay) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if img.Empty() {
		return nil, errors.New("snapshot: empty image")
	}
	if t := img.Type(); t != gocv.MatTypeCV8UC3 {
		return nil, fmt.Errorf("snapshot: image type %v is not 8-bit BGR (CV_8UC3)", t)
	}
	fw, fh := img.Cols(), img.Rows()
	frame := image.Rect(0, 0, fw, fh)

	src := frame
	if cfg.Crop {
		src = report.CropRect(obj.Box, fw, fh)
		if src.Empty() {
			return nil, fmt.Errorf("snapshot: box %v is outside the %dx%d frame", obj.Box, fw, fh)
		}
	}

	outH := cfg.Height
	if outH == 0 {
		outH = src.Dy()
	}
	outW := max(1, int(math.Round(float64(src.Dx())*float64(outH)/float64(src.Dy()))))
	scale := float32(outH) / float32(src.Dy())

	// Resize always writes a new buffer (a plain copy when the size is
	// unchanged), so drawing on out never touches img.
	roi := img.Region(src)
	defer roi.Close()
	out := gocv.NewMat()
	defer out.Close()
	interp := gocv.InterpolationArea
	if outH > src.Dy() {
		interp = gocv.InterpolationLinear
	}
	if err := cvsafe.Resize(roi, &out, image.Pt(outW, outH), interp); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if out.Empty() {
		return nil, errors.New("snapshot: resize produced an empty image")
	}

	if cfg.Overlay {
		overlay.Draw(&out, ov, src.Min, float64(scale))
	}
	if cfg.DrawBox {
		ox, oy := float32(src.Min.X), float32(src.Min.Y)
		detector.Draw(&out, []detection.Detection{{
			ClassID: obj.ClassID,
			Label:   obj.Label,
			Score:   obj.Score,
			Box: detection.Box{
				X1: (obj.Box.X1 - ox) * scale, Y1: (obj.Box.Y1 - oy) * scale,
				X2: (obj.Box.X2 - ox) * scale, Y2: (obj.Box.Y2 - oy) * scale,
			},
		}})
	}

	jpeg, err := cvsafe.EncodeImage(gocv.JPEGFileExt, out, gocv.IMWriteJpegQuality, cfg.Quality)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return jpeg, nil
}
