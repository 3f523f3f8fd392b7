package distill

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func ramp(c, h, w int) []float32 {
	x := make([]float32, c*h*w)
	for k := range c {
		for y := range h {
			for i := range w {
				x[(k*h+y)*w+i] = float32(100*k + 10*y + i)
			}
		}
	}
	return x
}

// TestAugmentDeterministicAndInRange: the same seed draws the same
// changes and gives the same image; images keep their length and stay
// within their value range; another seed gives another image.
func TestAugmentDeterministicAndInRange(t *testing.T) {
	const c, h, w = 3, 12, 16
	run := func(seed uint64) [][]float32 {
		rng := rand.New(rand.NewPCG(seed, 1))
		var out [][]float32
		for range 20 {
			img, tmp := ramp(c, h, w), make([]float32, c*h*w)
			drawAugmentation(rng, h, w).apply(img, tmp, c, h, w)
			out = append(out, img)
		}
		return out
	}
	a, b, other := run(3), run(3), run(4)
	lo, hi := float32(0), float32(100*(c-1)+10*(h-1)+w-1)
	flips, crops := 0, 0
	rng := rand.New(rand.NewPCG(3, 1))
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("image %d differs between two runs with the same seed", i)
		}
		if len(a[i]) != c*h*w {
			t.Fatalf("image %d has %d values, want %d", i, len(a[i]), c*h*w)
		}
		for _, v := range a[i] {
			if v < lo || v > hi || math.IsNaN(float64(v)) {
				t.Fatalf("image %d has %g outside [%g, %g]", i, v, lo, hi)
			}
		}
		aug := drawAugmentation(rng, h, w)
		if aug.flip {
			flips++
		}
		if aug.cropH < h {
			crops++
			if float64(aug.cropH) < cropMin*h-0.5 || aug.cropY+aug.cropH > h || aug.cropX+aug.cropW > w {
				t.Errorf("crop %+v outside a %dx%d image or below %g of it", aug, h, w, cropMin)
			}
		}
	}
	if flips == 0 || flips == len(a) || crops == 0 {
		t.Errorf("%d flips and %d crops in %d draws", flips, crops, len(a))
	}
	if slices.EqualFunc(a, other, slices.Equal) {
		t.Error("another seed gave the same images")
	}
}

// TestFlipIsAFlip: a flip alone mirrors every row of every channel.
func TestFlipIsAFlip(t *testing.T) {
	const c, h, w = 3, 4, 5
	img := ramp(c, h, w)
	augmentation{flip: true, cropH: h, cropW: w, contrast: 1, saturation: 1}.apply(img, make([]float32, c*h*w), c, h, w)
	want := ramp(c, h, w)
	for k := range c {
		for y := range h {
			for x := range w {
				if got := img[(k*h+y)*w+x]; got != want[(k*h+y)*w+w-1-x] {
					t.Fatalf("(%d,%d,%d) = %g, want %g", k, y, x, got, want[(k*h+y)*w+w-1-x])
				}
			}
		}
	}
}

// TestCropResizesBilinearly: a crop of a linear ramp resized back is the
// ramp over the crop, stretched (bilinear interpolation is exact on linear
// functions away from the clamped border); the full crop is the identity.
func TestCropResizesBilinearly(t *testing.T) {
	const c, h, w = 1, 8, 8
	img := ramp(c, h, w)
	augmentation{cropY: 2, cropX: 2, cropH: 4, cropW: 4, contrast: 1, saturation: 1}.apply(img, make([]float32, h*w), c, h, w)
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			sy, sx := 2+(float64(y)+0.5)/2-0.5, 2+(float64(x)+0.5)/2-0.5
			if want := 10*sy + sx; math.Abs(float64(img[y*w+x])-want) > 1e-4 {
				t.Errorf("(%d,%d) = %g, want %g", y, x, img[y*w+x], want)
			}
		}
	}
	full := ramp(c, h, w)
	cropResize(ramp(c, h, w), full, c, h, w, 0, 0, h, w)
	if !slices.Equal(full, ramp(c, h, w)) {
		t.Error("a crop of the whole image changed it")
	}
}

