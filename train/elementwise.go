package train

import (
	"fmt"
	"slices"
)

// binaryOp is an elementwise operator of two inputs with ONNX (numpy)
// broadcasting.
type binaryOp int

const (
	opAdd binaryOp = iota
	opSub
	opMul
	opDiv
)

var binaryOpNames = [...]string{"Add", "Sub", "Mul", "Div"}

func (op binaryOp) String() string { return binaryOpNames[op] }

func (op binaryOp) apply(a, b float32) float32 {
	switch op {
	case opAdd:
		return a + b
	case opSub:
		return a - b
	case opMul:
		return a * b
	default:
		return a / b
	}
}

// broadcastShape is the numpy broadcast of a and b.
func broadcastShape(a, b []int) ([]int, error) {
	rank := max(len(a), len(b))
	out := make([]int, rank)
	for i := range rank {
		da, db := 1, 1
		if j := i - (rank - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (rank - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// broadcastMap reads a tensor of shape src as if it had shape out.
func broadcastMap(src, out []int) axisMap {
	st := stridesOf(src)
	strides := make([]int, len(out))
	off := len(out) - len(src)
	for i := range out {
		if j := i - off; j >= 0 && src[j] != 1 {
			strides[i] = st[j]
		}
	}
	return stridedMap(out, strides)
}

// expand returns x's data broadcast to shape out (x's own slice when the
// shapes already agree).
func expand(x *Tensor, out []int) []float32 {
	if slices.Equal(x.Shape, out) {
		return x.Data
	}
	d := make([]float32, numElements(out))
	broadcastMap(x.Shape, out).gather(d, x.Data)
	return d
}

// reduceTo sums g (of shape out) down to shape src, the adjoint of expand.
func reduceTo(g []float32, out, src []int) *Tensor {
	if slices.Equal(out, src) {
		return &Tensor{Shape: src, Data: g}
	}
	r := NewTensor(src...)
	broadcastMap(src, out).scatterAdd(r.Data, g)
	return r
}

type binaryKernel struct{ op binaryOp }

func (k binaryKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	a, b := ins[0], ins[1]
	shape, err := broadcastShape(a.Shape, b.Shape)
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %w", k.op, err)
	}
	if a.isInt() || b.isInt() {
		return k.forwardInts(a, b, shape)
	}
	ad, bd := expand(a, shape), expand(b, shape)
	y := NewTensor(shape...)
	op := k.op
	parallelFor(len(y.Data), 1<<14, func(lo, hi int) {
		switch op {
		case opAdd:
			for i := lo; i < hi; i++ {
				y.Data[i] = ad[i] + bd[i]
			}
		case opMul:
			for i := lo; i < hi; i++ {
				y.Data[i] = ad[i] * bd[i]
			}
		default:
			for i := lo; i < hi; i++ {
				y.Data[i] = op.apply(ad[i], bd[i])
			}
		}
	})
	return []*Tensor{y}, nil, nil
}

func (k binaryKernel) backward(ins, outs []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	g := gOuts[0]
	if g == nil {
		return make([]*Tensor, 2), nil
	}
	a, b := ins[0], ins[1]
	shape := outs[0].Shape
	ga := make([]float32, len(g.Data))
	gb := make([]float32, len(g.Data))
	switch k.op {
	case opAdd:
		copy(ga, g.Data)
		copy(gb, g.Data)
	case opSub:
		for i, v := range g.Data {
			ga[i], gb[i] = v, -v
		}
	case opMul:
		ad, bd := expand(a, shape), expand(b, shape)
		for i, v := range g.Data {
			ga[i], gb[i] = v*bd[i], v*ad[i]
		}
	case opDiv:
		ad, bd := expand(a, shape), expand(b, shape)
		for i, v := range g.Data {
			ga[i] = v / bd[i]
			gb[i] = -v * ad[i] / (bd[i] * bd[i])
		}
	}
	return []*Tensor{reduceTo(ga, shape, a.Shape), reduceTo(gb, shape, b.Shape)}, nil
}

func (k binaryKernel) keeps() (uint, bool) {
	if k.op == opMul || k.op == opDiv {
		return 0b11, false
	}
	return 0, false
}

// forwardInts is the arithmetic on integer (shape) tensors; division
// truncates like ONNX Runtime's integer Div.
func (k binaryKernel) forwardInts(a, b *Tensor, shape []int) ([]*Tensor, any, error) {
	if !a.isInt() || !b.isInt() {
		return nil, nil, fmt.Errorf("%v: cannot mix integer and float inputs", k.op)
	}
	n := numElements(shape)
	av, bv := make([]int64, n), make([]int64, n)
	gatherInto(broadcastMap(a.Shape, shape), av, a.ints)
	gatherInto(broadcastMap(b.Shape, shape), bv, b.ints)
	for i := range av {
		switch k.op {
		case opAdd:
			av[i] += bv[i]
		case opSub:
			av[i] -= bv[i]
		case opMul:
			av[i] *= bv[i]
		default:
			if bv[i] == 0 {
				return nil, nil, fmt.Errorf("Div: integer division by zero")
			}
			av[i] /= bv[i]
		}
	}
	return []*Tensor{intTensor(av, shape...)}, nil, nil
}
