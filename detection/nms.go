package detection

import (
	"cmp"
	"slices"
)

// NMSOptions configures NMS.
type NMSOptions struct {
	// IoU is the overlap above which the lower-scored box is suppressed;
	// a box whose IoU equals it is kept.
	IoU float32
	// Agnostic suppresses across classes; otherwise only boxes of the same
	// class suppress each other.
	Agnostic bool
	// MaxDetections caps how many boxes are kept; 0 (or less) means no limit.
	MaxDetections int
}

// NMS sorts dets by score (descending, stable, NaN scores last) and greedily
// suppresses boxes whose IoU with a kept box of the same class (any class
// if Agnostic) exceeds opt.IoU. It works in place, does not allocate, and
// returns the kept prefix of dets in descending score order. The result is
// deterministic: equal scores keep their input order.
func NMS(dets []Detection, opt NMSOptions) []Detection {
	sortByScore(dets)
	kept := 0
	for i := range dets {
		if opt.MaxDetections > 0 && kept >= opt.MaxDetections {
			break
		}
		d := dets[i]
		if !suppressed(dets[:kept], d, opt) {
			dets[kept] = d
			kept++
		}
	}
	return dets[:kept]
}

// suppressed reports whether d overlaps a kept box of a class it competes
// with by more than opt.IoU.
func suppressed(kept []Detection, d Detection, opt NMSOptions) bool {
	area := d.Box.Area()
	for k := range kept {
		if !opt.Agnostic && kept[k].ClassID != d.ClassID {
			continue
		}
		if iou(kept[k].Box, d.Box, area) > opt.IoU {
			return true
		}
	}
	return false
}

// insertionSortMax is the length up to which sortByScore uses binary
// insertion sort: Detection is 48 bytes, and for a few hundred candidates
// shifting with memmove beats SortStableFunc's rotation-based merges
// (~2.5x at 300); beyond it the quadratic moves lose.
const insertionSortMax = 512

// sortByScore sorts dets by descending score, stably, without allocating.
func sortByScore(dets []Detection) {
	if len(dets) > insertionSortMax {
		slices.SortStableFunc(dets, byScoreDesc)
		return
	}
	for i := 1; i < len(dets); i++ {
		x := dets[i]
		if byScoreDesc(dets[i-1], x) <= 0 {
			continue // already in place
		}
		// Find the first p in [0, i) that sorts strictly after x, so x
		// lands after its equals (stable).
		lo, hi := 0, i
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if byScoreDesc(dets[m], x) > 0 {
				hi = m
			} else {
				lo = m + 1
			}
		}
		copy(dets[lo+1:i+1], dets[lo:i])
		dets[lo] = x
	}
}

// byScoreDesc orders by descending score; cmp.Compare puts NaN below every
// number, so NaN scores sort last.
func byScoreDesc(a, b Detection) int {
	return cmp.Compare(b.Score, a.Score)
}

// IoU returns the intersection over union of a and b, in [0, 1]; 0 when the
// union is empty. Empty or inverted boxes have zero area.
func IoU(a, b Box) float32 {
	return iou(a, b, b.Area())
}

// iou is IoU with b's area precomputed.
func iou(a, b Box, areaB float32) float32 {
	iw := min(a.X2, b.X2) - max(a.X1, b.X1)
	ih := min(a.Y2, b.Y2) - max(a.Y1, b.Y1)
	if !(iw > 0 && ih > 0) {
		return 0
	}
	inter := iw * ih
	union := a.Area() + areaB - inter
	if !(union > 0) {
		return 0
	}
	return inter / union
}
