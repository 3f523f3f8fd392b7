package detector

import (
	"fmt"
	"image"
	"image/color"

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

// Draw draws each detection's box and "label score" on img in place. An
// empty img is left alone; any class id gets a colour.
func Draw(img *gocv.Mat, dets []detection.Detection) {
	if img.Empty() {
		return
	}
	thick := max(1, min(img.Cols(), img.Rows())/300)
	font := 0.4 + float64(thick)*0.15
	for _, d := range dets {
		n := len(palette)
		c := palette[(d.ClassID%n+n)%n]
		r := image.Rect(int(d.Box.X1), int(d.Box.Y1), int(d.Box.X2), int(d.Box.Y2))
		gocv.Rectangle(img, r, c, thick)
		text := fmt.Sprintf("%s %.2f", d.Label, d.Score)
		size := gocv.GetTextSize(text, gocv.FontHersheySimplex, font, 1)
		top := r.Min.Y - size.Y - 4
		if top < 0 {
			top = r.Min.Y
		}
		bg := image.Rect(r.Min.X, top, r.Min.X+size.X+4, top+size.Y+4)
		gocv.Rectangle(img, bg, c, -1)
		gocv.PutText(img, text, image.Pt(r.Min.X+2, top+size.Y+1), gocv.FontHersheySimplex, font,
			color.RGBA{255, 255, 255, 255}, 1)
	}
}
