package zone

import (
	"math"
	"slices"
	"testing"

	"github.com/edgedet/edgedet/detection"
)

// square is the 10x10 square with its top-left corner at (10, 10).
var square = []Point{{10, 10}, {20, 10}, {20, 20}, {10, 20}}

// uShape is a concave "U" (y grows downwards, so the notch opens at the
// bottom): 30 wide, 30 tall, with the notch x in (10,20), y in (10,30].
var uShape = []Point{{0, 0}, {30, 0}, {30, 30}, {20, 30}, {20, 10}, {10, 10}, {10, 30}, {0, 30}}

func TestPolygonContains(t *testing.T) {
	nan := math.NaN()
	bow := []Point{{0, 0}, {10, 10}, {10, 0}, {0, 10}} // self-intersecting bow tie
	cases := []struct {
		name string
		pts  []Point
		x, y float64
		want bool
	}{
		{"square inside", square, 15, 15, true},
		{"square left of", square, 5, 15, false},
		{"square right of", square, 25, 15, false},
		{"square above", square, 15, 5, false},
		{"square below", square, 15, 25, false},
		{"square top edge", square, 15, 10, true},
		{"square bottom edge", square, 15, 20, true},
		{"square left edge", square, 10, 15, true},
		{"square right edge", square, 20, 15, true},
		{"square vertex", square, 20, 20, true},
		{"square just outside right edge", square, 20.5, 15, false},
		{"square on the line of an edge, beyond it", square, 25, 10, false},
		{"square at the height of a vertex, left of it", square, 5, 10, false},
		{"square NaN", square, nan, 15, false},
		{"U left arm", uShape, 5, 25, true},
		{"U right arm", uShape, 25, 25, true},
		{"U base", uShape, 15, 5, true},
		{"U notch", uShape, 15, 20, false},
		{"U notch opening", uShape, 15, 30, false},
		{"U notch bottom (inner edge)", uShape, 15, 10, true},
		{"U notch side (inner edge)", uShape, 10, 20, true},
		{"U reflex vertex", uShape, 20, 10, true},
		{"U ray through two vertices", uShape, 5, 10, true},
		{"U outside, ray crosses arms", uShape, -5, 20, false},
		{"bow tie left lobe", bow, 2, 5, true},
		{"bow tie top gap", bow, 5, 2, false},
		{"bow tie crossing point", bow, 5, 5, true},
		{"negative coordinates", []Point{{-100, -100}, {50, -100}, {50, 50}, {-100, 50}}, 0, 0, true},
	}
	for _, c := range cases {
		p := newPolygon(c.pts)
		if got := p.contains(c.x, c.y); got != c.want {
			t.Errorf("%s: contains(%g, %g) = %v, want %v", c.name, c.x, c.y, got, c.want)
		}
		// Winding order must not matter.
		rev := slices.Clone(c.pts)
		slices.Reverse(rev)
		r := newPolygon(rev)
		if got := r.contains(c.x, c.y); got != c.want {
			t.Errorf("%s, reversed: contains(%g, %g) = %v, want %v", c.name, c.x, c.y, got, c.want)
		}
	}
}

func box(x1, y1, x2, y2 float32) detection.Box { return detection.Box{X1: x1, Y1: y1, X2: x2, Y2: y2} }

func TestBottomCentre(t *testing.T) {
	x, y := BottomCentre(box(100, 300, 201, 420))
	if x != 150.5 || y != 420 {
		t.Fatalf("BottomCentre = (%g, %g), want (150.5, 420)", x, y)
	}
}

func newMask(tb testing.TB, polys ...[]Point) *Mask {
	tb.Helper()
	m, err := NewMask(polys)
	if err != nil {
		tb.Fatalf("NewMask: %v", err)
	}
	return m
}

// band is the bottom strip y in [400,480] of a 640x480 frame.
var band = []Point{{0, 400}, {640, 400}, {640, 480}, {0, 480}}

func TestMaskContainsBottomCentre(t *testing.T) {
	m := newMask(t, band)
	cases := []struct {
		name string
		b    detection.Box
		want bool
	}{
		// Centre (150,360) above the band, bottom-centre (150,420) in it.
		{"centre outside, bottom-centre inside", box(100, 300, 200, 420), true},
		// Centre (150,390) above... bottom-centre (150,399) just above.
		{"box overlapping the band's top edge only", box(100, 380, 200, 399), false},
		// Centre (150,440) in the band, bottom-centre (150,500) below it.
		{"centre inside, bottom-centre outside", box(100, 380, 200, 500), false},
		{"bottom-centre on the edge", box(100, 300, 200, 400), true},
		{"bottom-centre left of the frame", box(-200, 300, -100, 450), false},
		{"NaN box", box(float32(math.NaN()), 300, 200, 450), false},
	}
	for _, c := range cases {
		if got := m.Contains(c.b); got != c.want {
			t.Errorf("%s: Contains(%+v) = %v, want %v", c.name, c.b, got, c.want)
		}
	}
	var none *Mask
	if none.Contains(box(100, 300, 200, 420)) {
		t.Error("nil Mask contains a box")
	}
}

