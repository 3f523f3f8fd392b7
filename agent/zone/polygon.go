package zone

import (
	"fmt"
	"math"

	"github.com/edgedet/edgedet/detection"
)

// Point is a polygon vertex: x, y in frame pixels (y grows downwards).
// Coordinates may lie outside the frame, e.g. to clip a polygon at the
// frame border, but must be finite.
type Point [2]float64

// polygon is a validated, immutable polygon with its bounding box.
type polygon struct {
	pts                    []Point // own copy, never the caller's slice
	minX, minY, maxX, maxY float64
}

// checkPolygon returns what is wrong with pts as a polygon, without a key:
// callers prefix it with theirs.
func checkPolygon(pts []Point) error {
	if len(pts) < 3 {
		return fmt.Errorf("%d points, a polygon needs at least 3", len(pts))
	}
	for i, p := range pts {
		if !finite(p[0]) || !finite(p[1]) {
			return fmt.Errorf("point %d (%g, %g) is not finite", i, p[0], p[1])
		}
	}
	if area2(pts) == 0 {
		return fmt.Errorf("%d points enclose no area (all on one line)", len(pts))
	}
	return nil
}

// newPolygon copies pts, which must have passed checkPolygon.
func newPolygon(pts []Point) polygon {
	p := polygon{
		pts:  append([]Point(nil), pts...),
		minX: math.Inf(1), minY: math.Inf(1),
		maxX: math.Inf(-1), maxY: math.Inf(-1),
	}
	for _, v := range pts {
		p.minX, p.maxX = min(p.minX, v[0]), max(p.maxX, v[0])
		p.minY, p.maxY = min(p.minY, v[1]), max(p.maxY, v[1])
	}
	return p
}

// contains reports whether (x, y) is inside the polygon by the even-odd
// rule, counting points on an edge or vertex as inside. The edge test is
// exact (a zero cross product), which holds for the whole- and half-pixel
// coordinates that box bottom-centres and configured vertices have; a NaN
// point is never inside.
func (p *polygon) contains(x, y float64) bool {
	// Fast reject; also false for NaN.
	if !(x >= p.minX && x <= p.maxX && y >= p.minY && y <= p.maxY) {
		return false
	}
	inside := false
	pts := p.pts
	j := len(pts) - 1
	for i := range pts {
		xi, yi := pts[i][0], pts[i][1]
		xj, yj := pts[j][0], pts[j][1]
		j = i
		// On the edge (i, j): collinear and within the edge's extent.
		if (xj-xi)*(y-yi) == (yj-yi)*(x-xi) &&
			x >= min(xi, xj) && x <= max(xi, xj) &&
			y >= min(yi, yj) && y <= max(yi, yj) {
			return true
		}
		// Does a ray from (x, y) towards +x cross the edge? The half-open
		// test (yi > y) != (yj > y) counts a vertex on the ray once and
		// skips horizontal edges.
		if (yi > y) != (yj > y) {
			xc := xi + (y-yi)*(xj-xi)/(yj-yi)
			if x < xc {
				inside = !inside
			}
		}
	}
	return inside
}

// BottomCentre returns the point of b that zones and masks test: the
// middle of its bottom edge, ((X1+X2)/2, Y2), as Frigate does.
func BottomCentre(b detection.Box) (x, y float64) {
	return (float64(b.X1) + float64(b.X2)) / 2, float64(b.Y2)
}

// area2 is twice the signed area of the polygon (shoelace formula).
func area2(pts []Point) float64 {
	var s float64
	j := len(pts) - 1
	for i := range pts {
		s += pts[j][0]*pts[i][1] - pts[i][0]*pts[j][1]
		j = i
	}
	return s
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Mask is an object-filter mask: a set of polygons, in frame pixels, in
// which detections are not wanted. A detection is masked when the
// bottom-centre of its box (see BottomCentre) is inside any polygon, edges
// included; how much of the box overlaps the mask does not matter.
//
// A Mask is immutable and safe for concurrent use. A nil *Mask masks
// nothing, so a camera without a mask can keep a nil one.
type Mask struct {
	polys                  []polygon
	minX, minY, maxX, maxY float64 // union of the polygons' bounding boxes
}

// NewMask returns a Mask of polys, which it copies. Each polygon needs at
// least 3 finite points enclosing some area; errors name the polygon by
// index ("polygon 1: 2 points, a polygon needs at least 3") for the caller
// to prefix with its config key. No polygons gives a Mask that masks
// nothing.
func NewMask(polys [][]Point) (*Mask, error) {
	m := &Mask{
		polys: make([]polygon, 0, len(polys)),
		minX:  math.Inf(1), minY: math.Inf(1),
		maxX: math.Inf(-1), maxY: math.Inf(-1),
	}
	for i, pts := range polys {
		if err := checkPolygon(pts); err != nil {
			return nil, fmt.Errorf("polygon %d: %w", i, err)
		}
		p := newPolygon(pts)
		m.minX, m.maxX = min(m.minX, p.minX), max(m.maxX, p.maxX)
		m.minY, m.maxY = min(m.minY, p.minY), max(m.maxY, p.maxY)
		m.polys = append(m.polys, p)
	}
	return m, nil
}

// Contains reports whether b's bottom-centre is inside the mask. It does
// not allocate.
func (m *Mask) Contains(b detection.Box) bool {
	if m == nil {
		return false
	}
	x, y := BottomCentre(b)
	if !(x >= m.minX && x <= m.maxX && y >= m.minY && y <= m.maxY) {
		return false
	}
	for i := range m.polys {
		if m.polys[i].contains(x, y) {
			return true
		}
	}
	return false
}

// Filter removes, in place, the detections whose box Contains reports
// masked, keeping the order of the rest, and returns the shortened slice.
// Like slices.DeleteFunc it zeroes the elements between the new and the
// old length. It does not allocate.
func (m *Mask) Filter(dets []detection.Detection) []detection.Detection {
	if m == nil || len(m.polys) == 0 {
		return dets
	}
	kept := 0
	for i := range dets {
		if m.Contains(dets[i].Box) {
			continue
		}
		if kept != i {
			dets[kept] = dets[i]
		}
		kept++
	}
	clear(dets[kept:])
	return dets[:kept]
}
