package train

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Param is a trainable tensor: a float initializer a Conv reads as its
// weight or bias, or a QuantizeLinear quantizes. Value is shared with the
// graph, so optimisers update it in place; Grad accumulates over Backward
// calls until ZeroGrad. Bounds, when set, limit each value: optimisers
// clamp into them after every step.
type Param struct {
	Name   string
	Value  *Tensor
	Grad   *Tensor
	Bounds *Bounds
}

// Bounds are element-wise limits of a parameter, one Lower and one Upper
// value per element.
type Bounds struct {
	Lower, Upper []float32
}

// SetBounds limits the parameter called name to b (nil: unbounded). It
// fails when there is no such parameter, when b's lengths differ from the
// parameter's, or when a lower limit exceeds its upper one.
func (g *Graph) SetBounds(name string, b *Bounds) error {
	p := g.byName[name]
	if p == nil {
		return fmt.Errorf("bounds for %q: no such parameter", name)
	}
	if b != nil {
		n := len(p.Value.Data)
		if len(b.Lower) != n || len(b.Upper) != n {
			return fmt.Errorf("bounds for %q: %d lower and %d upper limits for %d values", name, len(b.Lower), len(b.Upper), n)
		}
		for i := range b.Lower {
			if !(b.Lower[i] <= b.Upper[i]) {
				return fmt.Errorf("bounds for %q: element %d has lower limit %g above upper limit %g", name, i, b.Lower[i], b.Upper[i])
			}
		}
	}
	p.Bounds = b
	return nil
}

// clamp puts p's values into its bounds.
func (p *Param) clamp() {
	if p.Bounds == nil {
		return
	}
	for i, v := range p.Value.Data {
		p.Value.Data[i] = min(max(v, p.Bounds.Lower[i]), p.Bounds.Upper[i])
	}
}

// node is one operator of the graph in execution order.
type node struct {
	name, op string
	ins      []string // "" marks an absent optional input
	outs     []string
	k        kernel
}

func (n *node) label() string {
	if n.name != "" {
		return fmt.Sprintf("node %q (%s)", n.name, n.op)
	}
	return fmt.Sprintf("%s node producing %q", n.op, n.outs[0])
}

// Graph is a trainable graph built from an ONNX model.
type Graph struct {
	model   *onnxpb.ModelProto // the folded copy the graph was built from
	nodes   []*node
	inputs  []string
	outputs []string
	consts  map[string]*Tensor                     // initializers and Constant outputs, params included
	dtypes  map[string]onnxpb.TensorProto_DataType // of the initializers
	params  []*Param
	byName  map[string]*Param
	// needsGrad marks the float tensors that depend on a parameter.
	needsGrad map[string]bool
}

// Options adjust Build.
type Options struct {
	// KeepCompositeSiLU leaves Sigmoid→Mul pairs as two operators instead
	// of fusing them into one SiLU (which keeps half the activations).
	KeepCompositeSiLU bool
}

// Build makes a trainable graph of a copy of m with BatchNormalization
// folded into the preceding Convs. Every float initializer that a Conv
// reads as its weight or bias, or that a QuantizeLinear quantizes (a
// weight trained through its quantization), becomes a Param. An operator
// the engine does not support is an error naming the node and its type.
func Build(m *onnxpb.ModelProto, opts Options) (*Graph, error) {
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("model has no graph")
	}
	m = proto.Clone(m).(*onnxpb.ModelProto)
	if _, err := onnx.FoldBatchNorm(m); err != nil {
		return nil, err
	}
	og := onnx.NewGraph(m)
	order, err := og.TopoSort()
	if err != nil {
		return nil, err
	}
	opset := og.Opset()
	g := &Graph{model: m, consts: map[string]*Tensor{}, dtypes: map[string]onnxpb.TensorProto_DataType{}, byName: map[string]*Param{}, needsGrad: map[string]bool{}}
	if err := g.loadInitializers(m, order); err != nil {
		return nil, err
	}
	for _, in := range m.GetGraph().GetInput() {
		if _, isConst := g.consts[in.GetName()]; !isConst {
			g.inputs = append(g.inputs, in.GetName())
		}
	}
	for _, out := range m.GetGraph().GetOutput() {
		g.outputs = append(g.outputs, out.GetName())
	}
	for _, p := range order {
		if !onnx.IsDefaultDomain(p.GetDomain()) {
			return nil, fmt.Errorf("node %q: operator %s of domain %q is not supported", p.GetName(), p.GetOpType(), p.GetDomain())
		}
		if len(p.GetOutput()) == 0 || p.GetOutput()[0] == "" {
			return nil, fmt.Errorf("node %q (%s) has no output", p.GetName(), p.GetOpType())
		}
		if p.GetOpType() == "Constant" {
			t, err := constantTensor(onnx.ConstantValue(p))
			if err != nil {
				return nil, fmt.Errorf("node %q (Constant): %w", p.GetName(), err)
			}
			g.consts[p.GetOutput()[0]] = t
			continue
		}
		build, ok := builders[p.GetOpType()]
		if p.GetOpType() == "QuantizeLinear" {
			build, ok = func(n *onnxpb.NodeProto, _ int64) (kernel, error) { return buildQuantize(n, g.dtypes) }, true
		}
		if !ok {
			return nil, fmt.Errorf("node %q: operator %s is not supported by the training engine", p.GetName(), p.GetOpType())
		}
		k, err := build(p, opset)
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", p.GetName(), p.GetOpType(), err)
		}
		g.nodes = append(g.nodes, &node{name: p.GetName(), op: p.GetOpType(), ins: p.GetInput(), outs: p.GetOutput(), k: k})
	}
	if !opts.KeepCompositeSiLU {
		g.fuseSiLU()
	}
	g.markGradients()
	return g, nil
}

