package onnx

import (
	"math"
	"slices"
)

// tensorRules are the operators that rearrange, resize or reduce a tensor.
var tensorRules = map[string]shapeRule{
	"Concat": (*Shapes).concat, "Resize": (*Shapes).resize, "Upsample": (*Shapes).resize,
	"Pad": (*Shapes).pad, "Reshape": (*Shapes).reshape, "Transpose": (*Shapes).transpose,
	"Flatten": (*Shapes).flatten, "Unsqueeze": (*Shapes).unsqueeze, "Squeeze": (*Shapes).squeeze,
	"ReduceMean": (*Shapes).reduce, "ReduceMax": (*Shapes).reduce,
	"ReduceMin": (*Shapes).reduce, "ReduceSum": (*Shapes).reduce,
}

// concat adds up the inputs along axis; 1-D integer inputs concatenate
// their values too.
func (s *Shapes) concat(n *node) {
	var y, vals []int64
	var axis int64
	allInts := true
	for _, name := range n.GetInput() {
		d := s.dims[name]
		if d == nil {
			return
		}
		if y == nil {
			var ok bool
			if axis, ok = normAxis(AttrInt(n.NodeProto, "axis", 0), len(d)); !ok {
				return
			}
			y = slices.Clone(d)
			y[axis] = 0
		}
		if len(d) != len(y) {
			return
		}
		y[axis] += d[axis]
		v, ok := s.ints[name]
		allInts = allInts && ok
		vals = append(vals, v...)
	}
	s.set(n.out[0], y)
	if allInts && len(y) == 1 {
		s.ints[n.out[0]] = vals
	}
}

// resize scales each axis by constant scales (Upsample's attribute before
// opset 9, its input after; Resize's input 1 in opset 10, input 2 later)
// or sets constant sizes (Resize's input 3).
func (s *Shapes) resize(n *node) {
	x := n.x
	if x == nil {
		return
	}
	var scales []float32
	var sizes []int64
	switch {
	case n.op == "Upsample" && n.nIn == 1:
		scales = Attr(n.NodeProto, "scales").GetFloats()
	case n.op == "Upsample" || n.nIn == 2:
		scales = s.floats[n.in[1]]
	case n.in[3] != "":
		sizes = s.ints[n.in[3]]
	default:
		scales = s.floats[n.in[2]]
	}
	switch {
	case len(sizes) == len(x):
		s.set(n.out[0], slices.Clone(sizes))
	case len(scales) == len(x):
		y := make([]int64, len(x))
		for i := range x {
			y[i] = int64(math.Floor(float64(x[i]) * float64(scales[i])))
		}
		s.set(n.out[0], y)
	}
}

// pad adds constant pads (begin values of every axis, then end values);
// Pad with axes (input 3) is not handled.
func (s *Shapes) pad(n *node) {
	pads, ok := s.intsArg(n, "pads", 1)
	if n.x == nil || !ok || len(pads) != 2*len(n.x) || n.in[3] != "" {
		return
	}
	y := known(n.x)
	for i := range y {
		y[i] += pads[i] + pads[len(n.x)+i]
	}
	s.set(n.out[0], y)
}

// reshape follows a constant target shape: 0 copies the input's dimension
// (unless allowzero), one -1 takes what is left.
func (s *Shapes) reshape(n *node) {
	target, ok := s.ints[n.in[1]]
	if !ok || n.x == nil {
		return
	}
	y := reshapeTarget(n.x, target, AttrInt(n.NodeProto, "allowzero", 0) != 0)
	s.set(n.out[0], y)
	if y != nil {
		s.passInts(n.in[0], n.out[0])
	}
}

