package prune

import (
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// channelwise are element-wise operators of one data input: channel i of
// the output depends on channel i of the input only. Their other inputs
// (Clip's bounds, Dropout's ratio) must not carry channels.
var channelwise = map[string]bool{
	"Relu": true, "LeakyRelu": true, "Sigmoid": true, "HardSigmoid": true,
	"HardSwish": true, "Clip": true, "Tanh": true, "Elu": true, "Selu": true,
	"Celu": true, "Softplus": true, "Softsign": true, "Mish": true,
	"Gelu": true, "Erf": true, "ThresholdedRelu": true, "Shrink": true,
	"Identity": true, "Dropout": true, "Neg": true, "Abs": true, "Sqrt": true,
	"Exp": true, "Log": true, "Reciprocal": true, "Floor": true,
	"Ceil": true, "Round": true, "Sign": true, "Sin": true, "Cos": true,
	"MaxPool": true, "AveragePool": true, "LpPool": true,
	"GlobalAveragePool": true, "GlobalMaxPool": true, "GlobalLpPool": true,
}

// elementwise are broadcasting operators of several data inputs.
var elementwise = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true,
	"Max": true, "Min": true, "Sum": true, "Mean": true, "PRelu": true,
}

// visit propagates layouts through node i and records what it couples.
func (a *analyzer) visit(i int) {
	n := a.nodes[i]
	op := n.GetOpType()
	if !defaultDomain(n.GetDomain()) {
		a.blockInputs(i, fmt.Sprintf("reaches %s %s (domain %q)", op, a.label(i), n.GetDomain()))
		return
	}
	if op == "Conv" {
		a.visitConv(i)
		return
	}
	if !a.readsLayout(i) {
		return
	}
	if len(n.GetOutput()) == 0 || n.GetOutput()[0] == "" {
		a.blockInputs(i, fmt.Sprintf("reaches %s %s without output", op, a.label(i)))
		return
	}
	switch {
	case op == "BatchNormalization":
		a.visitBN(i)
	case op == "Resize" || op == "Upsample":
		a.visitResize(i)
	case op == "Pad":
		a.visitPad(i)
	case channelwise[op]:
		a.visitChannelwise(i)
	case elementwise[op]:
		a.visitElementwise(i)
	case op == "Concat":
		a.visitConcat(i)
	default:
		a.blockInputs(i, fmt.Sprintf("reaches %s %s", op, a.label(i)))
	}
}

// readsLayout reports whether node i reads any tensor with a layout,
// through its inputs or the outer-scope names its subgraphs read.
func (a *analyzer) readsLayout(i int) bool {
	for _, name := range readNames(a.nodes[i]) {
		if a.layouts[name] != nil {
			return true
		}
	}
	return false
}

// readNames is every tensor name n reads: inputs and, for nodes with
// subgraphs, every name any node of a subgraph reads (a superset of the
// outer-scope references, which is what blocking needs).
func readNames(n *onnxpb.NodeProto) []string {
	names := slices.Clone(n.GetInput())
	var walk func(*onnxpb.GraphProto)
	walk = func(sg *onnxpb.GraphProto) {
		for _, sn := range sg.GetNode() {
			names = append(names, readNames(sn)...)
		}
		for _, o := range sg.GetOutput() {
			names = append(names, o.GetName())
		}
	}
	for _, at := range n.GetAttribute() {
		if at.GetG() != nil {
			walk(at.GetG())
		}
		for _, sg := range at.GetGraphs() {
			walk(sg)
		}
	}
	return names
}

// blockInputs blocks every space node i reads; its outputs get no layout.
func (a *analyzer) blockInputs(i int, reason string) {
	for _, name := range readNames(a.nodes[i]) {
		if l := a.layouts[name]; l != nil {
			a.blockLayout(l, reason)
		}
	}
}

// floatParam returns the FLOAT initializer named name if it holds its
// data and has want elements (any count when want < 0).
func (a *analyzer) floatParam(name string, want int) *onnxpb.TensorProto {
	t := a.g.Initializer(name)
	if !onnx.HoldsFloats(t) {
		return nil // not FLOAT, external, or claiming more than it holds
	}
	if want >= 0 && onnx.NumElements(t) != int64(want) {
		return nil
	}
	return t
}

func findAttr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto { return onnx.Attr(n, name) }

