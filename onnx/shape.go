package onnx

import (
	"errors"
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Shapes is what shape inference knows about a model's main graph: the
// fully known shapes of its tensors, and the values of the small integer
// tensors (shape arithmetic) and float constants (Resize scales) that
// decide them.
type Shapes struct {
	dims   map[string][]int64
	ints   map[string][]int64
	floats map[string][]float32
}

// Shape is the shape of tensor name, nil when it is unknown (a scalar's
// shape is empty, not nil). The caller must not modify it.
func (s *Shapes) Shape(name string) []int64 { return s.dims[name] }

// maxConstValues bounds the size of a tensor whose values shape inference
// keeps: shape arithmetic only ever needs a handful.
const maxConstValues = 64

// InferShapes infers the shapes of m's tensors for one input of shape
// inShape, given to the model's first graph input that is not an
// initializer; other inputs use their declared static shapes. It walks the
// graph in topological order: Conv and pooling from kernel, strides, pads
// and dilations; element-wise operators broadcast; Concat adds up; Resize
// scales by its constant scales or sizes; Slice, Reshape, Transpose,
// Flatten, Squeeze, Unsqueeze, Gather, Split and Shape work when their shape
// arguments are constants or computed from shapes. A tensor whose shape it
// cannot infer (an unknown operator, a shape argument computed from data)
// is left unknown, and so is everything that depends on it.
//
// The error reports a graph that cannot be sorted (a cycle), an inShape
// that is empty, not positive or of the wrong rank, or a model without a
// graph input.
func InferShapes(m *onnxpb.ModelProto, inShape []int64) (*Shapes, error) {
	gp := m.GetGraph()
	if gp == nil {
		return nil, errors.New("infer shapes: model has no graph")
	}
	g := NewGraph(m)
	sorted, err := g.TopoSort()
	if err != nil {
		return nil, fmt.Errorf("infer shapes: %w", err)
	}
	s := &Shapes{dims: map[string][]int64{}, ints: map[string][]int64{}, floats: map[string][]float32{}}
	for _, t := range gp.GetInitializer() {
		s.constant(t.GetName(), t)
	}
	if err := s.inputs(g, inShape); err != nil {
		return nil, fmt.Errorf("infer shapes: %w", err)
	}
	opset := g.Opset()
	for _, n := range sorted {
		s.infer(n, opset)
	}
	return s, nil
}

// inputs records the shapes of the graph inputs that are not initializers:
// inShape for the first, the declared static shape for the others.
func (s *Shapes) inputs(g *Graph, inShape []int64) error {
	first := true
	for _, vi := range g.Model.GetGraph().GetInput() {
		name := vi.GetName()
		if g.Initializer(name) != nil {
			continue
		}
		declared := vi.GetType().GetTensorType().GetShape()
		if !first {
			if d, ok := staticShape(declared); ok {
				s.dims[name] = d
			}
			continue
		}
		first = false
		if len(inShape) == 0 || slices.ContainsFunc(inShape, func(d int64) bool { return d <= 0 }) {
			return fmt.Errorf("input shape %v must be non-empty and positive", inShape)
		}
		if r := len(declared.GetDim()); r > 0 && r != len(inShape) {
			return fmt.Errorf("input shape %v has rank %d, input %q has rank %d", inShape, len(inShape), name, r)
		}
		s.dims[name] = known(inShape)
	}
	if first {
		return errors.New("model has no graph input")
	}
	return nil
}

// staticShape is a declared shape whose dimensions are all known numbers.
func staticShape(sh *onnxpb.TensorShapeProto) ([]int64, bool) {
	if sh == nil {
		return nil, false
	}
	d := []int64{}
	for _, dim := range sh.GetDim() {
		if dim.GetDimValue() <= 0 {
			return nil, false
		}
		d = append(d, dim.GetDimValue())
	}
	return d, true
}

// node is a node under inference, its inputs padded so that optional ones
// read as "" (no shape, no value).
type node struct {
	*onnxpb.NodeProto
	op    string
	in    []string // padded with ""
	nIn   int      // the number of inputs the node really has
	out   []string
	x     []int64 // the first input's shape
	opset int64
}

// shapeRule infers the shapes (and small values) of a node's outputs.
type shapeRule func(s *Shapes, n *node)

// shapeRules maps each operator shape inference knows to its rule; each
// operator family keeps its own table, in its own file.
var shapeRules = mergeRules(windowedRules, linearRules, elementwiseRules, tensorRules, sliceRules, constRules)

func mergeRules(families ...map[string]shapeRule) map[string]shapeRule {
	all := map[string]shapeRule{}
	for _, family := range families {
		for op, r := range family {
			all[op] = r
		}
	}
	return all
}

// infer sets the shapes (and small values) of n's outputs when it can.
func (s *Shapes) infer(p *onnxpb.NodeProto, opset int64) {
	rule := shapeRules[p.GetOpType()]
	if rule == nil || len(p.GetOutput()) == 0 || !IsDefaultDomain(p.GetDomain()) {
		return
	}
	in := append(slices.Clone(p.GetInput()), "", "", "", "", "")
	rule(s, &node{NodeProto: p, op: p.GetOpType(), in: in, nIn: len(p.GetInput()),
		out: p.GetOutput(), x: s.dims[in[0]], opset: opset})
}

// set records d as name's shape unless name is absent or d unknown.
func (s *Shapes) set(name string, d []int64) {
	if name != "" && d != nil {
		s.dims[name] = d
	}
}

// passInts gives output out the integer values of input in, for operators
// that keep values and only change the shape.
func (s *Shapes) passInts(in, out string) {
	if v, ok := s.ints[in]; ok {
		s.ints[out] = v
	}
}

// known copies d into a non-nil slice: nil means "unknown" to Shapes, an
// empty shape is a scalar.
func known(d []int64) []int64 { return append(make([]int64, 0, len(d)), d...) }

// prod is the product of d, the element count of a tensor of shape d.
func prod(d []int64) int64 {
	p := int64(1)
	for _, x := range d {
		p *= x
	}
	return p
}

// normAxis turns a possibly negative axis of a rank-dimensional tensor into
// its index; false when it is out of range.
func normAxis(axis int64, rank int) (int64, bool) {
	if axis < 0 {
		axis += int64(rank)
	}
	return axis, axis >= 0 && axis < int64(rank)
}