// reshapeTarget resolves Reshape's target shape for input shape x; nil
// when it is invalid or does not keep the element count.
func reshapeTarget(x, target []int64, allowZero bool) []int64 {
	y := known(target)
	infer := -1
	fixed := int64(1)
	for i, d := range y {
		switch {
		case d == 0 && !allowZero:
			if i >= len(x) {
				return nil
			}
			y[i] = x[i]
		case d == -1:
			if infer >= 0 {
				return nil
			}
			infer = i
			continue
		case d < 0:
			return nil
		}
		fixed *= y[i]
	}
	if infer >= 0 {
		if fixed == 0 || prod(x)%fixed != 0 {
			return nil
		}
		y[infer] = prod(x) / fixed
	}
	if prod(y) != prod(x) {
		return nil
	}
	return y
}

// transpose permutes the axes by perm, reversing them by default.
func (s *Shapes) transpose(n *node) {
	x := n.x
	if x == nil {
		return
	}
	perm := Attr(n.NodeProto, "perm").GetInts()
	if perm == nil {
		for i := len(x) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != len(x) {
		return
	}
	y := make([]int64, len(x))
	for i, p := range perm {
		if p < 0 || p >= int64(len(x)) {
			return
		}
		y[i] = x[p]
	}
	s.set(n.out[0], y)
}

// flatten folds the axes before axis into one, and those from it into
// another.
func (s *Shapes) flatten(n *node) {
	x := n.x
	if x == nil {
		return
	}
	axis := AttrInt(n.NodeProto, "axis", 1)
	if axis < 0 {
		axis += int64(len(x))
	}
	if axis < 0 || axis > int64(len(x)) {
		return
	}
	s.set(n.out[0], []int64{prod(x[:axis]), prod(x[axis:])})
}

// unsqueeze inserts axes of 1 (an attribute before opset 13, an input
// after) and keeps integer values. Repeated or out-of-range axes leave the
// output unknown.
func (s *Shapes) unsqueeze(n *node) {
	axes, ok := s.intsArg(n, "axes", 1)
	if n.x == nil || !ok {
		return
	}
	r := int64(len(n.x) + len(axes))
	add := axisSet(axes, int(r))
	if len(add) != len(axes) || slices.ContainsFunc(axes, func(a int64) bool { return a < -r || a >= r }) {
		return
	}
	y := make([]int64, 0, r)
	for i, j := int64(0), 0; i < r; i++ {
		if add[i] {
			y = append(y, 1)
		} else {
			y = append(y, n.x[j])
			j++
		}
	}
	s.set(n.out[0], y)
	s.passInts(n.in[0], n.out[0])
}

// squeeze drops the given axes, or every axis of 1 when none is given, and
// keeps integer values.
func (s *Shapes) squeeze(n *node) {
	if n.x == nil {
		return
	}
	axes, _ := s.intsArg(n, "axes", 1)
	drop := axisSet(axes, len(n.x))
	y := []int64{}
	for i, d := range n.x {
		if (len(axes) == 0 && d == 1) || drop[int64(i)] {
			continue
		}
		y = append(y, d)
	}
	s.set(n.out[0], y)
	s.passInts(n.in[0], n.out[0])
}

// reduce reduces the given axes (all of them when the list is empty) to 1,
// or drops them without keepdims. The axes must be known: an attribute, or
// a constant input from opset 18 on.
func (s *Shapes) reduce(n *node) {
	if n.x == nil {
		return
	}
	axes, ok := s.intsArg(n, "axes", 1)
	if !ok {
		return
	}
	keep := AttrInt(n.NodeProto, "keepdims", 1) != 0
	red := axisSet(axes, len(n.x))
	y := []int64{}
	for i, d := range n.x {
		switch {
		case !red[int64(i)] && len(axes) > 0:
			y = append(y, d)
		case keep:
			y = append(y, 1)
		}
	}
	s.set(n.out[0], y)
}

// axisSet is the set of axes of a rank-dimensional tensor, negative ones
// counted from the end.
func axisSet(axes []int64, rank int) map[int64]bool {
	set := make(map[int64]bool, len(axes))
	for _, a := range axes {
		if a < 0 {
			a += int64(rank)
		}
		set[a] = true
	}
	return set
}
