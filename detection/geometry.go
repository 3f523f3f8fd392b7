package detection

import (
	"fmt"
	"math"
)

// Geometry maps between frame pixels and model-input pixels for one frame
// size. It is a plain value: compute it once per frame size and reuse it.
//
// The forward mapping is input = frame*Scale + Pad; ToFrame undoes it.
type Geometry struct {
	Mode               ResizeMode
	SrcW, SrcH         int     // frame size
	DstW, DstH         int     // model input size
	ResizedW, ResizedH int     // size of the resized frame inside the input
	PadLeft, PadTop    int     // where the resized frame starts inside the input
	ScaleX, ScaleY     float32 // input = frame*Scale + Pad (equal for letterbox modes)
}

// NewGeometry computes how a srcW x srcH frame is fitted into a dstW x dstH
// model input with the given resize mode.
//
//   - ResizeLetterbox follows Ultralytics' LetterBox: r = min(dstW/srcW,
//     dstH/srcH), resized size round(src*r) (round half to even, like
//     Python's round), centred with PadLeft = round(dw-0.1) where dw is half
//     the spare width (likewise for the top).
//   - ResizeLetterboxTopLeft follows official YOLOX preproc: the same r,
//     resized size int(src*r) (truncated, as YOLOX does), no padding on the
//     left or top.
//   - ResizeStretch scales each axis independently to fill the input.
//
// For both letterbox modes ScaleX = ScaleY = r, so ToFrame computes
// (x - pad) / r exactly as the reference implementations do. The resized
// size is never less than 1 pixel.
func NewGeometry(srcW, srcH, dstW, dstH int, mode ResizeMode) (Geometry, error) {
	if srcW <= 0 || srcH <= 0 {
		return Geometry{}, fmt.Errorf("frame size %dx%d: width and height must be positive", srcW, srcH)
	}
	if dstW <= 0 || dstH <= 0 {
		return Geometry{}, fmt.Errorf("model input size %dx%d: width and height must be positive", dstW, dstH)
	}
	g := Geometry{Mode: mode, SrcW: srcW, SrcH: srcH, DstW: dstW, DstH: dstH}
	switch mode {
	case ResizeStretch:
		g.ResizedW, g.ResizedH = dstW, dstH
		g.ScaleX = float32(float64(dstW) / float64(srcW))
		g.ScaleY = float32(float64(dstH) / float64(srcH))
		return g, nil
	case ResizeLetterbox, ResizeLetterboxTopLeft:
		// float64 throughout, as the Python references compute it.
		r := min(float64(dstW)/float64(srcW), float64(dstH)/float64(srcH))
		g.ScaleX, g.ScaleY = float32(r), float32(r)
		if mode == ResizeLetterbox {
			g.ResizedW = clampSize(int(math.RoundToEven(float64(srcW)*r)), dstW)
			g.ResizedH = clampSize(int(math.RoundToEven(float64(srcH)*r)), dstH)
			// dw is a whole or half number, so the ±0.1 nudge never lands on
			// a tie and math.Round agrees with Python's round.
			dw := float64(dstW-g.ResizedW) / 2
			dh := float64(dstH-g.ResizedH) / 2
			g.PadLeft = int(math.Round(dw - 0.1))
			g.PadTop = int(math.Round(dh - 0.1))
		} else {
			g.ResizedW = clampSize(int(float64(srcW)*r), dstW)
			g.ResizedH = clampSize(int(float64(srcH)*r), dstH)
		}
		return g, nil
	default:
		return Geometry{}, fmt.Errorf("resize mode %q: want %q, %q or %q",
			mode, ResizeLetterbox, ResizeLetterboxTopLeft, ResizeStretch)
	}
}

// clampSize keeps a resized side within [1, limit].
func clampSize(v, limit int) int {
	return max(1, min(v, limit))
}

// ToFrame maps a box from model-input pixels to frame pixels: it removes the
// padding, undoes the scale, then clips the box to [0,SrcW]x[0,SrcH].
func (g Geometry) ToFrame(b Box) Box {
	px, py := float32(g.PadLeft), float32(g.PadTop)
	sw, sh := float32(g.SrcW), float32(g.SrcH)
	return Box{
		X1: clamp32((b.X1-px)/g.ScaleX, sw),
		Y1: clamp32((b.Y1-py)/g.ScaleY, sh),
		X2: clamp32((b.X2-px)/g.ScaleX, sw),
		Y2: clamp32((b.Y2-py)/g.ScaleY, sh),
	}
}

// ToInput maps a box from frame pixels to model-input pixels (the forward
// mapping, input = frame*Scale + Pad). It does not clip.
func (g Geometry) ToInput(b Box) Box {
	px, py := float32(g.PadLeft), float32(g.PadTop)
	return Box{
		X1: b.X1*g.ScaleX + px,
		Y1: b.Y1*g.ScaleY + py,
		X2: b.X2*g.ScaleX + px,
		Y2: b.Y2*g.ScaleY + py,
	}
}

// clamp32 clips v to [0, hi]; NaN becomes 0.
func clamp32(v, hi float32) float32 {
	if !(v > 0) { // also catches NaN
		return 0
	}
	if v > hi {
		return hi
	}
	return v
}
