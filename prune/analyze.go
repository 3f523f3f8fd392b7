// Package prune removes whole channels from the convolutions of an ONNX
// model (structured channel pruning), working on the ONNX graph itself.
//
// It follows the dependency-graph idea of Torch-Pruning (DepGraph): a
// Conv's output channels form a channel space that flows through
// channel-wise operators (activations, BatchNormalization, depthwise
// Convs, pooling, Resize), is merged with other spaces by Add (residual
// branches must lose the same channels) and is laid side by side with other
// spaces by Concat, until Convs read it as their input channels. Removing
// channel i of a space means removing output row i of every Conv producing
// it, row i of every depthwise Conv and BatchNormalization it passes, and
// input column offset+i of every Conv reading it. Analyze finds these
// groups, Importance ranks their channels, Apply removes channels and Cost
// counts parameters and multiply-accumulates.
//
// A space that reaches anything the package cannot follow (Reshape, Split,
// Slice, Transpose, a graph output, an unknown operator, ...) is blocked:
// removing its channels would change what that operator sees. The last
// Convs of a detection head are blocked that way, since their outputs reach
// the graph outputs.
//
// The package is plain Go and edits the generated types of onnx/onnxpb through package onnx.
package prune

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Group is a set of channels that must be removed together: one channel
// space, shared by every Conv producing it (more than one when Add couples
// residual branches).
type Group struct {
	// ID is the group's index in Analysis.Groups.
	ID int
	// Channels is the number of channels of the space.
	Channels int
	// Producers are the Conv nodes whose output channels are this space, in
	// graph order. They lose output rows (weight and bias).
	Producers []string
	// Consumers are the Conv nodes (group 1) whose input channels include
	// this space, possibly at an offset behind a Concat; they lose input
	// columns. A Conv can be both producer and consumer of one group
	// (a residual block's second Conv).
	Consumers []string
	// Nodes are the other nodes the space passes through, in graph order:
	// BatchNormalization and depthwise Convs (whose parameters lose rows
	// too), activations, pooling, Resize, Add and Concat.
	Nodes []string
	// Prunable reports whether channels of the group may be removed.
	Prunable bool
	// Reason says why the group is not prunable, naming the first node,
	// tensor or condition that blocks it, e.g. `reaches Reshape
	// "/head/Reshape"`, `graph output "output"`, `produced from graph
	// input`, `head conv "/head/cls_preds.0/Conv"`. Empty when prunable.
	Reason string
}

// Analysis is the channel groups of one model. It refers to the analysed
// model (Importance reads its weights) without copying it; analyse again
// after changing the model's graph.
type Analysis struct {
	Groups []Group

	model *onnxpb.ModelProto
	fp    [sha256.Size]byte
	plans []groupPlan
}

// Where a parameter tensor is cut for one group.
const (
	axisRows = 0 // output channels of a Conv weight, or a per-channel vector
	axisCols = 1 // input channels of a group-1 Conv weight
)

// paramUse is one parameter input of one node whose axis holds a group's
// channels from offset on: channel i of the group is index offset+i.
type paramUse struct {
	node, input int // node position in the graph, input position
	axis        int
	offset      int
}

// producerInfo is what Importance needs of one producing Conv.
type producerInfo struct {
	node int // Conv position
	bn   int // BatchNormalization directly reading the Conv's output, or -1
}

// groupPlan is everything Apply and Importance need for one group.
type groupPlan struct {
	uses      []paramUse
	tensors   []string // tensors whose channel axis holds the group
	producers []producerInfo
}

// seg is a run of n channels of one space inside a tensor's channel axis.
type seg struct{ space, n int }

// layout describes a tensor's channel axis (axis 1) as spaces side by side.
type layout struct {
	segs []seg
	rank int // the tensor's rank, 0 when unknown
}

func (l *layout) channels() int {
	n := 0
	for _, s := range l.segs {
		n += s.n
	}
	return n
}

// spaceInfo is one channel space before union.
type spaceInfo struct {
	n        int
	producer int // Conv node position, -1 for none
}

type blockEvent struct {
	space  int
	reason string
}

type nodeSpace struct{ node, space int }

type spaceUse struct {
	space int
	use   paramUse
}

