package train

import (
	"fmt"
	"math"
)

func sigmoid32(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

func mapUnary(x *Tensor, f func(float32) float32) *Tensor {
	y := &Tensor{Shape: x.Shape, Data: make([]float32, len(x.Data))}
	parallelFor(len(x.Data), 1<<14, func(lo, hi int) {
		for i, v := range x.Data[lo:hi] {
			y.Data[lo+i] = f(v)
		}
	})
	return y
}

// mapGrad returns a tensor shaped like g with element i = g[i]·d(i).
func mapGrad(g *Tensor, d func(i int) float32) *Tensor {
	out := &Tensor{Shape: g.Shape, Data: make([]float32, len(g.Data))}
	parallelFor(len(g.Data), 1<<14, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out.Data[i] = g.Data[i] * d(i)
		}
	})
	return out
}

func sigmoidKernel() kernel {
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) { return mapUnary(x, sigmoid32), nil },
		bwd: func(_, y, g *Tensor) *Tensor {
			return mapGrad(g, func(i int) float32 { s := y.Data[i]; return s * (1 - s) })
		},
		keepOut: true,
	}
}

// siluKernel is the fused x·sigmoid(x) the exported graphs spell as
// Sigmoid then Mul; fused, it keeps only x for backward.
func siluKernel() kernel {
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) {
			return mapUnary(x, func(v float32) float32 { return v * sigmoid32(v) }), nil
		},
		bwd: func(x, _, g *Tensor) *Tensor {
			return mapGrad(g, func(i int) float32 {
				v := x.Data[i]
				s := sigmoid32(v)
				return s * (1 + v*(1-s))
			})
		},
		keepIn: true,
	}
}

func reluKernel() kernel {
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) {
			return mapUnary(x, func(v float32) float32 { return max(v, 0) }), nil
		},
		bwd: func(_, y, g *Tensor) *Tensor {
			return mapGrad(g, func(i int) float32 {
				if y.Data[i] > 0 {
					return 1
				}
				return 0
			})
		},
		keepOut: true,
	}
}

func leakyReluKernel(alpha float32) kernel {
	return unary{
		fwd: func(x *Tensor) (*Tensor, error) {
			return mapUnary(x, func(v float32) float32 {
				if v < 0 {
					return alpha * v
				}
				return v
			}), nil
		},
		bwd: func(x, _, g *Tensor) *Tensor {
			return mapGrad(g, func(i int) float32 {
				if x.Data[i] < 0 {
					return alpha
				}
				return 1
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
