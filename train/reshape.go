package train

import (
	"fmt"
	"slices"
)

// relabelKernel gives its first input a new shape without moving data
// (Reshape, Flatten, Squeeze, Unsqueeze); the output shares the input's
// data, the gradient shares the output gradient's.
type relabelKernel struct {
	name  string
	shape func(ins []*Tensor) ([]int, error)
}

func (k relabelKernel) keeps() (uint, bool) { return 0, false }

func (k relabelKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	x := ins[0]
	shape, err := k.shape(ins)
	if err != nil {
		return nil, nil, fmt.Errorf("%s of %v: %w", k.name, x.Shape, err)
	}
	if numElements(shape) != x.Len() {
		return nil, nil, fmt.Errorf("%s: cannot give %v (%d elements) the shape %v", k.name, x.Shape, x.Len(), shape)
	}
	return []*Tensor{{Shape: shape, Data: x.Data, ints: x.ints}}, nil, nil
}

func (k relabelKernel) backward(ins, _ []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	grads := make([]*Tensor, len(ins))
	if g := gOuts[0]; g != nil {
		grads[0] = &Tensor{Shape: slices.Clone(ins[0].Shape), Data: g.Data}
	}
	return grads, nil
}

// reshapeTarget resolves an ONNX Reshape target (0 copies the input's
// dimension unless allowZero, -1 is inferred).
func reshapeTarget(x []int, target []int64, allowZero bool) ([]int, error) {
	out := make([]int, len(target))
	infer := -1
	known := 1
	for i, v := range target {
		switch {
		case v == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("target %v has more than one -1", target)
			}
			infer = i
			continue
		case v == 0 && !allowZero:
			if i >= len(x) {
				return nil, fmt.Errorf("target %v copies dimension %d the input lacks", target, i)
			}
			out[i] = x[i]
		case v < 0:
			return nil, fmt.Errorf("target %v has negative dimension %d", target, v)
		default:
			out[i] = int(v)
		}
		known *= out[i]
	}
	if infer >= 0 {
		n := numElements(x)
		if known == 0 || n%known != 0 {
			return nil, fmt.Errorf("cannot infer -1 in %v for %d elements", target, n)
		}
		out[infer] = n / known
	}
	return out, nil
}

func reshapeKernel(allowZero bool) kernel {
	return relabelKernel{name: "reshape", shape: func(ins []*Tensor) ([]int, error) {
		if len(ins) < 2 || ins[1] == nil || !ins[1].isInt() {
			return nil, fmt.Errorf("shape input is not an integer tensor")
		}
		return reshapeTarget(ins[0].Shape, ins[1].ints, allowZero)
	}}
}

func flattenKernel(axis int) kernel {
	return relabelKernel{name: "flatten", shape: func(ins []*Tensor) ([]int, error) {
		x := ins[0].Shape
		a := axis
		if a < 0 {
			a += len(x)
		}
		if a < 0 || a > len(x) {
			return nil, fmt.Errorf("axis %d out of range", axis)
		}
		return []int{numElements(x[:a]), numElements(x[a:])}, nil
	}}
}

// axesArg is a list of axes from an attribute (fixed) or from input 1.
func axesArg(fixed []int64, ins []*Tensor) ([]int64, error) {
	if fixed != nil {
		return fixed, nil
	}
	if len(ins) < 2 || ins[1] == nil {
		return nil, nil
	}
	if !ins[1].isInt() {
		return nil, fmt.Errorf("axes input is not an integer tensor")
	}
	return ins[1].ints, nil
}

func unsqueezeKernel(fixed []int64) kernel {
	return relabelKernel{name: "unsqueeze", shape: func(ins []*Tensor) ([]int, error) {
		axes, err := axesArg(fixed, ins)
		if err != nil {
			return nil, err
		}
		x := ins[0].Shape
		rank := len(x) + len(axes)
		unit := make([]bool, rank)
		for _, a := range axes {
			n, err := normAxis(int(a), rank)
			if err != nil || unit[n] {
				return nil, fmt.Errorf("bad axes %v", axes)
			}
			unit[n] = true
		}
		out := make([]int, 0, rank)
		j := 0
		for i := range rank {
			if unit[i] {
				out = append(out, 1)
			} else {
				out = append(out, x[j])
				j++
			}
		}
		return out, nil
	}}
}

func squeezeKernel(fixed []int64) kernel {
	return relabelKernel{name: "squeeze", shape: func(ins []*Tensor) ([]int, error) {
		axes, err := axesArg(fixed, ins)
		if err != nil {
			return nil, err
		}
		x := ins[0].Shape
		drop := make([]bool, len(x))
		for _, a := range axes {
			n, err := normAxis(int(a), len(x))
			if err != nil || x[n] != 1 {
				return nil, fmt.Errorf("cannot squeeze axis %d", a)
			}
			drop[n] = true
		}
		var out []int
		for i, d := range x {
			if (len(axes) == 0 && d == 1) || drop[i] {
				continue
			}
			out = append(out, d)
		}
		return out, nil
	}}
}

// blocks splits shape around axis into outer (product of the leading
// dimensions) and inner (product of the trailing ones).
func blocks(shape []int, axis int) (outer, inner int) {
	return numElements(shape[:axis]), numElements(shape[axis+1:])
}

