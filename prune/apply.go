package prune

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Apply returns a copy of m with channels removed; m is not changed.
// remove maps a group ID of a (which must be Analyze's result for m) to the
// group's channel indices to remove: sorted, distinct, in range, and
// leaving at least one channel. Groups not listed, or with no indices,
// keep all their channels; every listed group must be prunable.
//
// For each group it cuts the output rows (weight and bias) of the
// producing Convs, the rows of the depthwise Convs (whose group attribute
// follows) and BatchNormalization parameters the channels pass, and the
// input columns of the consuming Convs, at the group's offset behind
// Concats. A parameter tensor that other nodes share is copied rather than
// cut. value_info entries of every tensor whose channel count changes are
// dropped (ONNX Runtime infers them again) rather than rewritten.
func Apply(m *onnxpb.ModelProto, a *Analysis, remove map[int][]int) (*onnxpb.ModelProto, error) {
	if a == nil {
		return nil, errors.New("apply: no analysis")
	}
	if m.GetGraph() == nil {
		return nil, errors.New("apply: model has no graph")
	}
	if fingerprint(m) != a.fp {
		return nil, errors.New("apply: the analysis is not of this model (or the model changed since): analyse it again")
	}
	ids := make([]int, 0, len(remove))
	for id := range remove {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := checkRemove(a, id, remove[id]); err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
	}

	out := proto.Clone(m).(*onnxpb.ModelProto)
	edits, keys, drop := collectEdits(a, ids, remove)
	ix := indexGraph(out.GetGraph())
	for _, k := range keys {
		if err := ix.cut(k, edits[k]); err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
	}
	ix.dropStale(drop)
	return out, nil
}

// paramKey is one parameter input of a node.
type paramKey struct{ node, input int }

// collectEdits turns the groups' removals into per-parameter cuts (axis ->
// indices), in node order, and the tensors whose channel count changes.
func collectEdits(a *Analysis, ids []int, remove map[int][]int) (map[paramKey]map[int][]int, []paramKey, map[string]bool) {
	edits := map[paramKey]map[int][]int{}
	drop := map[string]bool{}
	for _, id := range ids {
		idx := remove[id]
		if len(idx) == 0 {
			continue
		}
		for _, u := range a.plans[id].uses {
			k := paramKey{u.node, u.input}
			if edits[k] == nil {
				edits[k] = map[int][]int{}
			}
			for _, i := range idx {
				edits[k][u.axis] = append(edits[k][u.axis], u.offset+i)
			}
		}
		for _, t := range a.plans[id].tensors {
			drop[t] = true
		}
	}
	keys := make([]paramKey, 0, len(edits))
	for k := range edits {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y paramKey) int {
		if x.node != y.node {
			return x.node - y.node
		}
		return x.input - y.input
	})
	return edits, keys, drop
}

// graphIndex is what Apply needs to know of the graph it edits.
type graphIndex struct {
	gp     *onnxpb.GraphProto
	inits  map[string]*onnxpb.TensorProto
	refs   map[string]int  // how many node inputs and graph outputs read a tensor
	names  map[string]bool // every name in use
	inputs map[string]*onnxpb.ValueInfoProto
	copied map[string]bool // initializers some reader traded for a copy
}

func indexGraph(gp *onnxpb.GraphProto) *graphIndex {
	ix := &graphIndex{gp: gp, inits: map[string]*onnxpb.TensorProto{}, refs: map[string]int{}, names: map[string]bool{},
		inputs: map[string]*onnxpb.ValueInfoProto{}, copied: map[string]bool{}}
	for _, t := range gp.GetInitializer() {
		if _, dup := ix.inits[t.GetName()]; !dup {
			ix.inits[t.GetName()] = t
		}
	}
	for _, n := range gp.GetNode() {
		for _, in := range readNames(n) {
			ix.refs[in]++
			ix.names[in] = true
		}
		for _, o := range n.GetOutput() {
			ix.names[o] = true
		}
	}
	for _, o := range gp.GetOutput() {
		ix.refs[o.GetName()]++
	}
	for name := range ix.inits {
		ix.names[name] = true
	}
	for _, vi := range gp.GetInput() {
		ix.inputs[vi.GetName()] = vi
		ix.names[vi.GetName()] = true
	}
	return ix
}

// cut removes the indices of edit (axis -> indices) from parameter k: in
// place, or in a copy when another reader shares the tensor.
func (ix *graphIndex) cut(k paramKey, edit map[int][]int) error {
	n := ix.gp.GetNode()[k.node]
	name := n.GetInput()[k.input]
	t := ix.inits[name]
	if t == nil {
		return fmt.Errorf("%s %s: input %q is not an initializer", n.GetOpType(), nodeLabel(n, k.node), name)
	}
	v, err := onnx.TensorFloats(t)
	if err != nil {
		return fmt.Errorf("%s %s: %w", n.GetOpType(), nodeLabel(n, k.node), err)
	}
	nv, dims, err := cut(v, t.GetDims(), edit)
	if err != nil {
		return fmt.Errorf("%s %s: tensor %q: %w", n.GetOpType(), nodeLabel(n, k.node), name, err)
	}
	if ix.refs[name] > 1 {
		ix.copyFor(n, k.input, name, dims, nv)
	} else {
		onnx.SetTensorFloats(t, nv)
		t.Dims = dims
		if vi := ix.inputs[name]; vi != nil {
			setShape(vi, dims)
		}
	}
	if n.GetOpType() == "Conv" && k.input == 1 && onnx.AttrInt(n, "group", 1) > 1 {
		// Depthwise: one group per channel.
		for _, at := range n.GetAttribute() {
			if at.GetName() == "group" {
				at.I = proto.Int64(dims[0])
			}
		}
	}
	return nil
}

