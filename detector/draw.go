package detector

import (
	"cmp"
	"fmt"
	"image"
	"image/color"
	"slices"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
)

// palette gives each class a stable, distinguishable colour (BGR order is
// handled by gocv: these are RGBA).
var palette = []color.RGBA{
	{255, 56, 56, 255}, {255, 157, 151, 255}, {255, 112, 31, 255}, {255, 178, 29, 255},
	{207, 210, 49, 255}, {72, 249, 10, 255}, {146, 204, 23, 255}, {61, 219, 134, 255},
	{26, 147, 52, 255}, {0, 212, 187, 255}, {44, 153, 168, 255}, {0, 194, 255, 255},
	{52, 69, 147, 255}, {100, 115, 255, 255}, {0, 24, 236, 255}, {132, 56, 255, 255},
	{82, 0, 133, 255}, {203, 56, 255, 255}, {255, 149, 200, 255}, {255, 55, 199, 255},
}

// labelPad is the margin around a label's text inside its background.
const labelPad = 2

// Draw draws each detection's box and "label score" on img in place. An
// empty img is left alone; any class id gets a colour. Detections are drawn
// in ascending score, so the highest score is on top, and each label is
// placed where it does not cover the label of a higher score: above its
// box, else just inside its top edge, below its box, inside its bottom
// edge, or further down inside the box.
func Draw(img *gocv.Mat, dets []detection.Detection) {
	if img.Empty() || len(dets) == 0 {
		return
	}
	thick, font := drawStyle(img.Cols(), img.Rows())
	texts := make([]string, len(dets))
	sizes := make([]image.Point, len(dets))
	for i, d := range dets {
		texts[i] = fmt.Sprintf("%s %.2f", d.Label, d.Score)
		sizes[i] = gocv.GetTextSize(texts[i], gocv.FontHersheySimplex, font, 1)
	}
	labels := placeLabels(dets, sizes, image.Pt(img.Cols(), img.Rows()))
	order := byScore(dets)
	slices.Reverse(order) // ascending: the highest score is drawn last
	colour := func(d detection.Detection) color.RGBA {
		n := len(palette)
		return palette[(d.ClassID%n+n)%n]
	}
	for _, i := range order {
		gocv.Rectangle(img, boxRect(dets[i].Box), colour(dets[i]), thick)
	}
	for _, i := range order { // labels over every box line
		r := labels[i]
		gocv.Rectangle(img, r, colour(dets[i]), -1)
		gocv.PutText(img, texts[i], image.Pt(r.Min.X+labelPad, r.Max.Y-labelPad-1), gocv.FontHersheySimplex, font,
			color.RGBA{255, 255, 255, 255}, 1)
	}
}

// drawStyle is the box line thickness and the label font scale for an
// image of cols x rows: one pixel per 300 of the shorter side, at least
// one, and a font that grows with the lines.
func drawStyle(cols, rows int) (thick int, font float64) {
	thick = max(1, min(cols, rows)/300)
	return thick, 0.4 + float64(thick)*0.15
}

func boxRect(b detection.Box) image.Rectangle {
	return image.Rect(int(b.X1), int(b.Y1), int(b.X2), int(b.Y2))
}

// byScore is the indices of dets from the highest score down (ties in
// their order).
func byScore(dets []detection.Detection) []int {
	order := make([]int, len(dets))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(dets[b].Score, dets[a].Score) })
	return order
}

// placeLabels chooses the rectangle of each detection's label (text of
// sizes[i] plus padding) inside an image of size bounds: from the highest
// score down, the first of its candidate places that overlaps no label
// placed before (a higher score); when every place overlaps, the one that
// overlaps least.
func placeLabels(dets []detection.Detection, sizes []image.Point, bounds image.Point) []image.Rectangle {
	out := make([]image.Rectangle, len(dets))
	var placed []image.Rectangle
	for _, i := range byScore(dets) {
		box := boxRect(dets[i].Box)
		w, h := sizes[i].X+2*labelPad, sizes[i].Y+2*labelPad
		at := func(y int) image.Rectangle { return clampRect(image.Rect(box.Min.X, y, box.Min.X+w, y+h), bounds) }
		cands := []image.Rectangle{at(box.Min.Y - h), at(box.Min.Y), at(box.Max.Y), at(box.Max.Y - h)}
		for y := box.Min.Y + h; y+h <= box.Max.Y-h; y += h { // down the inside of the box
			cands = append(cands, at(y))
		}
		best, bestOverlap := cands[0], -1
		for _, c := range cands {
			o := overlap(c, placed)
			if bestOverlap < 0 || o < bestOverlap {
				best, bestOverlap = c, o
			}
			if o == 0 {
				break
			}
		}
		out[i] = best
		placed = append(placed, best)
	}
	return out
}

// clampRect moves r (not larger than bounds) inside 0..bounds.
func clampRect(r image.Rectangle, bounds image.Point) image.Rectangle {
	dx := max(0, -r.Min.X) - max(0, r.Max.X-bounds.X)
	dy := max(0, -r.Min.Y) - max(0, r.Max.Y-bounds.Y)
	if r.Min.X+dx < 0 { // wider than the image: keep its left edge in
		dx = -r.Min.X
	}
	if r.Min.Y+dy < 0 {
		dy = -r.Min.Y
	}
	return r.Add(image.Pt(dx, dy))
}

// overlap is the area r shares with the rectangles of placed.
func overlap(r image.Rectangle, placed []image.Rectangle) int {
	a := 0
	for _, p := range placed {
		in := r.Intersect(p)
		a += in.Dx() * in.Dy()
	}
	return a
}
