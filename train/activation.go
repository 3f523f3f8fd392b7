package train

import (
	"fmt"
	"math"
)

func sigmoid32(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// pointwise returns a tensor shaped like like whose elements fn fills,
// range by range, on all CPUs.
func pointwise(like *Tensor, fn func(out []float32, lo, hi int)) *Tensor {
	out := &Tensor{Shape: like.Shape, Data: make([]float32, len(like.Data))}
	parallelFor(len(out.Data), 1<<14, func(lo, hi int) { fn(out.Data, lo, hi) })
	return out
}

func sigmoidKernel() kernel {
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) {
			return pointwise(x, func(y []float32, lo, hi int) {
				for i, v := range x.Data[lo:hi] {
					y[lo+i] = sigmoid32(v)
				}
			}), nil
		},
		bwd: func(_, y, g *Tensor) *Tensor {
			return pointwise(g, func(gx []float32, lo, hi int) {
				for i := lo; i < hi; i++ {
					s := y.Data[i]
					gx[i] = g.Data[i] * s * (1 - s)
				}
			})
		},
		keepOut: true,
	}
}

// siluKernel is the fused x·sigmoid(x) the exported graphs spell as
// Sigmoid then Mul; fused, it keeps only x for backward.
func siluKernel() kernel {
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) {
			return pointwise(x, func(y []float32, lo, hi int) {
				for i, v := range x.Data[lo:hi] {
					y[lo+i] = v * sigmoid32(v)
				}
			}), nil
		},
		bwd: func(x, _, g *Tensor) *Tensor {
			return pointwise(g, func(gx []float32, lo, hi int) {
				for i := lo; i < hi; i++ {
					v := x.Data[i]
					s := sigmoid32(v)
					gx[i] = g.Data[i] * s * (1 + v*(1-s))
				}
			})
		},
		keepIn: true,
	}
}

func reluKernel() kernel {
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) {
			return pointwise(x, func(y []float32, lo, hi int) {
				for i, v := range x.Data[lo:hi] {
					y[lo+i] = max(v, 0)
				}
			}), nil
		},
		bwd: func(_, y, g *Tensor) *Tensor {
			return pointwise(g, func(gx []float32, lo, hi int) {
				for i := lo; i < hi; i++ {
					if y.Data[i] > 0 {
						gx[i] = g.Data[i]
					}
				}
			})
		},
		keepOut: true,
	}
}

func leakyReluKernel(alpha float32) kernel {
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) {
			return pointwise(x, func(y []float32, lo, hi int) {
				for i, v := range x.Data[lo:hi] {
					if v < 0 {
						v *= alpha
					}
					y[lo+i] = v
				}
			}), nil
		},
		bwd: func(x, _, g *Tensor) *Tensor {
			return pointwise(g, func(gx []float32, lo, hi int) {
				for i := lo; i < hi; i++ {
					if x.Data[i] < 0 {
						gx[i] = alpha * g.Data[i]
					} else {
						gx[i] = g.Data[i]
					}
				}
			})
		},
		keepIn: true,
	}
}

// softmaxKernel normalises over the axis; legacy (opset < 13) coerces the
// input to 2-D at axis and normalises over everything from axis on.
func softmaxKernel(axis int, legacy bool) kernel {
	var groups func(shape []int) (outer, n, inner int, err error)
	groups = func(shape []int) (int, int, int, error) {
		a, err := normAxis(axis, len(shape))
		if err != nil {
			return 0, 0, 0, fmt.Errorf("softmax: %w", err)
		}
		outer := numElements(shape[:a])
		if legacy {
			return outer, numElements(shape[a:]), 1, nil
		}
		return outer, shape[a], numElements(shape[a+1:]), nil
	}
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) {
			outer, n, inner, err := groups(x.Shape)
			if err != nil {
				return nil, err
			}
			y := &Tensor{Shape: x.Shape, Data: make([]float32, len(x.Data))}
			for o := range outer {
				for in := range inner {
					base := o*n*inner + in
					m := float32(math.Inf(-1))
					for k := range n {
						m = max(m, x.Data[base+k*inner])
					}
					var sum float64
					for k := range n {
						e := math.Exp(float64(x.Data[base+k*inner] - m))
						y.Data[base+k*inner] = float32(e)
						sum += e
					}
					for k := range n {
						y.Data[base+k*inner] = float32(float64(y.Data[base+k*inner]) / sum)
					}
				}
			}
			return y, nil
		},
		bwd: func(_, y, g *Tensor) *Tensor {
			outer, n, inner, _ := groups(y.Shape)
			gx := &Tensor{Shape: y.Shape, Data: make([]float32, len(y.Data))}
			for o := range outer {
				for in := range inner {
					base := o*n*inner + in
					var dot float64
					for k := range n {
						dot += float64(g.Data[base+k*inner]) * float64(y.Data[base+k*inner])
					}
					for k := range n {
						i := base + k*inner
						gx.Data[i] = y.Data[i] * (g.Data[i] - float32(dot))
					}
				}
			}
			return gx
		},
		keepOut: true,
	}
}
