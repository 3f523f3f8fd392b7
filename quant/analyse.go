package quant

import (
	"fmt"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// prepared is the float model ready for QDQ: BatchNorm folded, opset ≥ 13,
// every node named, with its analysis.
type prepared struct {
	model *onnxpb.ModelProto
	g     *onnx.Graph
	order []*onnxpb.NodeProto
	types map[string]int32
	head  map[string]bool // nodes after the last compute op on every path to an output
	// candidates are the compute nodes that can be quantized, in graph order.
	candidates []*onnxpb.NodeProto
	// excluded are the candidates the user keeps float (--exclude).
	excluded map[string]bool
	// elementwise are the element-wise nodes that can run in INT8.
	elementwise []*onnxpb.NodeProto
	byName      map[string]*onnxpb.NodeProto
	// siluSigmoid maps the Mul of every SiLU (Mul(x, Sigmoid(x)), the
	// Sigmoid read by nothing else) to its Sigmoid.
	siluSigmoid map[string]*onnxpb.NodeProto
	// exactSiLU quantizes a SiLU's input and output only (Options.ExactSiLU).
	exactSiLU bool
}

// analyse finds the head, the quantizable nodes and the tensor types.
// exclude names nodes (by name) or op types to keep in float.
func analyse(m *onnxpb.ModelProto, exclude map[string]bool) (*prepared, error) {
	g := onnx.NewGraph(m)
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	for _, n := range order {
		if err := checkArity(n); err != nil {
			return nil, err
		}
	}
	p := &prepared{model: m, g: g, order: order, types: elemTypes(g, order), head: map[string]bool{}, byName: map[string]*onnxpb.NodeProto{}}
	for _, n := range order {
		p.byName[n.GetName()] = n
	}
	// A node is in the head when no compute op is reachable from it:
	// walk backwards, marking nodes that reach a compute op.
	reaches := map[*onnxpb.NodeProto]bool{}
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		r := false
		for _, out := range n.GetOutput() {
			for _, c := range g.Consumers(out) {
				if computeOps[c.GetOpType()] || reaches[c] {
					r = true
				}
			}
		}
		reaches[n] = r
		if !r && !computeOps[n.GetOpType()] {
			p.head[n.GetName()] = true
		}
	}
	p.siluSigmoid = map[string]*onnxpb.NodeProto{}
	for _, n := range order {
		if n.GetOpType() != "Sigmoid" || len(n.GetInput()) != 1 || len(n.GetOutput()) != 1 {
			continue
		}
		if c := g.Consumers(n.GetOutput()[0]); len(c) == 1 && c[0].GetOpType() == "Mul" && isSiLU(n, c[0]) && !g.IsOutput(n.GetOutput()[0]) {
			p.siluSigmoid[c[0].GetName()] = n
		}
	}
	p.excluded = map[string]bool{}
	for _, n := range order {
		if !onnx.IsDefaultDomain(n.GetDomain()) {
			continue
		}
		excluded := exclude[n.GetName()] || exclude[n.GetOpType()]
		op := n.GetOpType()
		switch {
		case computeOps[op]:
			// Excluded compute layers stay candidates, always float, so
			// reports list them.
			if p.quantizableCompute(n) {
				p.candidates = append(p.candidates, n)
				p.excluded[n.GetName()] = excluded
			}
		case excluded:
		case elementwiseOps[op] && !p.head[n.GetName()]:
			if p.allFloat(n) {
				p.elementwise = append(p.elementwise, n)
			}
		}
	}
	return p, nil
}

// checkArity rejects a compute or element-wise node without the inputs
// and output its operator always has (a damaged or hand-made file): the
// analysis reads them by position.
func checkArity(n *onnxpb.NodeProto) error {
	if !onnx.IsDefaultDomain(n.GetDomain()) {
		return nil
	}
	minIn := 0
	switch op := n.GetOpType(); {
	case computeOps[op]:
		minIn = 2
	case elementwiseOps[op]:
		minIn = 1
	default:
		return nil
	}
	if len(n.GetInput()) < minIn || len(n.GetOutput()) < 1 {
		return fmt.Errorf("node %q: %s with %d inputs and %d outputs, want at least %d and 1",
			n.GetName(), n.GetOpType(), len(n.GetInput()), len(n.GetOutput()), minIn)
	}
	return nil
}

// quantizableCompute: float activation input, float initializer weight
// (and bias) of a shape we can quantize per channel.
func (p *prepared) quantizableCompute(n *onnxpb.NodeProto) bool {
	in := n.GetInput()
	if len(in) < 2 || !isFloat(p.types, in[0]) || !isFloat(p.types, n.GetOutput()[0]) {
		return false
	}
	w := p.g.Initializer(in[1])
	if !onnx.IsFloatInitializer(w) {
		return n.GetOpType() == "MatMul" && isFloat(p.types, in[1])
	}
	switch n.GetOpType() {
	case "Conv":
		if len(w.GetDims()) < 3 {
			return false
		}
	case "Gemm":
		if len(w.GetDims()) != 2 || onnx.AttrInt(n, "transA", 0) != 0 {
			return false
		}
	case "MatMul":
		if len(w.GetDims()) != 2 {
			return false
		}
	}
	if len(in) > 2 && in[2] != "" {
		b := p.g.Initializer(in[2])
		if !onnx.IsFloatInitializer(b) || len(b.GetDims()) != 1 {
			return false
		}
	}
	return true
}

