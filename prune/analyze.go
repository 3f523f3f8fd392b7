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
// Prune is the entry point that does it all, as quant.Quantize does for
// quantization: it ranks channels (filter norms, or their contribution on
// calibration inputs), plans the removal for a target (a share of every
// group, of the multiply-adds, or of the latency measured with an injected
// Timer; optionally guided by a sensitivity analysis with an injected
// Scorer), applies it, re-fits the convolutions that lost input channels
// by least squares, checks the result in ONNX Runtime and reports.
//
// The graph code is plain Go and edits the generated types of onnx/onnxpb
// through package onnx; running models (activation sampling, Check) goes
// through onnx/ortrun. The package never imports detector: calibration
// inputs come as onnx.Inputs (package calib), latency and accuracy through
// the Timer and Scorer the caller supplies.
package prune

import (
	"crypto/sha256"
	"errors"
	"fmt"

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
