package onnx

import "slices"

// sliceRules are the operators that take parts of a tensor.
var sliceRules = map[string]shapeRule{
	"Slice": (*Shapes).slice, "Split": (*Shapes).split, "Gather": (*Shapes).gather,
}

// sliceArgs are Slice's starts, ends, axes and steps: attributes before
// opset 10, constant inputs after. Axes and steps are nil when absent.
func (s *Shapes) sliceArgs(n *node) (starts, ends, axes, steps []int64, ok bool) {
	if n.opset < 10 || Attr(n.NodeProto, "starts") != nil {
		a := n.NodeProto
		return Attr(a, "starts").GetInts(), Attr(a, "ends").GetInts(), Attr(a, "axes").GetInts(), nil, true
	}
	args := make([][]int64, 4)
	for i := range args {
		name := n.in[1+i]
		if name == "" && i >= 2 {
			continue // axes and steps are optional
		}
		if args[i], ok = s.ints[name]; !ok {
			return nil, nil, nil, nil, false
		}
	}
	return args[0], args[1], args[2], args[3], true
}

// sliceRange is the part of one axis a Slice keeps: n elements from start
// in steps of step.
type sliceRange struct{ start, step, n int64 }

// clampSlice resolves a Slice's start and end on an axis of length d into
// the range it keeps.
func clampSlice(st, en, step, d int64) sliceRange {
	if st < 0 {
		st += d
	}
	if en < 0 {
		en += d
	}
	var cnt int64
	if step > 0 {
		st, en = max(0, min(st, d)), max(0, min(en, d))
		if en > st {
			cnt = (en - st + step - 1) / step
		}
	} else {
		st, en = max(-1, min(st, d-1)), max(-1, min(en, d-1))
		if st > en {
			cnt = (st - en - step - 1) / -step
		}
	}
	return sliceRange{st, step, cnt}
}

// slice sets the output shape and, on 1-D integer tensors, the values.
func (s *Shapes) slice(n *node) {
	x := n.x
	if x == nil {
		return
	}
	starts, ends, axes, steps, ok := s.sliceArgs(n)
	if !ok || len(ends) != len(starts) {
		return
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		steps = slices.Repeat([]int64{1}, len(starts))
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return
	}
	y := slices.Clone(x)
	ranges := map[int64]sliceRange{}
	for i, a := range axes {
		a, ok := normAxis(a, len(x))
		if !ok || steps[i] == 0 {
			return
		}
		r := clampSlice(starts[i], ends[i], steps[i], x[a])
		y[a], ranges[a] = r.n, r
	}
	s.dims[n.out[0]] = y
	v, ok := s.ints[n.in[0]]
	if !ok || len(x) != 1 {
		return
	}
	r, ok := ranges[0]
	if !ok {
		s.ints[n.out[0]] = v
		return
	}
	out := make([]int64, 0, r.n)
	for k := int64(0); k < r.n; k++ {
		out = append(out, v[r.start+k*r.step])
	}
	s.ints[n.out[0]] = out
}

// split cuts axis into the given parts (an attribute before opset 13, an
// input after), or into equal parts, the last one smaller, when none are
// given.
func (s *Shapes) split(n *node) {
	x := n.x
	if x == nil {
		return
	}
	axis, ok := normAxis(AttrInt(n.NodeProto, "axis", 0), len(x))
	if !ok {
		return
	}
	parts, ok := s.intsArg(n, "split", 1)
	if !ok || len(parts) == 0 {
		k := int64(len(n.out))
		part := (x[axis] + k - 1) / k
		parts = slices.Repeat([]int64{part}, int(k))
		parts[k-1] = x[axis] - (k-1)*part
	}
	if len(parts) != len(n.out) {
		return
	}
	for i, o := range n.out {
		y := slices.Clone(x)
		y[axis] = parts[i]
		s.set(o, y)
	}
}

// gather replaces axis by the indices' shape; gathering constant indices
// from a 1-D integer tensor gives values too.
func (s *Shapes) gather(n *node) {
	x, idx := n.x, s.dims[n.in[1]]
	if x == nil || idx == nil {
		return
	}
	axis, ok := normAxis(AttrInt(n.NodeProto, "axis", 0), len(x))
	if !ok {
		return
	}
	s.set(n.out[0], known(slices.Concat(x[:axis], idx, x[axis+1:])))
	data, ok1 := s.ints[n.in[0]]
	iv, ok2 := s.ints[n.in[1]]
	if !ok1 || !ok2 || len(x) != 1 {
		return
	}
	v := make([]int64, 0, len(iv))
	for _, k := range iv {
		k, ok := normAxis(k, len(data))
		if !ok {
			return
		}
		v = append(v, data[k])
	}
	s.ints[n.out[0]] = v
}
