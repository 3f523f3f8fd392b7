package detection

import "fmt"

// fastestV2Strides are Yolo-FastestV2's two head strides, finest first.
var fastestV2Strides = [...]int{16, 32}

// DefaultFastestV2Anchors are the anchors (w, h in input pixels) of the
// COCO-trained Yolo-FastestV2: three per stride, stride 16 first.
var DefaultFastestV2Anchors = []float32{
	12.64, 19.39, 37.88, 51.48, 55.71, 138.31,
	126.91, 78.23, 131.57, 214.55, 279.92, 258.87,
}

func fastestV2Cells(inW, inH int) int {
	n := 0
	for _, s := range fastestV2Strides {
		n += (inW / s) * (inH / s)
	}
	return n
}

// fastestV2Decoder reads Yolo-FastestV2's [N, 15+nc] output (batch
// dimension optional): one row per grid cell of strides 16 then 32
// (row-major, x fastest); per row 3 anchors × (tx,ty,tw,th), then 3
// objectness values, then nc class probabilities shared by the anchors, all
// already activated. cx = (2tx − 0.5 + gx)·s, w = (2tw)²·anchor_w.
type fastestV2Decoder struct {
	nc, n   int
	levels  [len(fastestV2Strides)]yoloxLevel
	anchors [12]float32
}

func newFastestV2Decoder(nc, inW, inH int, anchors []float32) (*fastestV2Decoder, error) {
	if len(anchors) != 12 {
		return nil, fmt.Errorf("fastestv2 anchors: %d values, want 12 (3 w,h pairs for strides 16 and 32)", len(anchors))
	}
	d := &fastestV2Decoder{nc: nc, n: fastestV2Cells(inW, inH)}
	for i, s := range fastestV2Strides {
		d.levels[i] = yoloxLevel{stride: float32(s), gridW: inW / s, gridH: inH / s}
	}
	copy(d.anchors[:], anchors)
	return d, nil
}

func (d *fastestV2Decoder) NumClasses() int { return d.nc }

func (d *fastestV2Decoder) Decode(out []float32, minScore float32, dst []Detection) []Detection {
	stride := 15 + d.nc
	checkLen(FormatFastestV2, out, stride*d.n)
	i := 0
	for l, lv := range d.levels {
		s := lv.stride
		for gy := range lv.gridH {
			for gx := range lv.gridW {
				row := out[i*stride : (i+1)*stride]
				i++
				var cls int
				var best float32 = -1
				for a := 0; a < 3; a++ {
					obj := row[12+a]
					if !(obj >= minScore) {
						continue
					}
					if best < 0 {
						cls, best = argmax(row[15:])
					}
					score := obj * best
					if !(score >= minScore) {
						continue
					}
					t := row[4*a : 4*a+4]
					cx := (t[0]*2 - 0.5 + float32(gx)) * s
					cy := (t[1]*2 - 0.5 + float32(gy)) * s
					tw, th := t[2]*2, t[3]*2
					w := tw * tw * d.anchors[l*6+2*a]
					h := th * th * d.anchors[l*6+2*a+1]
					dst = appendCandidate(dst, cls, score, cxcywh(cx, cy, w, h))
				}
			}
		}
	}
	return dst
}
