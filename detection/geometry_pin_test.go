package detection

import (
	"fmt"
	"testing"
)

// ultralyticsPads is the padding rule of Ultralytics' LetterBox (and of
// ../shared/models/yolov8n_*.md), written out independently of
// NewGeometry: the spare width and height are halved and split as
// left = round(dw-0.1), right = round(dw+0.1), so an odd spare puts the
// extra pixel on the right (bottom). Python's round is half-to-even, but
// dw±0.1 is never a tie.
func ultralyticsPads(dstW, dstH, resizedW, resizedH int) (left, right, top, bottom int) {
	dw := float64(dstW-resizedW) / 2
	dh := float64(dstH-resizedH) / 2
	pyRound := func(v float64) int { // only called with non-ties
		return int(v + 0.5)
	}
	return pyRound(dw - 0.1), pyRound(dw + 0.1), pyRound(dh - 0.1), pyRound(dh + 0.1)
}

// TestLetterboxPadsPinned pins the exact letterbox padding for odd and even
// spare widths and heights, by hand and against the Ultralytics rule.
func TestLetterboxPadsPinned(t *testing.T) {
	tests := []struct {
		srcW, srcH, dstW, dstH int
		resizedW, resizedH     int
		left, top              int
	}{
		// Odd spare width: r = 0.32, 565*0.32 = 180.8 -> 181, dw = 69.5:
		// 69 on the left, 70 on the right.
		{565, 1000, 320, 320, 181, 320, 69, 0},
		// The same, transposed: 69 above, 70 below.
		{1000, 565, 320, 320, 320, 181, 0, 69},
		// One spare column: dw = 0.5, all of it on the right.
		{319, 320, 320, 320, 319, 320, 0, 0},
		// One spare row: all of it at the bottom.
		{320, 319, 320, 320, 320, 319, 0, 0},
		// Three spare columns: dw = 1.5, 1 left and 2 right.
		{317, 320, 320, 320, 317, 320, 1, 0},
		// No scaling, 159 spare rows: 79 above, 80 below.
		{640, 481, 640, 640, 640, 481, 0, 79},
		// Even spares: 810x1080 -> 240x320, dw = 40 exactly.
		{810, 1080, 320, 320, 240, 320, 40, 0},
		// dog.jpg into 320: 320x240, dh = 40.
		{768, 576, 320, 320, 320, 240, 0, 40},
		// Non-square input, odd spare width: r = min(640/700, 384/500) = 0.768,
		// 700*0.768 = 537.6 -> 538, dw = 51 exactly; 500*0.768 = 384.
		{700, 500, 640, 384, 538, 384, 51, 0},
		// Non-square input, odd spare width: r = 384/500 = 0.768,
		// 699*0.768 = 536.832 -> 537, dw = 51.5: 51 left, 52 right.
		{699, 500, 640, 384, 537, 384, 51, 0},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%dx%d_to_%dx%d", tt.srcW, tt.srcH, tt.dstW, tt.dstH)
		t.Run(name, func(t *testing.T) {
			g, err := NewGeometry(tt.srcW, tt.srcH, tt.dstW, tt.dstH, ResizeLetterbox)
			if err != nil {
				t.Fatal(err)
			}
			if g.ResizedW != tt.resizedW || g.ResizedH != tt.resizedH || g.PadLeft != tt.left || g.PadTop != tt.top {
				t.Errorf("resized %dx%d pad left %d top %d, want %dx%d left %d top %d",
					g.ResizedW, g.ResizedH, g.PadLeft, g.PadTop, tt.resizedW, tt.resizedH, tt.left, tt.top)
			}
			left, right, top, bottom := ultralyticsPads(tt.dstW, tt.dstH, g.ResizedW, g.ResizedH)
			if g.PadLeft != left || g.PadTop != top {
				t.Errorf("pad left %d top %d, Ultralytics' rule gives %d and %d", g.PadLeft, g.PadTop, left, top)
			}
			if left+g.ResizedW+right != tt.dstW || top+g.ResizedH+bottom != tt.dstH {
				t.Errorf("pads %d+%d+%d x %d+%d+%d do not fill %dx%d", left, g.ResizedW, right, top, g.ResizedH, bottom, tt.dstW, tt.dstH)
			}
		})
	}
}

// TestLetterboxMappingExact maps boxes from model-input pixels to frame
// pixels for odd spares, with the expected frame coordinates worked out by
// hand, to within 1e-3 px: a padding off by one pixel moves them by 1/r.
func TestLetterboxMappingExact(t *testing.T) {
	tests := []struct {
		srcW, srcH, dstW, dstH int
		in, want               Box
	}{
		// 565x1000 -> 320: r = 0.32, PadLeft 69. x = (x_in-69)/0.32,
		// y = y_in/0.32. The resized image spans x_in 69..249.8 (180.8 px
		// of frame width times r).
		{565, 1000, 320, 320, Box{69, 0, 249.8, 320}, Box{0, 0, 565, 1000}},
		{565, 1000, 320, 320, Box{101, 16, 133, 48}, Box{100, 50, 200, 150}},
		// 1000x565 -> 320: PadTop 69.
		{1000, 565, 320, 320, Box{16, 101, 48, 133}, Box{50, 100, 150, 200}},
		// 319x320 -> 320: r = 1, no offset at all (the spare column is on the right).
		{319, 320, 320, 320, Box{10.25, 20.5, 300.75, 310}, Box{10.25, 20.5, 300.75, 310}},
		// 317x320 -> 320: r = 1, PadLeft 1.
		{317, 320, 320, 320, Box{11, 20, 301, 310}, Box{10, 20, 300, 310}},
		// 640x481 -> 640: r = 1, PadTop 79.
		{640, 481, 640, 640, Box{0, 79, 640, 560}, Box{0, 0, 640, 481}},
		// 699x500 -> 640x384: r = 0.768, PadLeft 51. x = (x_in-51)/0.768:
		// 127.8 -> 100, 204.6 -> 200; y = y_in/0.768: 76.8 -> 100, 192 -> 250.
		{699, 500, 640, 384, Box{127.8, 76.8, 204.6, 192}, Box{100, 100, 200, 250}},
	}
	for _, tt := range tests {
		g, err := NewGeometry(tt.srcW, tt.srcH, tt.dstW, tt.dstH, ResizeLetterbox)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%dx%d->%dx%d %v", tt.srcW, tt.srcH, tt.dstW, tt.dstH, tt.in)
		got := g.ToFrame(tt.in)
		assertBox(t, name+" to frame", got, tt.want, 1e-3)
		// And back: the forward mapping lands on the model box again.
		assertBox(t, name+" round trip", g.ToInput(got), tt.in, 1e-3)
	}
}