type concatKernel struct{ axis int }

func (k concatKernel) keeps() (uint, bool) { return 0, false }

func (k concatKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	first := ins[0]
	a, err := normAxis(k.axis, len(first.Shape))
	if err != nil {
		return nil, nil, fmt.Errorf("concat: %w", err)
	}
	shape := slices.Clone(first.Shape)
	shape[a] = 0
	isInt := first.isInt()
	for i, t := range ins {
		if len(t.Shape) != len(shape) || t.isInt() != isInt {
			return nil, nil, fmt.Errorf("concat: input %d %v does not match input 0 %v", i, t.Shape, first.Shape)
		}
		for d := range shape {
			if d != a && t.Shape[d] != first.Shape[d] {
				return nil, nil, fmt.Errorf("concat: input %d %v does not match input 0 %v off axis %d", i, t.Shape, first.Shape, a)
			}
		}
		shape[a] += t.Shape[a]
	}
	outer, inner := blocks(shape, a)
	row := shape[a] * inner
	if isInt {
		v := make([]int64, numElements(shape))
		off := 0
		for _, t := range ins {
			w := t.Shape[a] * inner
			for o := range outer {
				copy(v[o*row+off:], t.ints[o*w:(o+1)*w])
			}
			off += w
		}
		return []*Tensor{intTensor(v, shape...)}, nil, nil
	}
	y := NewTensor(shape...)
	off := 0
	for _, t := range ins {
		w := t.Shape[a] * inner
		for o := range outer {
			copy(y.Data[o*row+off:], t.Data[o*w:(o+1)*w])
		}
		off += w
	}
	return []*Tensor{y}, nil, nil
}

func (k concatKernel) backward(ins, outs []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	grads := make([]*Tensor, len(ins))
	g := gOuts[0]
	if g == nil {
		return grads, nil
	}
	a, _ := normAxis(k.axis, len(g.Shape))
	outer, inner := blocks(g.Shape, a)
	row := g.Shape[a] * inner
	off := 0
	for i, t := range ins {
		w := t.Shape[a] * inner
		gi := NewTensor(t.Shape...)
		for o := range outer {
			copy(gi.Data[o*w:(o+1)*w], g.Data[o*row+off:])
		}
		grads[i] = gi
		off += w
	}
	return grads, nil
}

// splitKernel splits input 0 along axis into parts of the given sizes
// (fixed from the attribute, or from input 1, or equal parts).
type splitKernel struct {
	axis    int
	fixed   []int64
	outputs int
}

func (k splitKernel) keeps() (uint, bool) { return 0, false }

func (k splitKernel) sizes(ins []*Tensor) ([]int, int, error) {
	x := ins[0]
	a, err := normAxis(k.axis, len(x.Shape))
	if err != nil {
		return nil, 0, fmt.Errorf("split: %w", err)
	}
	split := k.fixed
	if split == nil && len(ins) > 1 && ins[1] != nil {
		split = ins[1].ints
	}
	sizes := make([]int, k.outputs)
	if split == nil {
		if x.Shape[a]%k.outputs != 0 {
			return nil, 0, fmt.Errorf("split: axis %d of %v does not split into %d equal parts", a, x.Shape, k.outputs)
		}
		for i := range sizes {
			sizes[i] = x.Shape[a] / k.outputs
		}
		return sizes, a, nil
	}
	if len(split) != k.outputs {
		return nil, 0, fmt.Errorf("split: %d sizes for %d outputs", len(split), k.outputs)
	}
	total := 0
	for i, s := range split {
		sizes[i] = int(s)
		total += int(s)
	}
	if total != x.Shape[a] {
		return nil, 0, fmt.Errorf("split: sizes %v do not add up to axis %d of %v", split, a, x.Shape)
	}
	return sizes, a, nil
}

func (k splitKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	x := ins[0]
	if x.isInt() {
		return nil, nil, fmt.Errorf("split: integer input is not supported")
	}
	sizes, a, err := k.sizes(ins)
	if err != nil {
		return nil, nil, err
	}
	outer, inner := blocks(x.Shape, a)
	row := x.Shape[a] * inner
	outs := make([]*Tensor, len(sizes))
	off := 0
	for i, s := range sizes {
		shape := slices.Clone(x.Shape)
		shape[a] = s
		t := NewTensor(shape...)
		w := s * inner
		for o := range outer {
			copy(t.Data[o*w:(o+1)*w], x.Data[o*row+off:])
		}
		outs[i] = t
		off += w
	}
	return outs, nil, nil
}

func (k splitKernel) backward(ins, outs []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	x := ins[0]
	a, _ := normAxis(k.axis, len(x.Shape))
	outer, inner := blocks(x.Shape, a)
	row := x.Shape[a] * inner
	gx := NewTensor(x.Shape...)
	off := 0
	for i, out := range outs {
		w := out.Shape[a] * inner
		if g := gOuts[i]; g != nil {
			for o := range outer {
				copy(gx.Data[o*row+off:o*row+off+w], g.Data[o*w:(o+1)*w])
			}
		}
		off += w
	}
	grads := make([]*Tensor, len(ins))
	grads[0] = gx
	return grads, nil
}