func (a *analyzer) visitConv(i int) {
	n := a.nodes[i]
	in := n.GetInput()
	var x *layout
	if len(in) > 0 {
		x = a.layouts[in[0]]
	}
	out := ""
	if len(n.GetOutput()) > 0 {
		out = n.GetOutput()[0]
	}
	if len(in) < 2 || len(n.GetOutput()) != 1 {
		if x != nil {
			a.blockLayout(x, fmt.Sprintf("Conv %s has %d inputs and %d outputs", a.label(i), len(in), len(n.GetOutput())))
		}
		return
	}
	w := a.floatParam(in[1], -1)
	if w == nil || len(w.GetDims()) < 3 || w.GetDims()[0] <= 0 || w.GetDims()[1] <= 0 {
		if x != nil {
			a.blockLayout(x, fmt.Sprintf("Conv %s weight %q is not a FLOAT initializer [Cout Cin k...]", a.label(i), in[1]))
		}
		return
	}
	dims := w.GetDims()
	cout, cinPer := int(dims[0]), int(dims[1])
	group := int(onnx.AttrInt(n, "group", 1))
	rank := len(dims)
	if group < 1 || cout%group != 0 {
		reason := fmt.Sprintf("Conv %s has group %d for %d output channels", a.label(i), group, cout)
		if x != nil {
			a.blockLayout(x, reason)
		}
		a.setLayout(out, a.opaque(cout, rank, reason))
		return
	}
	cin := cinPer * group
	hasBias := len(in) > 2 && in[2] != ""
	biasOK := !hasBias || a.floatParam(in[2], cout) != nil
	if x != nil && x.channels() != cin {
		a.blockLayout(x, fmt.Sprintf("Conv %s reads %d channels, its input %q has %d", a.label(i), cin, in[0], x.channels()))
		x = nil
	}

	switch {
	case group > 1 && cinPer == 1 && cout == group:
		// Depthwise: channel c of the output is channel c of the input.
		if x == nil {
			a.setLayout(out, a.opaque(cout, rank, fmt.Sprintf("depthwise Conv %s reads untracked channels", a.label(i))))
			return
		}
		if !biasOK {
			a.blockLayout(x, fmt.Sprintf("Conv %s bias %q is not a FLOAT initializer of %d values", a.label(i), in[2], cout))
		}
		off := 0
		for _, s := range x.segs {
			a.uses = append(a.uses, spaceUse{s.space, paramUse{node: i, input: 1, axis: axisRows, offset: off}})
			if hasBias {
				a.uses = append(a.uses, spaceUse{s.space, paramUse{node: i, input: 2, axis: axisRows, offset: off}})
			}
			a.touched = append(a.touched, nodeSpace{i, s.space})
			off += s.n
		}
		a.setLayout(out, &layout{segs: slices.Clone(x.segs), rank: rank})
	case group > 1:
		reason := fmt.Sprintf("grouped Conv %s (group %d)", a.label(i), group)
		if x != nil {
			a.blockLayout(x, reason)
		}
		a.setLayout(out, a.opaque(cout, rank, reason))
	default:
		if x != nil {
			off := 0
			for _, s := range x.segs {
				a.uses = append(a.uses, spaceUse{s.space, paramUse{node: i, input: 1, axis: axisCols, offset: off}})
				a.readers = append(a.readers, nodeSpace{i, s.space})
				off += s.n
			}
		}
		s := a.newSpace(cout, i)
		a.uses = append(a.uses, spaceUse{s, paramUse{node: i, input: 1, axis: axisRows}})
		if hasBias {
			a.uses = append(a.uses, spaceUse{s, paramUse{node: i, input: 2, axis: axisRows}})
		}
		if !biasOK {
			a.block(s, fmt.Sprintf("Conv %s bias %q is not a FLOAT initializer of %d values", a.label(i), in[2], cout))
		}
		a.setLayout(out, &layout{segs: []seg{{s, cout}}, rank: rank})
	}
}

func (a *analyzer) visitBN(i int) {
	n := a.nodes[i]
	in := n.GetInput()
	x := a.layouts[in[0]]
	if x == nil || len(in) != 5 || slices.ContainsFunc(in[1:], func(s string) bool { return a.layouts[s] != nil }) {
		a.blockInputs(i, fmt.Sprintf("BatchNormalization %s has unexpected inputs", a.label(i)))
		return
	}
	for _, o := range n.GetOutput()[1:] {
		if o != "" {
			a.blockInputs(i, fmt.Sprintf("BatchNormalization %s in training mode", a.label(i)))
			return
		}
	}
	c := x.channels()
	for _, p := range in[1:] {
		if a.floatParam(p, c) == nil {
			a.blockInputs(i, fmt.Sprintf("BatchNormalization %s parameter %q is not a FLOAT initializer of %d values", a.label(i), p, c))
			return
		}
	}
	off := 0
	for _, s := range x.segs {
		for k := 1; k <= 4; k++ {
			a.uses = append(a.uses, spaceUse{s.space, paramUse{node: i, input: k, axis: axisRows, offset: off}})
		}
		a.touched = append(a.touched, nodeSpace{i, s.space})
		off += s.n
	}
	if p := a.g.Producer(in[0]); p != nil && p.GetOpType() == "Conv" && len(x.segs) == 1 {
		if pi := a.index[p]; a.spaces[x.segs[0].space].producer == pi {
			a.bnOf[pi] = i
		}
	}
	a.setLayout(n.GetOutput()[0], x)
}

// passThrough records node i as touching every space of x and gives its
// first output (and, for Dropout, its mask) layout x.
func (a *analyzer) passThrough(i int, x *layout) {
	n := a.nodes[i]
	for _, s := range x.segs {
		a.touched = append(a.touched, nodeSpace{i, s.space})
	}
	a.setLayout(n.GetOutput()[0], x)
	if n.GetOpType() == "Dropout" && len(n.GetOutput()) > 1 {
		a.setLayout(n.GetOutput()[1], x)
	}
}

func (a *analyzer) visitChannelwise(i int) {
	n := a.nodes[i]
	op := n.GetOpType()
	in := n.GetInput()
	x := a.layouts[in[0]]
	if x == nil || len(n.GetOutput()) == 0 {
		a.blockInputs(i, fmt.Sprintf("%s %s reads channels through a parameter input", op, a.label(i)))
		return
	}
	for _, p := range in[1:] {
		if a.layouts[p] != nil {
			a.blockInputs(i, fmt.Sprintf("%s %s reads channels through a parameter input", op, a.label(i)))
			return
		}
	}
	if op != "Dropout" && len(n.GetOutput()) > 1 && n.GetOutput()[1] != "" {
		a.blockInputs(i, fmt.Sprintf("%s %s outputs indices", op, a.label(i)))
		return
	}
	a.passThrough(i, x)
}
