package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// bnFold is one Conv → BatchNormalization pair to fold, computed before the
// model is touched.
type bnFold struct {
	conv, bn *onnxpb.NodeProto
	w, b     []float32 // folded weight and bias
	wDims    []int64
	// newW/newB name fresh initializers for w and b; empty means overwrite
	// the Conv's existing one in place.
	newW, newB string
}

// FoldBatchNorm folds every BatchNormalization of m's main graph that
// directly follows a Conv into that Conv and returns how many it folded.
//
// A pair folds when the BN (inference mode, one output) is the only reader
// of the Conv's output, that output is not a graph output, and the Conv
// weight and bias and all four BN parameters are FLOAT initializers of
// matching size. With s = γ/sqrt(var+ε) per output channel the Conv gets
// W' = W·s and b' = (b−mean)·s + β (a bias is created when the Conv has
// none). The BN node is removed and the Conv now produces the BN's output
// name. Initializers only the folded nodes used are dropped. A weight or
// bias another node also reads is not changed: the Conv gets a new copy.
// Pairs that do not match are left alone. On error m is unchanged.
func FoldBatchNorm(m *onnxpb.ModelProto) (folded int, err error) {
	g := NewGraph(m)
	names := TensorNames(m.GetGraph())
	var plans []*bnFold
	for _, bn := range m.GetGraph().GetNode() {
		p, err := g.planBNFold(bn, names)
		if err != nil {
			return 0, fmt.Errorf("fold batch norm: %w", err)
		}
		if p != nil {
			plans = append(plans, p)
		}
	}
	if len(plans) == 0 {
		return 0, nil
	}

	gp := m.GetGraph()
	removed := map[*onnxpb.NodeProto]bool{}
	maybeUnused := map[string]bool{}
	goneTensors := map[string]bool{}
	for _, p := range plans {
		removed[p.bn] = true
		for _, name := range p.bn.GetInput()[1:5] {
			maybeUnused[name] = true
		}
		x := p.conv.GetOutput()[0]
		goneTensors[x] = true
		p.conv.Output[0] = p.bn.GetOutput()[0]

		if p.newW == "" {
			SetTensorFloats(g.Initializer(p.conv.GetInput()[1]), p.w)
		} else {
			maybeUnused[p.conv.GetInput()[1]] = true
			g.addInitializer(Float32Tensor(p.newW, p.wDims, p.w))
			p.conv.Input[1] = p.newW
		}
		if p.newB == "" {
			SetTensorFloats(g.Initializer(p.conv.GetInput()[2]), p.b)
			continue
		}
		if len(p.conv.GetInput()) > 2 && p.conv.GetInput()[2] != "" {
			maybeUnused[p.conv.GetInput()[2]] = true
		}
		g.addInitializer(Float32Vector(p.newB, p.b))
		for len(p.conv.Input) < 3 {
			p.conv.Input = append(p.conv.Input, "")
		}
		p.conv.Input[2] = p.newB
	}

	nodes := gp.Node[:0]
	for _, n := range gp.Node {
		if !removed[n] {
			nodes = append(nodes, n)
		}
	}
	clear(gp.Node[len(nodes):])
	gp.Node = nodes
	gp.ValueInfo = FilterValueInfo(gp.ValueInfo, func(name string) bool { return !goneTensors[name] })

	g.Reindex()
	unused := map[string]bool{}
	for name := range maybeUnused {
		if g.Initializer(name) != nil && len(g.Consumers(name)) == 0 && !g.IsOutput(name) {
			unused[name] = true
		}
	}
	if len(unused) > 0 {
		inits := gp.Initializer[:0]
		for _, t := range gp.Initializer {
			if !unused[t.GetName()] {
				inits = append(inits, t)
			}
		}
		clear(gp.Initializer[len(inits):])
		gp.Initializer = inits
		// Initializers listed as graph inputs (IR < 4 style) go with them.
		gp.Input = FilterValueInfo(gp.Input, func(name string) bool { return !unused[name] })
		gp.ValueInfo = FilterValueInfo(gp.ValueInfo, func(name string) bool { return !unused[name] })
		g.Reindex()
	}
	return len(plans), nil
}

