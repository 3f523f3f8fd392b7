package distill

import (
	"math"
	"math/rand/v2"
)

// Augmentation ranges. Crops keep at least cropMin of each side; colour
// changes stay within the image's own value range.
const (
	cropMin       = 0.7
	brightnessMax = 0.12 // shift, as a share of the image's value range
	contrastMax   = 0.25 // factor 1 ± contrastMax around the mean
	saturationMax = 0.3  // factor 1 ± saturationMax towards the per-pixel grey
)

// augmentation is one random change of an input image (NCHW, one image).
type augmentation struct {
	flip                 bool
	cropY, cropX         int // top-left of the crop
	cropH, cropW         int // crop size; the full image means no crop
	brightness, contrast float32
	saturation           float32
}

// drawAugmentation picks an augmentation for an image of h×w from rng.
func drawAugmentation(rng *rand.Rand, h, w int) augmentation {
	a := augmentation{flip: rng.IntN(2) == 1, cropH: h, cropW: w, contrast: 1, saturation: 1}
	if s := cropMin + (1-cropMin)*rng.Float64(); s < 1 {
		a.cropH = max(1, int(math.Round(s*float64(h))))
		a.cropW = max(1, int(math.Round(s*float64(w))))
		a.cropY = rng.IntN(h - a.cropH + 1)
		a.cropX = rng.IntN(w - a.cropW + 1)
	}
	a.brightness = float32(brightnessMax * (2*rng.Float64() - 1))
	a.contrast = float32(1 + contrastMax*(2*rng.Float64()-1))
	a.saturation = float32(1 + saturationMax*(2*rng.Float64()-1))
	return a
}

// apply changes img (c×h×w floats) in place; tmp is scratch of the same
// length.
func (a augmentation) apply(img, tmp []float32, c, h, w int) {
	if a.cropH != h || a.cropW != w {
		copy(tmp, img)
		cropResize(tmp, img, c, h, w, a.cropY, a.cropX, a.cropH, a.cropW)
	}
	if a.flip {
		flipH(img, c, h, w)
	}
	if a.brightness != 0 || a.contrast != 1 || a.saturation != 1 {
		a.colour(img, c, h*w)
	}
}

// flipH mirrors every row.
func flipH(img []float32, c, h, w int) {
	for r := range c * h {
		row := img[r*w : (r+1)*w]
		for i, j := 0, w-1; i < j; i, j = i+1, j-1 {
			row[i], row[j] = row[j], row[i]
		}
	}
}

// rect is a rectangle of an h×w plane.
type rect struct{ y, x, h, w int }

// cropResize writes into dst the crop (y0, x0, ch×cw) of src resized
// bilinearly back to h×w (pixel centres aligned, as half_pixel does).
func cropResize(src, dst []float32, c, h, w, y0, x0, ch, cw int) {
	resizeRect(src, dst, c, h, w, rect{y0, x0, ch, cw}, rect{0, 0, h, w})
}

// resizeRect writes the rectangle from of src, resized bilinearly, into
// the rectangle to of dst; both are c×h×w images.
func resizeRect(src, dst []float32, c, h, w int, from, to rect) {
	sy, sx := float64(from.h)/float64(to.h), float64(from.w)/float64(to.w)
	for y := range to.h {
		fy := (float64(y)+0.5)*sy - 0.5
		fy = min(max(fy, 0), float64(from.h-1))
		iy := int(fy)
		iy1 := min(iy+1, from.h-1)
		dy := float32(fy - float64(iy))
		for x := range to.w {
			fx := (float64(x)+0.5)*sx - 0.5
			fx = min(max(fx, 0), float64(from.w-1))
			ix := int(fx)
			ix1 := min(ix+1, from.w-1)
			dx := float32(fx - float64(ix))
			for k := range c {
				plane := src[k*h*w:]
				r0, r1 := (from.y+iy)*w+from.x, (from.y+iy1)*w+from.x
				top := plane[r0+ix]*(1-dx) + plane[r0+ix1]*dx
				bot := plane[r1+ix]*(1-dx) + plane[r1+ix1]*dx
				dst[k*h*w+(to.y+y)*w+to.x+x] = top*(1-dy) + bot*dy
			}
		}
	}
}

// mosaicQuadrants splits an h×w image at a random centre within the
// middle half of each side into four rectangles (top left, top right,
// bottom left, bottom right), as YOLO's mosaic augmentation does.
func mosaicQuadrants(rng *rand.Rand, h, w int) [4]rect {
	cy := h/4 + rng.IntN(h/2+1)
	cx := w/4 + rng.IntN(w/2+1)
	return [4]rect{{0, 0, cy, cx}, {0, cx, cy, w - cx}, {cy, 0, h - cy, cx}, {cy, cx, h - cy, w - cx}}
}

// mosaicSource picks the part of a whole h×w frame that fills quadrant q:
// the quadrant's shape scaled by a random factor between 1 and the largest
// that fits (so the frame's content shrinks into the quadrant by up to that
// factor), at a random place.
func mosaicSource(rng *rand.Rand, h, w int, q rect) rect {
	maxScale := min(float64(h)/float64(q.h), float64(w)/float64(q.w))
	s := 1 + (maxScale-1)*rng.Float64()
	sh := min(h, max(1, int(math.Round(s*float64(q.h)))))
	sw := min(w, max(1, int(math.Round(s*float64(q.w)))))
	return rect{rng.IntN(h - sh + 1), rng.IntN(w - sw + 1), sh, sw}
}

// colour applies brightness, contrast and (for three channels) saturation,
// clamped to the image's value range before the change.
func (a augmentation) colour(img []float32, c, plane int) {
	lo, hi := img[0], img[0]
	var sum float64
	for _, v := range img {
		lo, hi = min(lo, v), max(hi, v)
		sum += float64(v)
	}
	mean := float32(sum / float64(len(img)))
	if c == 3 && a.saturation != 1 {
		for i := range plane {
			grey := (img[i] + img[plane+i] + img[2*plane+i]) / 3
			for k := range 3 {
				v := &img[k*plane+i]
				*v = grey + a.saturation*(*v-grey)
			}
		}
	}
	shift := a.brightness * (hi - lo)
	for i, v := range img {
		img[i] = min(max(mean+a.contrast*(v-mean)+shift, lo), hi)
	}
}
