package train

import (
	"fmt"
	"slices"
)

// mapKernel is an operator that only moves elements (Slice, Transpose,
// Gather): forward gathers through an axisMap computed from the inputs,
// backward scatters the gradient back through the same map. It works on
// float and integer tensors alike.
type mapKernel struct {
	name string
	plan func(ins []*Tensor) (axisMap, error)
}

func (k mapKernel) keeps() (uint, bool) { return 0, false }

func (k mapKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	m, err := k.plan(ins)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", k.name, err)
	}
	return []*Tensor{m.apply(ins[0])}, m, nil
}

func (k mapKernel) backward(ins, _ []*Tensor, state any, gOuts []*Tensor) ([]*Tensor, error) {
	grads := make([]*Tensor, len(ins))
	if gOuts[0] != nil {
		grads[0] = state.(axisMap).adjoint(gOuts[0], ins[0].Shape)
	}
	return grads, nil
}

// transposeMap permutes axes; an empty perm reverses them.
func transposeMap(shape []int, perm []int) (axisMap, error) {
	rank := len(shape)
	if len(perm) == 0 {
		perm = make([]int, rank)
		for i := range perm {
			perm[i] = rank - 1 - i
		}
	}
	if len(perm) != rank {
		return axisMap{}, fmt.Errorf("perm %v does not match rank %d", perm, rank)
	}
	seen := make([]bool, rank)
	st := stridesOf(shape)
	out := make([]int, rank)
	strides := make([]int, rank)
	for i, p := range perm {
		if p < 0 || p >= rank || seen[p] {
			return axisMap{}, fmt.Errorf("perm %v is not a permutation of %d axes", perm, rank)
		}
		seen[p] = true
		out[i], strides[i] = shape[p], st[p]
	}
	return stridedMap(out, strides), nil
}

func transposeKernel(perm []int) kernel {
	return mapKernel{name: "transpose", plan: func(ins []*Tensor) (axisMap, error) {
		return transposeMap(ins[0].Shape, perm)
	}}
}

// sliceSpec is a Slice's starts/ends/axes/steps.
type sliceSpec struct{ starts, ends, axes, steps []int64 }

// clampSliceRange resolves one axis's start/end/step against its length
// into the first index and the count, following the ONNX rules.
func clampSliceRange(start, end, step int64, d int) (first, count int) {
	n := int64(d)
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if step > 0 {
		start = min(max(start, 0), n)
		end = min(max(end, 0), n)
		if end <= start {
			return 0, 0
		}
		return int(start), int((end - start + step - 1) / step)
	}
	start = min(max(start, -1), n-1)
	end = min(max(end, -1), n-1)
	if end >= start {
		return 0, 0
	}
	return int(start), int((start - end - step - 1) / -step)
}

func sliceMap(shape []int, s sliceSpec) (axisMap, error) {
	rank := len(shape)
	if len(s.starts) != len(s.ends) {
		return axisMap{}, fmt.Errorf("%d starts but %d ends", len(s.starts), len(s.ends))
	}
	first := make([]int, rank)
	counts := slices.Clone(shape)
	steps := make([]int, rank)
	for i := range steps {
		steps[i] = 1
	}
	for i := range s.starts {
		axis := i
		if s.axes != nil {
			if i >= len(s.axes) {
				return axisMap{}, fmt.Errorf("%d starts but %d axes", len(s.starts), len(s.axes))
			}
			axis = int(s.axes[i])
		}
		a, err := normAxis(axis, rank)
		if err != nil {
			return axisMap{}, err
		}
		step := int64(1)
		if s.steps != nil {
			if i >= len(s.steps) {
				return axisMap{}, fmt.Errorf("%d starts but %d steps", len(s.starts), len(s.steps))
			}
			step = s.steps[i]
		}
		if step == 0 {
			return axisMap{}, fmt.Errorf("step 0 on axis %d", a)
		}
		first[a], counts[a] = clampSliceRange(s.starts[i], s.ends[i], step, shape[a])
		steps[a] = int(step)
	}
	st := stridesOf(shape)
	m := axisMap{shape: counts, offsets: make([][]int, rank)}
	for a := range rank {
		offs := make([]int, counts[a])
		for i := range offs {
			offs[i] = (first[a] + i*steps[a]) * st[a]
		}
		m.offsets[a] = offs
	}
	return m, nil
}

// sliceKernel reads starts/ends/axes/steps from attributes (opset < 10,
// fixed) or from inputs 1..4 (ints; absent inputs are nil).
func sliceKernel(fixed *sliceSpec) kernel {
	return mapKernel{name: "slice", plan: func(ins []*Tensor) (axisMap, error) {
		if fixed != nil {
			return sliceMap(ins[0].Shape, *fixed)
		}
		var s sliceSpec
		for i, dst := range []*[]int64{&s.starts, &s.ends, &s.axes, &s.steps} {
			if i+1 < len(ins) && ins[i+1] != nil {
				if !ins[i+1].isInt() {
					return axisMap{}, fmt.Errorf("input %d is not an integer tensor", i+1)
				}
				*dst = ins[i+1].ints
			}
		}
		return sliceMap(ins[0].Shape, s)
	}}
}

// gatherKernel is Gather with integer indices (input 1) along axis.
func gatherKernel(axis int) kernel {
	return mapKernel{name: "gather", plan: func(ins []*Tensor) (axisMap, error) {
		x, idx := ins[0], ins[1]
		if !idx.isInt() {
			return axisMap{}, fmt.Errorf("indices are not an integer tensor")
		}
		a, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return axisMap{}, err
		}
		// Output shape: x.shape[:a] + idx.shape + x.shape[a+1:]. The map
		// walks the index axes flattened into one, which visits elements
		// in the same row-major order.
		st := stridesOf(x.Shape)
		flat := append(append(slices.Clone(x.Shape[:a]), len(idx.ints)), x.Shape[a+1:]...)
		strides := append(append(slices.Clone(st[:a]), 0), st[a+1:]...)
		m := stridedMap(flat, strides)
		offs := make([]int, len(idx.ints))
		for i, v := range idx.ints {
			j := int(v)
			if j < 0 {
				j += x.Shape[a]
			}
			if j < 0 || j >= x.Shape[a] {
				return axisMap{}, fmt.Errorf("index %d out of range for axis %d of %v", v, a, x.Shape)
			}
			offs[i] = j * st[a]
		}
		m.offsets[a] = offs
		out := append(append(slices.Clone(x.Shape[:a]), idx.Shape...), x.Shape[a+1:]...)
		m.result = out
		return m, nil
	}}
}
