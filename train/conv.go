package train

import (
	"fmt"
)

// convParams are a 2-D Conv's attributes.
type convParams struct {
	group                  int
	strideH, strideW       int
	dilH, dilW             int
	padT, padL, padB, padR int
}

// convGeom is one Conv call's sizes, derived from the input and weight shapes.
type convGeom struct {
	convParams
	n, c, h, w int // input
	m, kh, kw  int // output channels, kernel
	ho, wo     int // output spatial size
	cg, mg     int // input and output channels per group
	k          int // cg·kh·kw: rows of one group's im2col matrix
}

func (p convParams) geometry(x, w *Tensor) (convGeom, error) {
	if len(x.Shape) != 4 || len(w.Shape) != 4 {
		return convGeom{}, fmt.Errorf("conv: want 4-D input and weight, got %v and %v", x.Shape, w.Shape)
	}
	g := convGeom{convParams: p, n: x.Shape[0], c: x.Shape[1], h: x.Shape[2], w: x.Shape[3],
		m: w.Shape[0], kh: w.Shape[2], kw: w.Shape[3]}
	if p.group < 1 || g.c%p.group != 0 || g.m%p.group != 0 || w.Shape[1] != g.c/p.group {
		return convGeom{}, fmt.Errorf("conv: input %v, weight %v and group %d do not agree", x.Shape, w.Shape, p.group)
	}
	g.cg, g.mg = g.c/p.group, g.m/p.group
	g.k = g.cg * g.kh * g.kw
	g.ho = (g.h+p.padT+p.padB-p.dilH*(g.kh-1)-1)/p.strideH + 1
	g.wo = (g.w+p.padL+p.padR-p.dilW*(g.kw-1)-1)/p.strideW + 1
	if g.ho <= 0 || g.wo <= 0 {
		return convGeom{}, fmt.Errorf("conv: input %v too small for kernel %dx%d", x.Shape, g.kh, g.kw)
	}
	if err := checkSize("conv", []int{g.n, g.m, g.ho, g.wo}); err != nil {
		return convGeom{}, err
	}
	if err := checkSize("conv im2col", []int{g.k, g.ho, g.wo}); err != nil {
		return convGeom{}, err
	}
	return g, nil
}

// pointwise reports whether im2col would be the identity (1×1, stride 1,
// no padding).
func (g convGeom) pointwise() bool {
	return g.kh == 1 && g.kw == 1 && g.strideH == 1 && g.strideW == 1 &&
		g.padT == 0 && g.padL == 0 && g.padB == 0 && g.padR == 0
}

func (g convGeom) depthwise() bool { return g.cg == 1 && g.mg == 1 }

type convKernel struct {
	p convParams
	// skipInputGrad leaves out the input gradient (the input does not
	// depend on any parameter, e.g. the image).
	skipInputGrad bool
}

func (k convKernel) keeps() (uint, bool) { return 0b111, false }

func (k convKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	x, w := ins[0], ins[1]
	g, err := k.p.geometry(x, w)
	if err != nil {
		return nil, nil, err
	}
	var bias []float32
	if len(ins) > 2 && ins[2] != nil {
		if ins[2].Len() != g.m {
			return nil, nil, fmt.Errorf("conv: bias %v, want %d values", ins[2].Shape, g.m)
		}
		bias = ins[2].Data
	}
	y := NewTensor(g.n, g.m, g.ho, g.wo)
	if g.depthwise() {
		depthwiseForward(g, x.Data, w.Data, y.Data)
	} else {
		p := g.ho * g.wo
		var col []float32
		if !g.pointwise() {
			col = make([]float32, g.k*p)
		}
		for n := range g.n {
			for gi := range g.group {
				xs := x.Data[(n*g.c+gi*g.cg)*g.h*g.w:][:g.cg*g.h*g.w]
				src := xs
				if col != nil {
					im2col(g, xs, col)
					src = col
				}
				ys := y.Data[(n*g.m+gi*g.mg)*p:][:g.mg*p]
				sgemm(false, false, g.mg, p, g.k, 1, w.Data[gi*g.mg*g.k:][:g.mg*g.k], src, 0, ys)
			}
		}
	}
	if bias != nil {
		addBias(y.Data, bias, g.n, g.m, g.ho*g.wo)
	}
	return []*Tensor{y}, nil, nil
}

func addBias(y, bias []float32, n, m, p int) {
	parallelFor(n*m, 8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			b := bias[i%m]
			for j := range y[i*p : (i+1)*p] {
				y[i*p+j] += b
			}
		}
	})
}