type analyzer struct {
	m     *onnxpb.ModelProto
	g     *onnx.Graph
	nodes []*onnxpb.NodeProto
	index map[*onnxpb.NodeProto]int
	order map[int]int // node position -> topological rank

	parent  []int
	spaces  []spaceInfo
	layouts map[string]*layout
	blocks  []blockEvent
	uses    []spaceUse
	touched []nodeSpace // channel-wise nodes a space passes
	readers []nodeSpace // consumer Convs
	bnOf    map[int]int // producer Conv -> BatchNormalization reading its output
	tensors []string    // tensors with a layout, in order of definition
}

// Analyze finds the channel groups of m. BatchNormalization may be folded
// into the Convs (onnx.FoldBatchNorm) or not. Operators it cannot follow
// block the groups reaching them, with a Reason naming the node; they are
// never an error. Analyze fails only for a graph it cannot read at all (no
// graph, a cycle). It does not change m.
func Analyze(m *onnxpb.ModelProto) (*Analysis, error) {
	if m.GetGraph() == nil {
		return nil, errors.New("analyze: model has no graph")
	}
	a := &analyzer{
		m:       m,
		g:       onnx.NewGraph(m),
		nodes:   m.GetGraph().GetNode(),
		layouts: map[string]*layout{},
		bnOf:    map[int]int{},
	}
	sorted, err := a.g.TopoSort()
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	a.index = make(map[*onnxpb.NodeProto]int, len(a.nodes))
	for i, n := range a.nodes {
		a.index[n] = i
	}
	a.order = make(map[int]int, len(sorted))
	for r, n := range sorted {
		a.order[a.index[n]] = r
	}

	a.graphInputs()
	for _, n := range sorted {
		a.visit(a.index[n])
	}
	for _, o := range m.GetGraph().GetOutput() {
		if l := a.layouts[o.GetName()]; l != nil {
			a.blockLayout(l, fmt.Sprintf("graph output %q", o.GetName()))
		}
	}
	a.checkHeads()
	res := a.groups()
	res.fp = fingerprint(m)
	return res, nil
}

// graphInputs gives every graph input (not an initializer) of rank >= 3
// with a known channel count a blocked space of its own.
func (a *analyzer) graphInputs() {
	for _, vi := range a.m.GetGraph().GetInput() {
		name := vi.GetName()
		if a.g.Initializer(name) != nil {
			continue
		}
		dims := vi.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) < 3 || dims[1].GetDimValue() <= 0 {
			continue
		}
		a.setLayout(name, a.opaque(int(dims[1].GetDimValue()), len(dims), "produced from graph input"))
	}
}

func (a *analyzer) newSpace(n, producer int) int {
	a.spaces = append(a.spaces, spaceInfo{n: n, producer: producer})
	a.parent = append(a.parent, len(a.parent))
	return len(a.spaces) - 1
}

// opaque is a layout of one new space that is blocked for reason.
func (a *analyzer) opaque(n, rank int, reason string) *layout {
	s := a.newSpace(n, -1)
	a.block(s, reason)
	return &layout{segs: []seg{{s, n}}, rank: rank}
}

func (a *analyzer) find(s int) int {
	for a.parent[s] != s {
		a.parent[s] = a.parent[a.parent[s]]
		s = a.parent[s]
	}
	return s
}

func (a *analyzer) union(x, y int) {
	x, y = a.find(x), a.find(y)
	if x == y {
		return
	}
	if x > y {
		x, y = y, x
	}
	a.parent[y] = x
}

func (a *analyzer) block(s int, reason string) {
	a.blocks = append(a.blocks, blockEvent{s, reason})
}

func (a *analyzer) blockLayout(l *layout, reason string) {
	for _, s := range l.segs {
		a.block(s.space, reason)
	}
}

func (a *analyzer) setLayout(tensor string, l *layout) {
	if tensor == "" || l == nil {
		return
	}
	if _, dup := a.layouts[tensor]; !dup {
		a.tensors = append(a.tensors, tensor)
	}
	a.layouts[tensor] = l
}

// label names node i in reasons: its quoted name, or its position and first
// output when it has no name.
func (a *analyzer) label(i int) string {
	return nodeLabel(a.nodes[i], i)
}

func nodeLabel(n *onnxpb.NodeProto, i int) string {
	if n.GetName() != "" {
		return fmt.Sprintf("%q", n.GetName())
	}
	out := ""
	if len(n.GetOutput()) > 0 {
		out = n.GetOutput()[0]
	}
	return fmt.Sprintf("#%d (output %q)", i, out)
}