func det(label string, b detection.Box) detection.Detection {
	return detection.Detection{Label: label, Score: 0.9, Box: b}
}

func TestMaskFilter(t *testing.T) {
	// Two polygons: the bottom band and the top-left square.
	m := newMask(t, band, square)
	dets := []detection.Detection{
		det("a", box(0, 0, 100, 100)),     // bottom-centre (50,100): kept
		det("b", box(100, 300, 200, 420)), // (150,420) in band: dropped
		det("c", box(12, 2, 18, 15)),      // (15,15) in square: dropped
		det("d", box(100, 380, 200, 500)), // (150,500) below band: kept
		det("e", box(0, 0, 40, 20)),       // (20,20) square's corner: dropped
		det("f", box(300, 100, 340, 399)), // (320,399): kept
	}
	backing := dets
	got := m.Filter(dets)
	var labels []string
	for _, d := range got {
		labels = append(labels, d.Label)
	}
	if want := []string{"a", "d", "f"}; !slices.Equal(labels, want) {
		t.Fatalf("kept %q, want %q", labels, want)
	}
	if &got[0] != &backing[0] {
		t.Error("Filter did not work in place")
	}
	for i, d := range backing[len(got):] {
		if d != (detection.Detection{}) {
			t.Errorf("element %d past the new length is %+v, want zeroed", len(got)+i, d)
		}
	}

	if got := m.Filter(nil); len(got) != 0 {
		t.Errorf("Filter(nil) = %v", got)
	}
	var none *Mask
	all := []detection.Detection{det("x", box(100, 300, 200, 420))}
	if got := none.Filter(all); len(got) != 1 {
		t.Errorf("nil Mask filtered %v", got)
	}
	empty := newMask(t)
	if got := empty.Filter(all); len(got) != 1 {
		t.Errorf("empty Mask filtered %v", got)
	}
}

func TestMaskCopiesPoints(t *testing.T) {
	pts := slices.Clone(band)
	m := newMask(t, pts)
	pts[0], pts[1] = Point{0, 0}, Point{640, 0} // would cover the whole frame
	if m.Contains(box(100, 100, 200, 200)) {
		t.Fatal("Mask follows changes to the caller's points")
	}
}

func TestNewMaskErrors(t *testing.T) {
	cases := []struct {
		polys [][]Point
		want  string
	}{
		{[][]Point{band, {{0, 0}, {1, 1}}}, "polygon 1: 2 points, a polygon needs at least 3"},
		{[][]Point{{{0, 0}, {math.NaN(), 1}, {5, 5}}}, "polygon 0: point 1 (NaN, 1) is not finite"},
		{[][]Point{{{0, 0}, {math.Inf(1), 1}, {5, 5}}}, "polygon 0: point 1 (+Inf, 1) is not finite"},
		{[][]Point{{{0, 0}, {5, 5}, {10, 10}}}, "polygon 0: 3 points enclose no area (all on one line)"},
		{[][]Point{nil}, "polygon 0: 0 points, a polygon needs at least 3"},
	}
	for _, c := range cases {
		m, err := NewMask(c.polys)
		if err == nil || err.Error() != c.want {
			t.Errorf("NewMask(%v) error %v, want %q", c.polys, err, c.want)
		}
		if m != nil {
			t.Errorf("NewMask(%v) returned a Mask with its error", c.polys)
		}
	}
}

func TestMaskAllocs(t *testing.T) {
	m := newMask(t, band, uShape, square)
	dets := make([]detection.Detection, 0, 8)
	src := []detection.Detection{
		det("a", box(0, 0, 100, 100)),
		det("b", box(100, 300, 200, 420)),
		det("c", box(12, 2, 18, 15)),
		det("d", box(300, 100, 340, 399)),
	}
	var kept int
	if n := testing.AllocsPerRun(1000, func() {
		dets = append(dets[:0], src...)
		kept = len(m.Filter(dets))
	}); n != 0 {
		t.Errorf("Filter: %v allocs per run, want 0", n)
	}
	if kept != 2 {
		t.Errorf("Filter kept %d, want 2", kept)
	}
	var in bool
	if n := testing.AllocsPerRun(1000, func() { in = m.Contains(src[1].Box) }); n != 0 {
		t.Errorf("Contains: %v allocs per run, want 0", n)
	}
	if !in {
		t.Error("Contains = false, want true")
	}
}

func BenchmarkMaskFilter(b *testing.B) {
	m, _ := NewMask([][]Point{band, uShape, square})
	src := make([]detection.Detection, 32)
	for i := range src {
		x := float32(i * 20)
		src[i] = det("p", box(x, float32(i*15), x+30, float32(i*15)+60))
	}
	dets := make([]detection.Detection, 0, len(src))
	b.ReportAllocs()
	for b.Loop() {
		dets = m.Filter(append(dets[:0], src...))
	}
}