func (k convKernel) backward(ins, outs []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	grads := make([]*Tensor, len(ins))
	gy := gOuts[0]
	if gy == nil {
		return grads, nil
	}
	x, w := ins[0], ins[1]
	g, err := k.p.geometry(x, w)
	if err != nil {
		return nil, err
	}
	p := g.ho * g.wo
	gx, gw := NewTensor(x.Shape...), NewTensor(w.Shape...)
	if len(ins) > 2 && ins[2] != nil {
		gb := NewTensor(ins[2].Shape...)
		for n := range g.n {
			for m := range g.m {
				var s float32
				for _, v := range gy.Data[(n*g.m+m)*p:][:p] {
					s += v
				}
				gb.Data[m] += s
			}
		}
		grads[2] = gb
	}
	if g.depthwise() {
		depthwiseBackward(g, x.Data, w.Data, gy.Data, gx.Data, gw.Data)
	} else {
		col := make([]float32, g.k*p)
		for n := range g.n {
			for gi := range g.group {
				xs := x.Data[(n*g.c+gi*g.cg)*g.h*g.w:][:g.cg*g.h*g.w]
				gxs := gx.Data[(n*g.c+gi*g.cg)*g.h*g.w:][:g.cg*g.h*g.w]
				gys := gy.Data[(n*g.m+gi*g.mg)*p:][:g.mg*p]
				ws := w.Data[gi*g.mg*g.k:][:g.mg*g.k]
				gws := gw.Data[gi*g.mg*g.k:][:g.mg*g.k]
				src := xs
				if !g.pointwise() {
					im2col(g, xs, col)
					src = col
				}
				sgemm(false, true, g.mg, g.k, p, 1, gys, src, 1, gws)
				if k.skipInputGrad {
					continue
				}
				if g.pointwise() {
					sgemm(true, false, g.k, p, g.mg, 1, ws, gys, 1, gxs)
				} else {
					sgemm(true, false, g.k, p, g.mg, 1, ws, gys, 0, col)
					col2imAdd(g, col, gxs)
				}
			}
		}
	}
	grads[1] = gw
	if !k.skipInputGrad {
		grads[0] = gx
	}
	return grads, nil
}

// im2col lays one group's input (cg×h×w) out as the k×(ho·wo) matrix whose
// column j holds the receptive field of output pixel j (zeros for padding).
func im2col(g convGeom, x, col []float32) {
	p := g.ho * g.wo
	parallelFor(g.k, 4, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			c, ky, kx := r/(g.kh*g.kw), (r/g.kw)%g.kh, r%g.kw
			row := col[r*p : (r+1)*p]
			plane := x[c*g.h*g.w : (c+1)*g.h*g.w]
			for oy := range g.ho {
				iy := oy*g.strideH - g.padT + ky*g.dilH
				out := row[oy*g.wo : (oy+1)*g.wo]
				if iy < 0 || iy >= g.h {
					clear(out)
					continue
				}
				line := plane[iy*g.w : (iy+1)*g.w]
				ix := -g.padL + kx*g.dilW
				for ox := range out {
					if ix >= 0 && ix < g.w {
						out[ox] = line[ix]
					} else {
						out[ox] = 0
					}
					ix += g.strideW
				}
			}
		}
	})
}

// col2imAdd is im2col's adjoint: it adds each column entry back onto the
// input pixel it was read from.
func col2imAdd(g convGeom, col, x []float32) {
	p := g.ho * g.wo
	// Rows of one input channel only touch that channel: split by channel.
	rowsPerC := g.kh * g.kw
	parallelFor(g.cg, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			plane := x[c*g.h*g.w : (c+1)*g.h*g.w]
			for r := c * rowsPerC; r < (c+1)*rowsPerC; r++ {
				ky, kx := (r/g.kw)%g.kh, r%g.kw
				row := col[r*p : (r+1)*p]
				for oy := range g.ho {
					iy := oy*g.strideH - g.padT + ky*g.dilH
					if iy < 0 || iy >= g.h {
						continue
					}
					line := plane[iy*g.w : (iy+1)*g.w]
					ix := -g.padL + kx*g.dilW
					for _, v := range row[oy*g.wo : (oy+1)*g.wo] {
						if ix >= 0 && ix < g.w {
							line[ix] += v
						}
						ix += g.strideW
					}
				}
			}
		}
	})
}
