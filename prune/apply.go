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
	gp := out.GetGraph()
	nodes := gp.GetNode()
	type key struct{ node, input int }
	edits := map[key]map[int][]int{} // axis -> indices to remove
	drop := map[string]bool{}        // tensors whose channel count changes
	for _, id := range ids {
		idx := remove[id]
		if len(idx) == 0 {
			continue
		}
		for _, u := range a.plans[id].uses {
			k := key{u.node, u.input}
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
	keys := make([]key, 0, len(edits))
	for k := range edits {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y key) int {
		if x.node != y.node {
			return x.node - y.node
		}
		return x.input - y.input
	})

	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range gp.GetInitializer() {
		if _, dup := inits[t.GetName()]; !dup {
			inits[t.GetName()] = t
		}
	}
	refs := map[string]int{} // how many node inputs and graph outputs read a tensor
	names := map[string]bool{}
	for _, n := range nodes {
		for _, in := range readNames(n) {
			refs[in]++
			names[in] = true
		}
		for _, o := range n.GetOutput() {
			names[o] = true
		}
	}
	for _, o := range gp.GetOutput() {
		refs[o.GetName()]++
	}
	for name := range inits {
		names[name] = true
	}
	inputs := map[string]*onnxpb.ValueInfoProto{}
	for _, vi := range gp.GetInput() {
		inputs[vi.GetName()] = vi
		names[vi.GetName()] = true
	}
	copied := map[string]bool{}

	for _, k := range keys {
		n := nodes[k.node]
		name := n.GetInput()[k.input]
		t := inits[name]
		if t == nil {
			return nil, fmt.Errorf("apply: %s %s: input %q is not an initializer", n.GetOpType(), nodeLabel(n, k.node), name)
		}
		v, err := onnx.TensorFloats(t)
		if err != nil {
			return nil, fmt.Errorf("apply: %s %s: %w", n.GetOpType(), nodeLabel(n, k.node), err)
		}
		nv, dims, err := cut(v, t.GetDims(), edits[k])
		if err != nil {
			return nil, fmt.Errorf("apply: %s %s: tensor %q: %w", n.GetOpType(), nodeLabel(n, k.node), name, err)
		}
		if refs[name] > 1 {
			// Shared with another reader: give this node its own copy.
			refs[name]--
			copied[name] = true
			nn := onnx.UniqueName(names, name+"_pruned")
			nt := onnx.Float32Tensor(nn, dims, nv)
			gp.Initializer = append(gp.Initializer, nt)
			inits[nn] = nt
			refs[nn] = 1
			n.Input[k.input] = nn
			if inputs[name] != nil { // IR < 4: initializers are graph inputs too
				vi := proto.Clone(inputs[name]).(*onnxpb.ValueInfoProto)
				vi.Name = proto.String(nn)
				setShape(vi, dims)
				gp.Input = append(gp.Input, vi)
				inputs[nn] = vi
			}
		} else {
			onnx.SetTensorFloats(t, nv)
			t.Dims = dims
			if vi := inputs[name]; vi != nil {
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
	}

	// Originals that every reader traded for a copy are dropped.
	gone := map[string]bool{}
	for name := range copied {
		still := false
		for _, n := range nodes {
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
	return out, nil
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