// planBNFold returns the fold for bn, nil when bn is not a foldable
// BatchNormalization, or an error when a matching pair holds corrupt data.
func (g *Graph) planBNFold(bn *onnxpb.NodeProto, names map[string]bool) (*bnFold, error) {
	if bn.GetOpType() != "BatchNormalization" || !IsDefaultDomain(bn.GetDomain()) {
		return nil, nil
	}
	in := bn.GetInput()
	if len(in) != 5 || len(bn.GetOutput()) == 0 || bn.GetOutput()[0] == "" {
		return nil, nil
	}
	for _, o := range bn.GetOutput()[1:] {
		if o != "" { // training-mode statistics outputs
			return nil, nil
		}
	}
	eps := float32(1e-5)
	for _, a := range bn.GetAttribute() {
		switch a.GetName() {
		case "epsilon":
			eps = a.GetF()
		case "training_mode":
			if a.GetI() != 0 {
				return nil, nil
			}
		case "spatial": // opset < 9; spatial=0 means per-element statistics
			if a.GetI() == 0 {
				return nil, nil
			}
		}
	}
	x := in[0]
	conv := g.Producer(x)
	if conv == nil || conv.GetOpType() != "Conv" || !IsDefaultDomain(conv.GetDomain()) {
		return nil, nil
	}
	if len(conv.GetOutput()) != 1 || len(g.Consumers(x)) != 1 || g.IsOutput(x) {
		return nil, nil
	}
	cin := conv.GetInput()
	if len(cin) < 2 {
		return nil, nil
	}
	wt := g.Initializer(cin[1])
	if !IsFloatInitializer(wt) || len(wt.GetDims()) < 3 || wt.GetDims()[0] <= 0 {
		return nil, nil
	}
	c := int(wt.GetDims()[0])
	hasBias := len(cin) > 2 && cin[2] != ""
	var bt *onnxpb.TensorProto
	if hasBias {
		bt = g.Initializer(cin[2])
		if !IsFloatInitializer(bt) || NumElements(bt) != int64(c) {
			return nil, nil
		}
	}
	params := make([]*onnxpb.TensorProto, 4) // scale, B, mean, var
	for i, name := range in[1:] {
		t := g.Initializer(name)
		if !IsFloatInitializer(t) || NumElements(t) != int64(c) {
			return nil, nil
		}
		params[i] = t
	}

	w, err := TensorFloats(wt)
	if err != nil {
		return nil, err
	}
	b := make([]float32, c)
	if hasBias {
		if b, err = TensorFloats(bt); err != nil {
			return nil, err
		}
	}
	var pv [4][]float32
	for i, t := range params {
		if pv[i], err = TensorFloats(t); err != nil {
			return nil, err
		}
	}
	gamma, beta, mean, variance := pv[0], pv[1], pv[2], pv[3]
	per := len(w) / c
	fw := make([]float32, len(w))
	fb := make([]float32, c)
	for o := 0; o < c; o++ {
		s := float64(gamma[o]) / math.Sqrt(float64(variance[o])+float64(eps))
		for k := o * per; k < (o+1)*per; k++ {
			fw[k] = float32(float64(w[k]) * s)
		}
		fb[o] = float32((float64(b[o])-float64(mean[o]))*s + float64(beta[o]))
	}

	p := &bnFold{conv: conv, bn: bn, w: fw, b: fb, wDims: wt.GetDims()}
	stem := bn.GetOutput()[0]
	if g.shared(cin[1], conv) {
		p.newW = UniqueName(names, stem+"_bnfold_weight")
	}
	if !hasBias || g.shared(cin[2], conv) {
		p.newB = UniqueName(names, stem+"_bnfold_bias")
	}
	return p, nil
}

// shared reports whether anything but node reads the tensor name: another
// node, the graph outputs, or node itself through a second input.
func (g *Graph) shared(name string, node *onnxpb.NodeProto) bool {
	if g.IsOutput(name) {
		return true
	}
	for _, n := range g.Consumers(name) {
		if n != node {
			return true
		}
	}
	uses := 0
	for _, in := range node.GetInput() {
		if in == name {
			uses++
		}
	}
	return uses > 1
}

// addInitializer appends t to the graph. Models of IR version < 4 require
// every initializer to be a graph input too, so it is listed there as well.
func (g *Graph) addInitializer(t *onnxpb.TensorProto) {
	gp := g.Model.GetGraph()
	gp.Initializer = append(gp.Initializer, t)
	g.initializer[t.GetName()] = t
	if g.Model.GetIrVersion() >= 4 {
		return
	}
	dims := make([]*onnxpb.TensorShapeProto_Dimension, len(t.GetDims()))
	for i, d := range t.GetDims() {
		dims[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
	}
	gp.Input = append(gp.Input, &onnxpb.ValueInfoProto{
		Name: proto.String(t.GetName()),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(t.GetDataType()),
			Shape:    &onnxpb.TensorShapeProto{Dim: dims},
		}}},
	})
	g.input[t.GetName()] = true
}

// IsFloatInitializer reports whether t is a non-empty float32 tensor stored
// in the model (not external data).
func IsFloatInitializer(t *onnxpb.TensorProto) bool {
	return t != nil && t.GetDataType() == int32(onnxpb.TensorProto_FLOAT) &&
		t.GetDataLocation() != onnxpb.TensorProto_EXTERNAL && NumElements(t) > 0
}

// IsDefaultDomain reports whether d names the standard ONNX operator domain.
func IsDefaultDomain(d string) bool { return d == "" || d == "ai.onnx" }

// TensorNames returns every tensor name g defines or mentions (subgraphs
// included), for picking fresh names.
func TensorNames(gp *onnxpb.GraphProto) map[string]bool {
	names := map[string]bool{}
	var visit func(*onnxpb.GraphProto)
	visit = func(gp *onnxpb.GraphProto) {
		for _, list := range [][]*onnxpb.ValueInfoProto{gp.GetInput(), gp.GetOutput(), gp.GetValueInfo()} {
			for _, vi := range list {
				names[vi.GetName()] = true
			}
		}
		for _, t := range gp.GetInitializer() {
			names[t.GetName()] = true
		}
		for _, n := range gp.GetNode() {
			for _, s := range n.GetInput() {
				names[s] = true
			}
			for _, s := range n.GetOutput() {
				names[s] = true
			}
			for _, a := range n.GetAttribute() {
				if a.GetG() != nil {
					visit(a.GetG())
				}
				for _, sg := range a.GetGraphs() {
					visit(sg)
				}
			}
		}
	}
	visit(gp)
	return names
}

// UniqueName returns base, or base_N, that is not in names, and adds it.
func UniqueName(names map[string]bool, base string) string {
	name := base
	for i := 1; names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	names[name] = true
	return name
}

// FilterValueInfo returns the entries of list whose names keep accepts.
func FilterValueInfo(list []*onnxpb.ValueInfoProto, keep func(string) bool) []*onnxpb.ValueInfoProto {
	out := list[:0]
	for _, vi := range list {
		if keep(vi.GetName()) {
			out = append(out, vi)
		}
	}
	clear(list[len(out):])
	return out
}
