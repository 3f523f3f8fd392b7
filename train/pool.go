package train

import "fmt"

// poolParams are a 2-D MaxPool's attributes.
type poolParams struct {
	kh, kw                 int
	strideH, strideW       int
	dilH, dilW             int
	padT, padL, padB, padR int
	ceil                   bool
}

func poolOut(in, padA, padB, k, dil, stride int, ceil bool) int {
	span := in + padA + padB - dil*(k-1) - 1
	if span < 0 {
		return 0
	}
	out := span/stride + 1
	if ceil && span%stride != 0 {
		out++
		// The last window must start inside the input or the left padding.
		if (out-1)*stride >= in+padA {
			out--
		}
	}
	return out
}

type maxPoolKernel struct{ p poolParams }

func (k maxPoolKernel) keeps() (uint, bool) { return 0, false }

// forward records, per output element, the flat input index it took its
// maximum from (-1 when the window lies in the padding only).
func (k maxPoolKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	x := ins[0]
	if len(x.Shape) != 4 {
		return nil, nil, fmt.Errorf("maxpool: want a 4-D input, got %v", x.Shape)
	}
	p := k.p
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	ho := poolOut(h, p.padT, p.padB, p.kh, p.dilH, p.strideH, p.ceil)
	wo := poolOut(w, p.padL, p.padR, p.kw, p.dilW, p.strideW, p.ceil)
	if ho <= 0 || wo <= 0 {
		return nil, nil, fmt.Errorf("maxpool: input %v too small for kernel %dx%d", x.Shape, p.kh, p.kw)
	}
	if err := checkSize("maxpool", []int{n, c, ho, wo}); err != nil {
		return nil, nil, err
	}
	y := NewTensor(n, c, ho, wo)
	arg := make([]int32, len(y.Data))
	parallelFor(n*c, 1, func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			base := nc * h * w
			for oy := range ho {
				for ox := range wo {
					best, bi := float32(0), -1
					for ky := range p.kh {
						iy := oy*p.strideH - p.padT + ky*p.dilH
						if iy < 0 || iy >= h {
							continue
						}
						for kx := range p.kw {
							ix := ox*p.strideW - p.padL + kx*p.dilW
							if ix < 0 || ix >= w {
								continue
							}
							if v := x.Data[base+iy*w+ix]; bi < 0 || v > best {
								best, bi = v, base+iy*w+ix
							}
						}
					}
					o := (nc*ho+oy)*wo + ox
					y.Data[o], arg[o] = best, int32(bi)
				}
			}
		}
	})
	return []*Tensor{y}, arg, nil
}

func (k maxPoolKernel) backward(ins, _ []*Tensor, state any, gOuts []*Tensor) ([]*Tensor, error) {
	if gOuts[0] == nil {
		return []*Tensor{nil}, nil
	}
	arg := state.([]int32)
	gx := NewTensor(ins[0].Shape...)
	for o, i := range arg {
		if i >= 0 {
			gx.Data[i] += gOuts[0].Data[o]
		}
	}
	return []*Tensor{gx}, nil
}
