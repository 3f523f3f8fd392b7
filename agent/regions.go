package agent

import (
	"image"

	"github.com/edgedet/edgedet/detection"
)

// regionMargin is how far, as a fraction of its larger side, a box is grown
// before its crop is planned: a moving object is caught whole.
const regionMargin = 0.25

// planRegions turns areas of interest (motion boxes, tracked objects) into
// square crops for the detector, appended to dst[:0]. Each crop is at least
// minSide pixels (the model's input side, so a small distant object is not
// shrunk but gets the model's full resolution), grown around its box,
// shifted inside the frame and merged with any crop it overlaps. When the
// crops would cover most of the frame, the whole frame is one region.
func planRegions(boxes []image.Rectangle, frameW, frameH, minSide int, dst []image.Rectangle) []image.Rectangle {
	dst = dst[:0]
	frame := image.Rect(0, 0, frameW, frameH)
	for _, b := range boxes {
		b = b.Intersect(frame)
		if b.Empty() {
			continue
		}
		dst = append(dst, squareAround(b, frameW, frameH, minSide))
	}
	// Merge overlapping crops until none overlap: the square around both.
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(dst) && !merged; i++ {
			for j := i + 1; j < len(dst); j++ {
				if dst[i].Overlaps(dst[j]) {
					dst[i] = squareAround(dst[i].Union(dst[j]), frameW, frameH, minSide)
					dst = append(dst[:j], dst[j+1:]...)
					merged = true
					break
				}
			}
		}
	}
	area := 0
	for _, r := range dst {
		area += r.Dx() * r.Dy()
	}
	if len(dst) > 0 && area*10 >= frameW*frameH*7 {
		dst = append(dst[:0], frame)
	}
	return dst
}

// squareAround returns the square crop, at least minSide and at most the
// frame's smaller side, centred on b grown by regionMargin and shifted to
// lie inside the frame. A box wider than the frame's smaller side gets a
// rectangle covering it.
func squareAround(b image.Rectangle, frameW, frameH, minSide int) image.Rectangle {
	side := max(b.Dx(), b.Dy())
	side += int(float64(side) * 2 * regionMargin)
	side = max(side, minSide)
	w, h := min(max(side, b.Dx()), frameW), min(max(side, b.Dy()), frameH)
	cx, cy := (b.Min.X+b.Max.X)/2, (b.Min.Y+b.Max.Y)/2
	x0 := min(max(cx-w/2, 0), frameW-w)
	y0 := min(max(cy-h/2, 0), frameH-h)
	return image.Rect(x0, y0, x0+w, y0+h)
}

// dedupeRegions removes, in place, detections that several overlapping
// crops found: of two boxes of the same class that overlap by IoU ≥ iou, or
// where the smaller lies mostly (≥ 80 %) inside the larger (an object cut by
// a crop's edge), the lower-scoring one goes. dets must be sorted best
// first.
func dedupeRegions(dets []detection.Detection, iou float32) []detection.Detection {
	kept := dets[:0]
next:
	for _, d := range dets {
		for _, k := range kept {
			if k.ClassID != d.ClassID {
				continue
			}
			inter := intersectArea(k.Box, d.Box)
			if inter <= 0 {
				continue
			}
			small := min(k.Box.Area(), d.Box.Area())
			union := k.Box.Area() + d.Box.Area() - inter
			if inter/union >= iou || inter >= 0.8*small {
				continue next
			}
		}
		kept = append(kept, d)
	}
	return kept
}

func intersectArea(a, b detection.Box) float32 {
	w := min(a.X2, b.X2) - max(a.X1, b.X1)
	h := min(a.Y2, b.Y2) - max(a.Y1, b.Y1)
	if w <= 0 || h <= 0 {
		return 0
	}
	return w * h
}