// nodeName is how Group lists node i: its name, or #i when unnamed.
func nodeName(n *onnxpb.NodeProto, i int) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	return fmt.Sprintf("#%d", i)
}

func defaultDomain(d string) bool { return d == "" || d == "ai.onnx" }

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

// groups turns the union-find classes that have a producing Conv into
// Groups, ordered by their first producer in topological order.
func (a *analyzer) groups() *Analysis {
	type class struct {
		root      int
		first     int // topological rank of the first producer
		producers []int
		reason    string
	}
	classes := map[int]*class{}
	for s, sp := range a.spaces {
		if sp.producer < 0 {
			continue
		}
		r := a.find(s)
		c := classes[r]
		if c == nil {
			c = &class{root: r, first: a.order[sp.producer]}
			classes[r] = c
		}
		c.first = min(c.first, a.order[sp.producer])
		c.producers = append(c.producers, sp.producer)
	}
	for _, b := range a.blocks {
		if c := classes[a.find(b.space)]; c != nil && c.reason == "" {
			c.reason = b.reason
		}
	}
	list := make([]*class, 0, len(classes))
	for _, c := range classes {
		list = append(list, c)
	}
	slices.SortFunc(list, func(x, y *class) int { return x.first - y.first })

	res := &Analysis{model: a.m, Groups: make([]Group, len(list)), plans: make([]groupPlan, len(list))}
	id := map[int]int{} // root -> group ID
	for k, c := range list {
		id[c.root] = k
		byOrder := func(x, y int) int { return a.order[x] - a.order[y] }
		slices.SortFunc(c.producers, byOrder)
		g := Group{ID: k, Channels: a.spaces[c.root].n, Reason: c.reason}
		for _, p := range c.producers {
			g.Producers = append(g.Producers, nodeName(a.nodes[p], p))
			bn, ok := a.bnOf[p]
			if !ok {
				bn = -1
			}
			res.plans[k].producers = append(res.plans[k].producers, producerInfo{node: p, bn: bn})
		}
		if g.Reason == "" && g.Channels < 2 {
			g.Reason = "single channel"
		}
		g.Prunable = g.Reason == ""
		res.Groups[k] = g
	}
	collect := func(list []nodeSpace, dst func(*Group) *[]string) {
		seen := map[[2]int]bool{}
		sorted := slices.Clone(list)
		slices.SortStableFunc(sorted, func(x, y nodeSpace) int { return a.order[x.node] - a.order[y.node] })
		for _, ns := range sorted {
			k, ok := id[a.find(ns.space)]
			if !ok || seen[[2]int{k, ns.node}] {
				continue
			}
			seen[[2]int{k, ns.node}] = true
			p := dst(&res.Groups[k])
			*p = append(*p, nodeName(a.nodes[ns.node], ns.node))
		}
	}
	collect(a.readers, func(g *Group) *[]string { return &g.Consumers })
	collect(a.touched, func(g *Group) *[]string { return &g.Nodes })
	for _, u := range a.uses {
		if k, ok := id[a.find(u.space)]; ok {
			res.plans[k].uses = append(res.plans[k].uses, u.use)
		}
	}
	for _, t := range a.tensors {
		seen := map[int]bool{}
		for _, s := range a.layouts[t].segs {
			if k, ok := id[a.find(s.space)]; ok && !seen[k] {
				seen[k] = true
				res.plans[k].tensors = append(res.plans[k].tensors, t)
			}
		}
	}
	return res
}

// fingerprint hashes m's graph structure and initializer shapes, so that
// Apply can tell an Analysis of another model.
func fingerprint(m *onnxpb.ModelProto) [sha256.Size]byte {
	h := sha256.New()
	str := func(s string) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	gp := m.GetGraph()
	for _, n := range gp.GetNode() {
		str(n.GetOpType())
		str(n.GetDomain())
		str(n.GetName())
		str(fmt.Sprint(n.GetInput(), n.GetOutput()))
		for _, at := range n.GetAttribute() {
			if at.GetName() == "group" || at.GetName() == "axis" {
				str(fmt.Sprint(at.GetName(), at.GetI()))
			}
		}
	}
	for _, t := range gp.GetInitializer() {
		str(t.GetName())
		str(fmt.Sprint(t.GetDataType(), t.GetDims()))
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
