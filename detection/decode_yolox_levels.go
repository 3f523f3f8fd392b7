package detection

import "math"

// yoloxLevelsDecoder reads a YOLOX head exported with a Reshape where a
// Transpose belonged (the bubbliiiing/yolox-pytorch ONNX exports): the
// output is declared [1, N, 5+nc] like FormatYOLOX, but its memory is one
// channel-major block per stride level (8, 16, 32), each [5+nc][gridH*gridW]
// with cells row-major (gx fastest). Channels 0..3 are the raw tx, ty, tw,
// th; 4 and 5.. are the objectness and class logits, turned into
// probabilities here with a sigmoid.
type yoloxLevelsDecoder struct{ yoloxGrid }

func newYOLOXLevelsDecoder(nc, inW, inH int) *yoloxLevelsDecoder {
	return &yoloxLevelsDecoder{newYOLOXGrid(nc, inW, inH)}
}

func (d *yoloxLevelsDecoder) Decode(out []float32, minScore float32, dst []Detection) []Detection {
	ch := 5 + d.nc
	checkLen(FormatYOLOXLevels, out, ch*d.n)
	base := 0 // start of the current level's block
	for _, lv := range d.levels {
		s := lv.stride
		cells := lv.gridW * lv.gridH
		block := out[base : base+ch*cells]
		base += ch * cells
		objs := block[4*cells : 5*cells]
		for p, objLogit := range objs {
			obj := sigmoid(objLogit)
			if !(obj >= minScore) {
				continue // the score obj*cls is at most obj
			}
			// The sigmoid is monotonic: the best logit is the best class.
			cls, best := 0, block[5*cells+p]
			for c := 1; c < d.nc; c++ {
				if v := block[(5+c)*cells+p]; v > best {
					cls, best = c, v
				}
			}
			score := obj * sigmoid(best)
			if !(score >= minScore) {
				continue
			}
			gx, gy := p%lv.gridW, p/lv.gridW
			cx := (block[p] + float32(gx)) * s
			cy := (block[cells+p] + float32(gy)) * s
			w := float32(math.Exp(float64(block[2*cells+p]))) * s
			h := float32(math.Exp(float64(block[3*cells+p]))) * s
			dst = appendCandidate(dst, cls, score, cxcywh(cx, cy, w, h))
		}
	}
	return dst
}

// sigmoid is the logistic function 1/(1+e^-x): 0 at -Inf, 1 at +Inf, NaN
// for NaN.
func sigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}
