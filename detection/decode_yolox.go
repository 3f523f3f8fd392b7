package detection

import "math"

// yoloxStrides are the YOLOX (and YOLOv5/v8) head strides, finest first.
var yoloxStrides = [...]int{8, 16, 32}

// gridCells is the number of grid cells over all strides for an inW x inH
// input: Σ (inW/s)*(inH/s) for s in 8, 16, 32.
func gridCells(inW, inH int) int {
	n := 0
	for _, s := range yoloxStrides {
		n += (inW / s) * (inH / s)
	}
	return n
}

// yoloxLevel is one stride level of the YOLOX grid.
type yoloxLevel struct {
	stride       float32
	gridW, gridH int
}

// yoloxDecoder reads the raw YOLOX grid [1, N, 5+nc]: levels of stride
// 8, 16, 32 in order, row-major within a level (gx fastest).
type yoloxDecoder struct{ yoloxGrid }

// yoloxGrid is what both YOLOX layouts know of the model: its class count,
// its cell count and its levels.
type yoloxGrid struct {
	nc, n  int
	levels [len(yoloxStrides)]yoloxLevel
}

func newYOLOXGrid(nc, inW, inH int) yoloxGrid {
	g := yoloxGrid{nc: nc, n: gridCells(inW, inH)}
	for i, s := range yoloxStrides {
		g.levels[i] = yoloxLevel{stride: float32(s), gridW: inW / s, gridH: inH / s}
	}
	return g
}

func (g *yoloxGrid) NumClasses() int { return g.nc }

func newYOLOXDecoder(nc, inW, inH int) *yoloxDecoder {
	return &yoloxDecoder{newYOLOXGrid(nc, inW, inH)}
}

func (d *yoloxDecoder) Decode(out []float32, minScore float32, dst []Detection) []Detection {
	stride := 5 + d.nc
	checkLen(FormatYOLOX, out, stride*d.n)
	i := 0 // row index
	for _, lv := range d.levels {
		s := lv.stride
		for gy := range lv.gridH {
			for gx := range lv.gridW {
				row := out[i*stride : (i+1)*stride]
				i++
				obj := row[4]
				if !(obj >= minScore) {
					continue
				}
				cls, best := argmax(row[5:])
				score := obj * best
				if !(score >= minScore) {
					continue
				}
				cx := (row[0] + float32(gx)) * s
				cy := (row[1] + float32(gy)) * s
				w := float32(math.Exp(float64(row[2]))) * s
				h := float32(math.Exp(float64(row[3]))) * s
				dst = appendCandidate(dst, cls, score, cxcywh(cx, cy, w, h))
			}
		}
	}
	return dst
}
