package motion

import "image"

// MergeBoxes merges, in place, boxes that overlap or lie within pad pixels
// of each other (horizontally and vertically; a negative pad counts as 0,
// so boxes that touch merge), repeating until no two boxes are that
// close, and returns the merged boxes, a prefix of boxes. Empty boxes are
// dropped. It allocates nothing. Use it to turn motion boxes into a few
// regions to crop for the detector.
func MergeBoxes(boxes []image.Rectangle, pad int) []image.Rectangle {
	pad = max(pad, 0)
	n := 0
	for _, b := range boxes {
		if !b.Empty() {
			boxes[n] = b
			n++
		}
	}
	boxes = boxes[:n]
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(boxes); i++ {
			for j := i + 1; j < len(boxes); {
				if !near(boxes[i], boxes[j], pad) {
					j++
					continue
				}
				// Box i grows; j takes the last box and is checked again.
				// Boxes before j that the grown box now reaches are
				// caught by the next pass.
				boxes[i] = boxes[i].Union(boxes[j])
				last := len(boxes) - 1
				boxes[j] = boxes[last]
				boxes = boxes[:last]
				merged = true
			}
		}
	}
	return boxes
}

// near reports whether a and b overlap or the gap between them is at most
// pad pixels along both axes.
func near(a, b image.Rectangle, pad int) bool {
	gapX := max(a.Min.X-b.Max.X, b.Min.X-a.Max.X)
	gapY := max(a.Min.Y-b.Max.Y, b.Min.Y-a.Max.Y)
	return gapX <= pad && gapY <= pad
}