// loadInitializers reads every initializer; float ones a Conv reads as
// weight or bias, or a QuantizeLinear quantizes (weights trained through
// their quantization), become parameters.
func (g *Graph) loadInitializers(m *onnxpb.ModelProto, order []*onnxpb.NodeProto) error {
	trainable := map[string]bool{}
	for _, p := range order {
		switch p.GetOpType() {
		case "Conv":
			for _, in := range p.GetInput()[1:] {
				trainable[in] = true
			}
		case "QuantizeLinear":
			trainable[p.GetInput()[0]] = true
		}
	}
	for _, init := range m.GetGraph().GetInitializer() {
		t, err := constantTensor(init)
		if err != nil {
			return fmt.Errorf("initializer %q: %w", init.GetName(), err)
		}
		g.consts[init.GetName()] = t
		g.dtypes[init.GetName()] = onnxpb.TensorProto_DataType(init.GetDataType())
		if trainable[init.GetName()] && !t.isInt() {
			p := &Param{Name: init.GetName(), Value: t, Grad: NewTensor(t.Shape...)}
			g.params = append(g.params, p)
			g.byName[p.Name] = p
		}
	}
	return nil
}

// constantTensor converts a float or integer TensorProto.
func constantTensor(t *onnxpb.TensorProto) (*Tensor, error) {
	if t == nil {
		return nil, fmt.Errorf("no tensor value")
	}
	shape := make([]int, len(t.GetDims()))
	for i, d := range t.GetDims() {
		shape[i] = int(d)
	}
	if onnx.HoldsFloats(t) && t.GetDataType() == int32(onnxpb.TensorProto_FLOAT) {
		v, err := onnx.TensorFloats(t)
		if err != nil {
			return nil, err
		}
		return FromData(v, shape...)
	}
	v, err := onnx.TensorInts(t)
	if err != nil {
		return nil, fmt.Errorf("only FLOAT, INT64, INT32, INT8 and UINT8 tensors are supported: %w", err)
	}
	if len(v) != numElements(shape) {
		return nil, fmt.Errorf("%d values for dims %v", len(v), t.GetDims())
	}
	return intTensor(v, shape...), nil
}

// fuseSiLU replaces s = Sigmoid(x); y = Mul(x, s) by y = SiLU(x) where s is
// read by that Mul only and is not a graph output.
func (g *Graph) fuseSiLU() {
	readers := map[string][]*node{}
	for _, n := range g.nodes {
		for _, in := range n.ins {
			readers[in] = append(readers[in], n)
		}
	}
	drop := map[*node]bool{}
	for _, sig := range g.nodes {
		if sig.op != "Sigmoid" {
			continue
		}
		x, s := sig.ins[0], sig.outs[0]
		r := readers[s]
		if len(r) != 1 || r[0].op != "Mul" || slices.Contains(g.outputs, s) {
			continue
		}
		mul := r[0]
		if !(mul.ins[0] == x && mul.ins[1] == s) && !(mul.ins[0] == s && mul.ins[1] == x) {
			continue
		}
		drop[sig] = true
		mul.op, mul.ins, mul.k = "SiLU", []string{x}, siluKernel()
		mul.name = sig.name + "+" + mul.name
	}
	g.nodes = slices.DeleteFunc(g.nodes, func(n *node) bool { return drop[n] })
}

// markGradients finds the tensors that depend on a parameter: only they
// carry gradients backward.
func (g *Graph) markGradients() {
	for _, p := range g.params {
		g.needsGrad[p.Name] = true
	}
	for _, n := range g.nodes {
		for _, in := range n.ins {
			if g.needsGrad[in] {
				for _, out := range n.outs {
					g.needsGrad[out] = true
				}
				break
			}
		}
		if c, ok := n.k.(convKernel); ok && !g.needsGrad[n.ins[0]] {
			c.skipInputGrad = true
			n.k = c
		}
	}
}

// Params are the trainable tensors in initializer order.
func (g *Graph) Params() []*Param { return g.params }

// Param is the parameter called name, nil if there is none.
func (g *Graph) Param(name string) *Param { return g.byName[name] }

// Inputs and Outputs are the model's graph input and output names.
func (g *Graph) Inputs() []string  { return g.inputs }
func (g *Graph) Outputs() []string { return g.outputs }

// ZeroGrad clears every parameter's gradient.
func (g *Graph) ZeroGrad() {
	for _, p := range g.params {
		clear(p.Grad.Data)
	}
}

// Model returns a copy of the (BatchNorm-folded) model with the current
// parameter values written into its initializers.
func (g *Graph) Model() *onnxpb.ModelProto {
	m := proto.Clone(g.model).(*onnxpb.ModelProto)
	for _, init := range m.GetGraph().GetInitializer() {
		if p := g.byName[init.GetName()]; p != nil {
			onnx.SetTensorFloats(init, p.Value.Data)
		}
	}
	return m
}