// copyFor gives input i of n (the shared initializer name) its own cut copy.
func (ix *graphIndex) copyFor(n *onnxpb.NodeProto, i int, name string, dims []int64, values []float32) {
	gp := ix.gp
	ix.refs[name]--
	ix.copied[name] = true
	nn := onnx.UniqueName(ix.names, name+"_pruned")
	nt := onnx.Float32Tensor(nn, dims, values)
	gp.Initializer = append(gp.Initializer, nt)
	ix.inits[nn] = nt
	ix.refs[nn] = 1
	n.Input[i] = nn
	if ix.inputs[name] != nil { // IR < 4: initializers are graph inputs too
		vi := proto.Clone(ix.inputs[name]).(*onnxpb.ValueInfoProto)
		vi.Name = proto.String(nn)
		setShape(vi, dims)
		gp.Input = append(gp.Input, vi)
		ix.inputs[nn] = vi
	}
}

// dropStale removes the originals every reader traded for a copy, and the
// value_info of tensors whose channel count changed (drop).
func (ix *graphIndex) dropStale(drop map[string]bool) {
	gp := ix.gp
	gone := map[string]bool{}
	for name := range ix.copied {
		still := false
		for _, n := range gp.GetNode() {
			if slices.Contains(readNames(n), name) {
				still = true
				break
			}
		}
		if !still && !slices.ContainsFunc(gp.GetOutput(), func(o *onnxpb.ValueInfoProto) bool { return o.GetName() == name }) {
			gone[name] = true
		}
	}
	if len(gone) > 0 {
		gp.Initializer = slices.DeleteFunc(gp.Initializer, func(t *onnxpb.TensorProto) bool { return gone[t.GetName()] })
		gp.Input = slices.DeleteFunc(gp.Input, func(vi *onnxpb.ValueInfoProto) bool { return gone[vi.GetName()] })
	}
	gp.ValueInfo = slices.DeleteFunc(gp.ValueInfo, func(vi *onnxpb.ValueInfoProto) bool {
		return drop[vi.GetName()] || gone[vi.GetName()]
	})
}

// checkRemove validates the channels to remove from group id.
func checkRemove(a *Analysis, id int, idx []int) error {
	if id < 0 || id >= len(a.Groups) {
		return fmt.Errorf("no group %d (have %d)", id, len(a.Groups))
	}
	g := a.Groups[id]
	if len(idx) == 0 {
		return nil
	}
	if !g.Prunable {
		return fmt.Errorf("group %d (%s) is not prunable: %s", id, firstOf(g.Producers), g.Reason)
	}
	if len(idx) >= g.Channels {
		return fmt.Errorf("group %d (%s): removing %d of %d channels leaves none", id, firstOf(g.Producers), len(idx), g.Channels)
	}
	for k, i := range idx {
		if i < 0 || i >= g.Channels {
			return fmt.Errorf("group %d (%s): channel %d out of range [0,%d)", id, firstOf(g.Producers), i, g.Channels)
		}
		if k > 0 && i <= idx[k-1] {
			return fmt.Errorf("group %d (%s): channels must be sorted and distinct: %d after %d", id, firstOf(g.Producers), i, idx[k-1])
		}
	}
	return nil
}

func firstOf(names []string) string {
	if len(names) == 0 {
		return "no producer"
	}
	return names[0]
}

// cut removes, per axis (0 or 1), the listed indices of a tensor v of shape
// dims and returns the rest and its new dims.
func cut(v []float32, dims []int64, remove map[int][]int) ([]float32, []int64, error) {
	if len(dims) == 0 {
		return nil, nil, errors.New("scalar has no channel axis")
	}
	shape := [3]int{int(dims[0]), 1, 1} // axis 0, axis 1, the rest
	if len(dims) > 1 {
		shape[1] = int(dims[1])
		for _, d := range dims[2:] {
			shape[2] *= int(d)
		}
	}
	if len(v) != shape[0]*shape[1]*shape[2] {
		return nil, nil, fmt.Errorf("%d values for dims %v", len(v), dims)
	}
	var keep [2][]int
	for axis := 0; axis < 2; axis++ {
		gone := map[int]bool{}
		for _, i := range remove[axis] {
			if axis >= len(dims) || i < 0 || i >= shape[axis] {
				return nil, nil, fmt.Errorf("channel %d out of range on axis %d of dims %v", i, axis, dims)
			}
			gone[i] = true
		}
		for i := 0; i < shape[axis]; i++ {
			if !gone[i] {
				keep[axis] = append(keep[axis], i)
			}
		}
		if len(keep[axis]) == 0 {
			return nil, nil, fmt.Errorf("no channels left on axis %d of dims %v", axis, dims)
		}
	}
	out := make([]float32, 0, len(keep[0])*len(keep[1])*shape[2])
	for _, i := range keep[0] {
		for _, j := range keep[1] {
			start := (i*shape[1] + j) * shape[2]
			out = append(out, v[start:start+shape[2]]...)
		}
	}
	nd := slices.Clone(dims)
	nd[0] = int64(len(keep[0]))
	if len(nd) > 1 {
		nd[1] = int64(len(keep[1]))
	}
	return out, nd, nil
}

// setShape sets a tensor value_info's shape to dims.
func setShape(vi *onnxpb.ValueInfoProto, dims []int64) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return
	}
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{
			Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d},
		})
	}
	tt.Shape = shape
}