// quantInputs is actInputs of the node named like n, except that with
// exactSiLU a SiLU's Mul quantizes only x: the Sigmoid between its
// quantized input and output stays float. The indices come from the
// prepared model's node (n may be a copy whose inputs were renamed).
func (p *prepared) quantInputs(g *onnx.Graph, n *onnxpb.NodeProto) []int {
	idx := actInputs(g, n)
	sig := p.siluSigmoid[n.GetName()]
	orig := p.byName[n.GetName()]
	if !p.exactSiLU || sig == nil || orig == nil {
		return idx
	}
	var keep []int
	for _, i := range idx {
		if orig.GetInput()[i] == sig.GetInput()[0] {
			keep = append(keep, i)
		}
	}
	return keep
}

// isExactSiLUSigmoid reports whether n is the Sigmoid of a SiLU that
// exactSiLU keeps float.
func (p *prepared) isExactSiLUSigmoid(n *onnxpb.NodeProto) bool {
	if !p.exactSiLU || n.GetOpType() != "Sigmoid" {
		return false
	}
	for _, c := range p.g.Consumers(n.GetOutput()[0]) {
		if p.siluSigmoid[c.GetName()] == n {
			return true
		}
	}
	return false
}

func (p *prepared) allFloat(n *onnxpb.NodeProto) bool {
	for _, i := range actInputs(p.g, n) {
		if !isFloat(p.types, n.GetInput()[i]) {
			return false
		}
	}
	for _, out := range n.GetOutput() {
		if out != "" && !isFloat(p.types, out) {
			return false
		}
	}
	return true
}

// quantOutputs returns the outputs of a quantized node that get a Q/DQ
// pair: the first (Split: every one), except a Conv's, Gemm's, MatMul's or
// Add's that only feeds a Relu the plan also quantizes. There the Relu's
// output carries the pair, and ONNX
// Runtime folds the Relu into the QuantizeLinear after it (whose zero point
// clamps at 0), so a Conv or Add followed by Relu runs as one INT8 op with
// one requantisation instead of two.
func (p *prepared) quantOutputs(g *onnx.Graph, n *onnxpb.NodeProto, plan map[string]bool) []string {
	if !computeOps[n.GetOpType()] && !elementwiseOps[n.GetOpType()] {
		return nil
	}
	outs := n.GetOutput()[:1]
	if n.GetOpType() == "Split" {
		outs = n.GetOutput()
	}
	fusesRelu := computeOps[n.GetOpType()] || n.GetOpType() == "Add"
	var keep []string
	for _, t := range outs {
		if t != "" && !(fusesRelu && p.feedsQuantizedReluOnly(g, t, plan)) {
			keep = append(keep, t)
		}
	}
	return keep
}

// feedsQuantizedReluOnly reports whether tensor t's only reader is a Relu
// the plan quantizes and t is not a graph output: t then needs no Q/DQ of
// its own (see quantOutputs).
func (p *prepared) feedsQuantizedReluOnly(g *onnx.Graph, t string, plan map[string]bool) bool {
	if g.IsOutput(t) {
		return false
	}
	c := g.Consumers(t)
	return len(c) == 1 && c[0].GetOpType() == "Relu" && plan[c[0].GetName()]
}

// closeFloatIslands un-quantizes nodes until no float compute node sits
// between a DequantizeLinear and a QuantizeLinear: ONNX Runtime would
// otherwise quantize it per tensor behind our back. It returns the nodes it
// turned to float.
func (p *prepared) closeFloatIslands(q map[string]bool) []string {
	var changed []string
	for {
		done := true
		for _, n := range p.order {
			if !computeOps[n.GetOpType()] || q[n.GetName()] {
				continue
			}
			prod := p.g.Producer(n.GetInput()[0])
			if prod == nil || !q[prod.GetName()] {
				continue
			}
			for _, c := range p.g.Consumers(n.GetOutput()[0]) {
				if q[c.GetName()] {
					q[c.GetName()] = false
					changed = append(changed, c.GetName())
					done = false
				}
			}
		}
		if done {
			return changed
		}
	}
}

// propagateElementwise marks an element-wise node INT8 exactly when every
// activation it reads comes from an INT8 node (a quantized compute op or an
// element-wise op already marked), so INT8 regions start at quantized
// convolutions and element-wise ops around float layers stay float.
func (p *prepared) propagateElementwise(q map[string]bool) {
	ew := map[string]bool{}
	for _, n := range p.elementwise {
		ew[n.GetName()] = true
	}
	for _, n := range p.order {
		if !ew[n.GetName()] {
			continue
		}
		if p.isExactSiLUSigmoid(n) {
			q[n.GetName()] = false
			continue
		}
		all := true
		for _, i := range p.quantInputs(p.g, n) {
			in := n.GetInput()[i]
			if p.g.Initializer(in) != nil {
				continue
			}
			prod := p.g.Producer(in)
			if prod == nil || !q[prod.GetName()] {
				all = false
				break
			}
		}
		q[n.GetName()] = all
	}
}

// tensorsToCalibrate lists the activation tensors a plan quantizing every
// candidate and element-wise node could need ranges for.
func (p *prepared) tensorsToCalibrate() []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if t != "" && !seen[t] && p.g.Initializer(t) == nil && isFloat(p.types, t) {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, list := range [][]*onnxpb.NodeProto{p.candidates, p.elementwise} {
		for _, n := range list {
			for _, i := range actInputs(p.g, n) {
				add(n.GetInput()[i])
			}
			outs := n.GetOutput()[:1]
			if n.GetOpType() == "Split" {
				outs = n.GetOutput()
			}
			for _, t := range outs {
				add(t)
			}
		}
	}
	return out
}
