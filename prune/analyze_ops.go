package prune

import (
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// visitResize accepts Resize and Upsample whose scales are constant and 1
// on the channel axis.
func (a *analyzer) visitResize(i int) {
	n := a.nodes[i]
	op := n.GetOpType()
	in := n.GetInput()
	x := a.layouts[in[0]]
	if x == nil || slices.ContainsFunc(in[1:], func(s string) bool { return a.layouts[s] != nil }) {
		a.blockInputs(i, fmt.Sprintf("%s %s reads channels through a parameter input", op, a.label(i)))
		return
	}
	var scales []float32
	switch {
	case op == "Resize" && len(in) > 3 && in[3] != "":
		a.blockInputs(i, fmt.Sprintf("Resize %s sets output sizes", a.label(i)))
		return
	case op == "Resize" && len(in) == 2: // opset 10: X, scales
		scales = a.constFloats(in[1])
	case op == "Resize" && len(in) > 2:
		scales = a.constFloats(in[2])
	case op == "Upsample" && len(in) > 1:
		scales = a.constFloats(in[1])
	case op == "Upsample":
		if at := findAttr(n, "scales"); at != nil {
			scales = at.GetFloats()
		}
	}
	if len(scales) < 2 || scales[1] != 1 {
		a.blockInputs(i, fmt.Sprintf("%s %s has no constant scales of 1 on the channel axis", op, a.label(i)))
		return
	}
	a.passThrough(i, x)
}

// visitPad accepts a Pad with constant pads that leave the channel axis
// alone.
func (a *analyzer) visitPad(i int) {
	n := a.nodes[i]
	in := n.GetInput()
	x := a.layouts[in[0]]
	if x == nil || slices.ContainsFunc(in[1:], func(s string) bool { return a.layouts[s] != nil }) {
		a.blockInputs(i, fmt.Sprintf("Pad %s reads channels through a parameter input", a.label(i)))
		return
	}
	var pads []int64
	if at := findAttr(n, "pads"); at != nil {
		pads = at.GetInts()
	} else if len(in) > 1 {
		if t := a.constTensor(in[1]); t != nil {
			pads, _ = onnx.TensorInts(t)
		}
	}
	if len(in) > 3 && in[3] != "" || x.rank == 0 || len(pads) != 2*x.rank || pads[1] != 0 || pads[x.rank+1] != 0 {
		a.blockInputs(i, fmt.Sprintf("Pad %s has no constant pads of 0 on the channel axis", a.label(i)))
		return
	}
	a.passThrough(i, x)
}

// constTensor is the value of name when it is an initializer or the output
// of a Constant node.
func (a *analyzer) constTensor(name string) *onnxpb.TensorProto {
	if t := a.g.Initializer(name); t != nil {
		return t
	}
	return onnx.ConstantValue(a.g.Producer(name))
}

func (a *analyzer) constFloats(name string) []float32 {
	t := a.constTensor(name)
	if t == nil {
		return nil
	}
	v, err := onnx.TensorFloats(t)
	if err != nil {
		return nil
	}
	return v
}

// visitElementwise unites the spaces of all data inputs, which must have
// the same channel layout. A constant input is fine when it broadcasts
// along the channel axis (size 1 there, or too low a rank to reach it).
func (a *analyzer) visitElementwise(i int) {
	n := a.nodes[i]
	op := n.GetOpType()
	var ls []*layout
	rank := 0
	for _, name := range n.GetInput() {
		if l := a.layouts[name]; l != nil {
			ls = append(ls, l)
			rank = max(rank, l.rank)
		}
	}
	for _, name := range n.GetInput() {
		if name == "" || a.layouts[name] != nil {
			continue
		}
		t := a.constTensor(name)
		if t == nil {
			a.blockInputs(i, fmt.Sprintf("%s %s combines channels with untracked tensor %q", op, a.label(i), name))
			return
		}
		d := t.GetDims()
		if rank == 0 && len(d) > 1 || len(d) > rank {
			a.blockInputs(i, fmt.Sprintf("%s %s broadcasts constant %q of shape %v", op, a.label(i), name, d))
			return
		}
		if c := len(d) - (rank - 1); c >= 0 && d[c] != 1 {
			a.blockInputs(i, fmt.Sprintf("%s %s scales channels by constant %q of shape %v", op, a.label(i), name, d))
			return
		}
	}
	first := ls[0]
	for _, l := range ls[1:] {
		if !sameShape(first, l) {
			a.blockInputs(i, fmt.Sprintf("%s %s mixes channel layouts", op, a.label(i)))
			return
		}
	}
	for _, l := range ls[1:] {
		for k, s := range l.segs {
			a.union(first.segs[k].space, s.space)
		}
	}
	a.passThrough(i, first)
}

// sameShape reports whether x and y have the same rank (when known) and
// segment sizes, so that their spaces can be united segment by segment.
func sameShape(x, y *layout) bool {
	if x.rank != y.rank && x.rank != 0 && y.rank != 0 {
		return false
	}
	return slices.EqualFunc(x.segs, y.segs, func(p, q seg) bool { return p.n == q.n })
}

func (a *analyzer) visitConcat(i int) {
	n := a.nodes[i]
	in := n.GetInput()
	axis := onnx.AttrInt(n, "axis", 1)
	rank := 0
	for _, name := range in {
		if l := a.layouts[name]; l != nil && l.rank != 0 {
			rank = l.rank
		}
	}
	if axis < 0 {
		if rank == 0 {
			a.blockInputs(i, fmt.Sprintf("Concat %s on axis %d of unknown rank", a.label(i), axis))
			return
		}
		axis += int64(rank)
	}
	if axis != 1 {
		// Along another axis the channels of all inputs line up.
		a.visitElementwise(i)
		return
	}
	out := &layout{rank: rank}
	for _, name := range in {
		l := a.layouts[name]
		if l == nil {
			a.blockInputs(i, fmt.Sprintf("Concat %s joins untracked tensor %q", a.label(i), name))
			return
		}
		out.segs = append(out.segs, l.segs...)
	}
	for _, s := range out.segs {
		a.touched = append(a.touched, nodeSpace{i, s.space})
	}
	a.setLayout(n.GetOutput()[0], out)
}

// checkHeads blocks the space of every producing Conv whose output reaches
// a graph output through non-Conv nodes only. Propagation has blocked those
// already (something on the way, or the output itself, blocks); this makes
// sure of it.
func (a *analyzer) checkHeads() {
	for s, sp := range a.spaces {
		if sp.producer < 0 {
			continue
		}
		seen := map[string]bool{}
		queue := slices.Clone(a.nodes[sp.producer].GetOutput())
		for len(queue) > 0 {
			t := queue[0]
			queue = queue[1:]
			if seen[t] {
				continue
			}
			seen[t] = true
			if a.g.IsOutput(t) {
				a.block(s, fmt.Sprintf("head conv %s", a.label(sp.producer)))
				break
			}
			for _, c := range a.g.Consumers(t) {
				if c.GetOpType() != "Conv" {
					queue = append(queue, c.GetOutput()...)
				}
			}
		}
	}
}
