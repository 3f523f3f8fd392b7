// Package overlay draws the tuning aids — motion boxes and zone outlines —
// on frames for the live view and on snapshots.
package overlay

import (
	"image"
	"image/color"

	"gocv.io/x/gocv"
)

// Zone is a named polygon in frame pixels.
type Zone struct {
	Name   string
	Points []image.Point
}

// Overlay is what to draw besides the detections.
type Overlay struct {
	Motion []image.Rectangle // motion boxes, frame pixels
	Zones  []Zone
}

// Colours: motion red, zones yellow (RGBA; gocv handles BGR).
var (
	MotionColor = color.RGBA{255, 0, 0, 255}
	ZoneColor   = color.RGBA{255, 215, 0, 255}
)

// Draw draws o on img, whose pixel (0,0) is frame pixel origin and whose
// scale is img pixels per frame pixel (a crop resized for a snapshot; 1 and
// (0,0) for the frame itself). Zones are drawn first, their names at their
// first point; motion boxes on top, thin.
func Draw(img *gocv.Mat, o Overlay, origin image.Point, scale float64) {
	if img.Empty() || (len(o.Motion) == 0 && len(o.Zones) == 0) {
		return
	}
	thick := max(2, min(img.Cols(), img.Rows())/300)
	at := func(p image.Point) image.Point {
		return image.Pt(int(float64(p.X-origin.X)*scale), int(float64(p.Y-origin.Y)*scale))
	}
	for _, z := range o.Zones {
		if len(z.Points) < 2 {
			continue
		}
		pts := make([]image.Point, len(z.Points))
		for i, p := range z.Points {
			pts[i] = at(p)
		}
		pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
		gocv.Polylines(img, pv, true, ZoneColor, thick)
		pv.Close()
		gocv.PutText(img, z.Name, pts[0].Add(image.Pt(4, 16)), gocv.FontHersheySimplex, 0.5, ZoneColor, 1)
	}
	for _, m := range o.Motion {
		gocv.Rectangle(img, image.Rectangle{Min: at(m.Min), Max: at(m.Max)}, MotionColor, thick/2)
	}
}
