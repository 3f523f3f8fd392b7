package distill

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// region is a maximal connected part of the student whose tensors differ
// from the teacher's (pruned channels): it reads teacher tensors (inputs)
// and must reproduce teacher tensors (outputs), with everything in between
// free to differ.
type region struct {
	nodes   []string // node names, in graph order
	inputs  []string // tensors it reads that it does not produce
	outputs []string // anchors it produces
}

// plan is what Distill learns from the two graphs before training.
type plan struct {
	input   string  // the image input's name
	inShape []int64 // its shape at batch 1, [1 C H W]
	regions []region
	heads   []string // tensors the end-to-end loss matches
	// detection is how HeadLossDetection matches each of heads.
	detection []headTerm
	anchors   map[string]bool
}

// folded returns a copy of m with BatchNormalization folded into the
// Convs, as train.Build does, so tensor names agree with the trained graph.
func folded(m *onnxpb.ModelProto, role string) (*onnxpb.ModelProto, error) {
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("%s model has no graph", role)
	}
	c := proto.Clone(m).(*onnxpb.ModelProto)
	if _, err := onnx.FoldBatchNorm(c); err != nil {
		return nil, fmt.Errorf("%s: fold BatchNormalization: %w", role, err)
	}
	return c, nil
}

// imageShape is the teacher's image input name and its shape at batch 1;
// the channel and spatial sizes must be static.
func imageShape(m *onnxpb.ModelProto) (string, []int64, error) {
	vi, err := onnx.ImageInput(m)
	if err != nil {
		return "", nil, fmt.Errorf("teacher: %w", err)
	}
	dims := declaredDims(vi)
	if len(dims) != 4 {
		return "", nil, fmt.Errorf("teacher input %q has shape %v, want [N C H W]", vi.GetName(), dims)
	}
	shape := []int64{1, dims[1], dims[2], dims[3]}
	for _, d := range shape[1:] {
		if d <= 0 {
			return "", nil, fmt.Errorf("teacher input %q has shape %v: channels, height and width must be fixed", vi.GetName(), dims)
		}
	}
	return vi.GetName(), shape, nil
}

// declaredDims are a value's declared dimensions, -1 for one that is
// symbolic or missing.
func declaredDims(vi *onnxpb.ValueInfoProto) []int64 {
	var dims []int64
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		if v := d.GetDimValue(); v > 0 {
			dims = append(dims, v)
		} else {
			dims = append(dims, -1)
		}
	}
	return dims
}

// graphInputs are the graph inputs that are not initializers.
func graphInputs(m *onnxpb.ModelProto) []*onnxpb.ValueInfoProto {
	inits := map[string]bool{}
	for _, t := range m.GetGraph().GetInitializer() {
		inits[t.GetName()] = true
	}
	var ins []*onnxpb.ValueInfoProto
	for _, vi := range m.GetGraph().GetInput() {
		if !inits[vi.GetName()] {
			ins = append(ins, vi)
		}
	}
	return ins
}

// makePlan checks that student can learn from teacher (same inputs, same
// outputs and output shapes) and finds the anchors, the differing regions
// and the head tensors. Both models must be BatchNorm-folded.
func makePlan(teacher, student *onnxpb.ModelProto) (*plan, error) {
	input, inShape, err := imageShape(teacher)
	if err != nil {
		return nil, err
	}
	if err := sameInputs(teacher, student); err != nil {
		return nil, err
	}
	ts, err := onnx.InferShapes(teacher, inShape)
	if err != nil {
		return nil, fmt.Errorf("teacher: %w", err)
	}
	ss, err := onnx.InferShapes(student, inShape)
	if err != nil {
		return nil, fmt.Errorf("student: %w", err)
	}
	if err := sameOutputs(teacher, student, ts, ss); err != nil {
		return nil, err
	}
	p := &plan{input: input, inShape: inShape, anchors: map[string]bool{}}
	data := dataTensors(student)
	differs := map[string]bool{}
	for t := range data {
		a, b := ts.Shape(t), ss.Shape(t)
		if a != nil && b != nil && slices.Equal(a, b) {
			p.anchors[t] = true
		} else {
			differs[t] = true
		}
	}
	p.regions, err = findRegions(student, data, differs, p.anchors)
	if err != nil {
		return nil, err
	}
	p.heads = headTensors(student, data, p.anchors)
	p.detection = detectionTerms(student, p.heads, ss)
	return p, nil
}

// sameInputs requires the same graph inputs with the same declared shapes.
func sameInputs(teacher, student *onnxpb.ModelProto) error {
	ti, si := graphInputs(teacher), graphInputs(student)
	if len(ti) != len(si) {
		return fmt.Errorf("student has %d inputs, teacher %d", len(si), len(ti))
	}
	for i, t := range ti {
		s := si[i]
		if s.GetName() != t.GetName() {
			return fmt.Errorf("student input %d is %q, teacher's is %q", i, s.GetName(), t.GetName())
		}
		if a, b := declaredDims(s), declaredDims(t); !slices.Equal(a, b) {
			return fmt.Errorf("student input %q is %v, teacher's is %v", s.GetName(), a, b)
		}
	}
	return nil
}