// TestColourJitter: brightness shifts by its share of the value range,
// contrast scales around the mean, saturation moves pixels away from their
// grey; all clamped to the original range.
func TestColourJitter(t *testing.T) {
	img := []float32{0, 10, 20, 30, 0, 10, 20, 30, 0, 10, 20, 30} // 3 channels of 2x2, grey
	a := augmentation{cropH: 2, cropW: 2, contrast: 1, saturation: 1, brightness: 0.1}
	a.apply(img, make([]float32, 12), 3, 2, 2)
	if want := []float32{3, 13, 23, 30}; !slices.Equal(img[:4], want) {
		t.Errorf("brightness +0.1: %v, want %v (30+3 clamped)", img[:4], want)
	}
	img = []float32{0, 10, 20, 30}
	augmentation{cropH: 2, cropW: 2, contrast: 2, saturation: 1}.colour(img, 1, 4)
	if want := []float32{0, 5, 25, 30}; !slices.Equal(img, want) {
		t.Errorf("contrast ×2 around 15: %v, want %v", img, want)
	}
	img = []float32{10, 20, 30}
	augmentation{cropH: 1, cropW: 1, contrast: 1, saturation: 0}.colour(img, 3, 1)
	if want := []float32{20, 20, 20}; !slices.Equal(img, want) {
		t.Errorf("saturation 0: %v, want the grey %v", img, want)
	}
}

// TestMosaicQuadrantsTile: the four quadrants cover the image exactly once
// around a centre within the middle half of each side.
func TestMosaicQuadrantsTile(t *testing.T) {
	const h, w = 13, 20
	rng := rand.New(rand.NewPCG(9, 9))
	for range 200 {
		qs := mosaicQuadrants(rng, h, w)
		cover := make([]int, h*w)
		for _, q := range qs {
			for y := q.y; y < q.y+q.h; y++ {
				for x := q.x; x < q.x+q.w; x++ {
					cover[y*w+x]++
				}
			}
		}
		for i, n := range cover {
			if n != 1 {
				t.Fatalf("quadrants %+v cover pixel %d %d times, want once", qs, i, n)
			}
		}
		if cy, cx := qs[3].y, qs[3].x; cy < h/4 || cy > h/4+h/2 || cx < w/4 || cx > w/4+w/2 {
			t.Fatalf("centre (%d, %d) outside the middle half of %dx%d", cy, cx, h, w)
		}
	}
}

// TestMosaicSourceShrinks: the source rectangle lies in the frame, has the
// quadrant's shape (to a pixel) and is at least its size, so a frame's
// content is only ever shrunk into its quadrant; over many draws both a
// near-1 and a near-largest scale occur.
func TestMosaicSourceShrinks(t *testing.T) {
	const h, w = 40, 60
	rng := rand.New(rand.NewPCG(2, 2))
	q := rect{0, 0, 10, 20} // fits 3 times (60/20) across, 4 times down
	var small, large bool
	for range 500 {
		s := mosaicSource(rng, h, w, q)
		if s.y < 0 || s.x < 0 || s.y+s.h > h || s.x+s.w > w {
			t.Fatalf("source %+v outside %dx%d", s, h, w)
		}
		if s.h < q.h || s.w < q.w {
			t.Fatalf("source %+v smaller than quadrant %+v: it would enlarge", s, q)
		}
		if ratio := float64(s.w) / float64(s.h); math.Abs(ratio-2) > 2.0/float64(s.h)+1e-9 {
			t.Fatalf("source %+v has aspect %.3f, quadrant 2", s, ratio)
		}
		small = small || s.w <= 24
		large = large || s.w >= 56
	}
	if !small || !large {
		t.Errorf("scales drawn do not span 1 to 3 (small seen %v, large seen %v)", small, large)
	}
}

// TestResizeRectSameSizeCopies: a rectangle resized to a rectangle of its
// own size is copied exactly, and nothing outside the target changes.
func TestResizeRectSameSizeCopies(t *testing.T) {
	const c, h, w = 2, 6, 8
	src := ramp(c, h, w)
	dst := make([]float32, c*h*w)
	resizeRect(src, dst, c, h, w, rect{1, 2, 3, 4}, rect{2, 4, 3, 4})
	for k := range c {
		for y := range h {
			for x := range w {
				got := dst[(k*h+y)*w+x]
				want := float32(0)
				if y >= 2 && y < 5 && x >= 4 {
					want = src[(k*h+y-1)*w+x-2]
				}
				if got != want {
					t.Fatalf("channel %d (%d, %d) = %g, want %g", k, y, x, got, want)
				}
			}
		}
	}
}