// sameOutputs requires the same graph outputs with the same inferred shapes.
func sameOutputs(teacher, student *onnxpb.ModelProto, ts, ss *onnx.Shapes) error {
	to, so := teacher.GetGraph().GetOutput(), student.GetGraph().GetOutput()
	if len(to) != len(so) {
		return fmt.Errorf("student has %d outputs, teacher %d", len(so), len(to))
	}
	for i, t := range to {
		name := t.GetName()
		if so[i].GetName() != name {
			return fmt.Errorf("student output %d is %q, teacher's is %q", i, so[i].GetName(), name)
		}
		a, b := ss.Shape(name), ts.Shape(name)
		switch {
		case b == nil:
			return fmt.Errorf("teacher output %q: shape cannot be inferred", name)
		case a == nil:
			return fmt.Errorf("student output %q: shape cannot be inferred (teacher's is %v)", name, b)
		case !slices.Equal(a, b):
			return fmt.Errorf("student output %q is %v, teacher's is %v", name, a, b)
		}
	}
	return nil
}

// dataTensors are the tensors computed from the image input: the input
// and every output of a node reading one, except shape arithmetic (the
// outputs of Shape and of nodes fed only by it or by constants).
func dataTensors(m *onnxpb.ModelProto) map[string]bool {
	data := map[string]bool{}
	for _, vi := range graphInputs(m) {
		data[vi.GetName()] = true
	}
	order, err := onnx.NewGraph(m).TopoSort()
	if err != nil {
		order = m.GetGraph().GetNode() // makePlan's InferShapes already sorted it
	}
	for _, n := range order {
		if n.GetOpType() == "Shape" {
			continue
		}
		if slices.ContainsFunc(n.GetInput(), func(t string) bool { return data[t] }) {
			for _, o := range n.GetOutput() {
				if o != "" {
					data[o] = true
				}
			}
		}
	}
	return data
}

// findRegions groups the nodes that produce or read a differing tensor
// into connected regions (joined by the differing tensors they share).
func findRegions(m *onnxpb.ModelProto, data, differs, anchors map[string]bool) ([]region, error) {
	nodes := m.GetGraph().GetNode()
	parent := make([]int, len(nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	touch := map[string]int{} // differing tensor → first node touching it
	in := make([]bool, len(nodes))
	for i, n := range nodes {
		for _, t := range slices.Concat(n.GetInput(), n.GetOutput()) {
			if !differs[t] {
				continue
			}
			in[i] = true
			if j, ok := touch[t]; ok {
				parent[find(i)] = find(j)
			} else {
				touch[t] = i
			}
		}
	}
	inits := map[string]bool{}
	for _, t := range m.GetGraph().GetInitializer() {
		inits[t.GetName()] = true
	}
	byRoot := map[int]int{} // root → index in regions
	var regions []region
	var members [][]int
	for i := range nodes {
		if !in[i] {
			continue
		}
		r := find(i)
		k, ok := byRoot[r]
		if !ok {
			k = len(regions)
			byRoot[r] = k
			regions = append(regions, region{})
			members = append(members, nil)
		}
		members[k] = append(members[k], i)
	}
	var out []region
	for k := range regions {
		produced := map[string]bool{}
		for _, i := range members[k] {
			for _, o := range nodes[i].GetOutput() {
				produced[o] = true
			}
		}
		r := &regions[k]
		seen := map[string]bool{}
		for _, i := range members[k] {
			n := nodes[i]
			r.nodes = append(r.nodes, n.GetName())
			for _, t := range n.GetInput() {
				if t == "" || produced[t] || inits[t] || seen[t] {
					continue
				}
				seen[t] = true
				if data[t] && !anchors[t] {
					return nil, fmt.Errorf("student node %q reads %q, whose shape differs from the teacher's, but it is not produced in its region", n.GetName(), t)
				}
				r.inputs = append(r.inputs, t)
			}
			for _, o := range n.GetOutput() {
				if anchors[o] {
					r.outputs = append(r.outputs, o)
				}
			}
		}
		if len(r.outputs) > 0 {
			out = append(out, *r)
		}
	}
	return out, nil
}

// headTensors are the outputs of the Convs from which a graph output is
// reachable without passing another Conv (a detection head's last
// convolutions, before any decoding), when all of them are anchors;
// otherwise, or without such Convs, the graph outputs.
func headTensors(m *onnxpb.ModelProto, data, anchors map[string]bool) []string {
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range m.GetGraph().GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	var outputs, heads []string
	for _, o := range m.GetGraph().GetOutput() {
		outputs = append(outputs, o.GetName())
	}
	seen := map[string]bool{}
	stack := slices.Clone(outputs)
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[t] || !data[t] {
			continue
		}
		seen[t] = true
		n := producer[t]
		if n == nil {
			continue
		}
		if n.GetOpType() == "Conv" {
			heads = append(heads, t)
			continue
		}
		stack = append(stack, n.GetInput()...)
	}
	if len(heads) == 0 || slices.ContainsFunc(heads, func(t string) bool { return !anchors[t] }) {
		return outputs
	}
	// Graph order, so reports and loss weights do not depend on the walk.
	var ordered []string
	for _, n := range m.GetGraph().GetNode() {
		for _, o := range n.GetOutput() {
			if slices.Contains(heads, o) {
				ordered = append(ordered, o)
			}
		}
	}
	return ordered
}
