package onnx

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// MinQDQOpset is the opset the QDQ output uses: QuantizeLinear and
// DequantizeLinear take a per-channel axis from opset 13 on.
const MinQDQOpset = 13

// UpgradeOpset raises the default-domain opset of m to MinQDQOpset when it is
// 11 or 12, rewriting the operators whose signature changed on the way
// (Squeeze, Unsqueeze, ReduceSum and Split take axes/split as an input from
// 13; Softmax, LogSoftmax and Hardmax work on one axis instead of a
// flattened 2-D view, so they are wrapped in Flatten/Reshape). It returns
// the opset the model had. Opsets below 11 are an error: their Resize,
// Pad and Clip differ too much to convert safely.
func UpgradeOpset(m *onnxpb.ModelProto) (from int64, err error) {
	g := NewGraph(m)
	from = g.Opset()
	if from >= MinQDQOpset {
		return from, nil
	}
	if from < 11 {
		return from, fmt.Errorf("model opset %d: ONNX Runtime's QDQ format needs opset %d with per-channel axes; edgedet converts opset 11 and 12 models — re-export the model with opset 13 or newer", from, MinQDQOpset)
	}
	gp := m.GetGraph()
	names := TensorNames(gp)
	var out []*onnxpb.NodeProto
	for _, n := range gp.GetNode() {
		if !IsDefaultDomain(n.GetDomain()) {
			out = append(out, n)
			continue
		}
		switch n.GetOpType() {
		case "Squeeze", "Unsqueeze", "ReduceSum":
			if a := popAttr(n, "axes"); a != nil {
				name := UniqueName(names, n.GetName()+"_axes")
				g.addInitializer(int64Vector(name, a.GetInts()))
				for len(n.Input) < 1 {
					n.Input = append(n.Input, "")
				}
				n.Input = append(n.Input[:1], name)
			}
			out = append(out, n)
		case "Split":
			if a := popAttr(n, "split"); a != nil {
				name := UniqueName(names, n.GetName()+"_split")
				g.addInitializer(int64Vector(name, a.GetInts()))
				n.Input = append(n.Input[:1], name)
			}
			out = append(out, n)
		case "Softmax", "LogSoftmax", "Hardmax":
			out = append(out, wrapCoerced2D(g, names, n)...)
		default:
			out = append(out, n)
		}
	}
	gp.Node = out
	for _, op := range m.GetOpsetImport() {
		if IsDefaultDomain(op.GetDomain()) {
			op.Version = proto.Int64(MinQDQOpset)
		}
	}
	if m.GetIrVersion() < 7 {
		m.IrVersion = proto.Int64(7)
	}
	return from, nil
}

// wrapCoerced2D rewrites an opset<13 Softmax-family node, which flattens its
// input to 2-D at axis (default 1) and normalises each row, as
// Flatten(axis) → op(axis=1) → Reshape(to the input's shape).
func wrapCoerced2D(g *Graph, names map[string]bool, n *onnxpb.NodeProto) []*onnxpb.NodeProto {
	axis := int64(1)
	if a := popAttr(n, "axis"); a != nil {
		axis = a.GetI()
	}
	in, outName := n.GetInput()[0], n.GetOutput()[0]
	base := n.GetName()
	if base == "" {
		base = outName
	}
	flat := UniqueName(names, base+"_flat")
	shape := UniqueName(names, base+"_shape")
	res := UniqueName(names, base+"_2d")
	flatten := &onnxpb.NodeProto{
		Name: proto.String(UniqueName(names, base+"_Flatten")), OpType: proto.String("Flatten"),
		Input: []string{in}, Output: []string{flat},
		Attribute: []*onnxpb.AttributeProto{IntAttr("axis", axis)},
	}
	shapeOf := &onnxpb.NodeProto{
		Name: proto.String(UniqueName(names, base+"_Shape")), OpType: proto.String("Shape"),
		Input: []string{in}, Output: []string{shape},
	}
	n.Input = []string{flat}
	n.Output = []string{res}
	n.Attribute = append(n.Attribute, IntAttr("axis", 1))
	reshape := &onnxpb.NodeProto{
		Name: proto.String(UniqueName(names, base+"_Reshape")), OpType: proto.String("Reshape"),
		Input: []string{res, shape}, Output: []string{outName},
	}
	return []*onnxpb.NodeProto{flatten, shapeOf, n, reshape}
}

func popAttr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for i, a := range n.GetAttribute() {
		if a.GetName() == name {
			n.Attribute = append(n.Attribute[:i], n.Attribute[i+1:]...)
			return a
		}
	}
	return nil
}

// IntAttr returns an int attribute named name.
func IntAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func int64Vector(name string, v []int64) *onnxpb.TensorProto {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		u := uint64(x)
		for b := 0; b < 8; b++ {
			raw[8*i+b] = byte(u >> (8 * b))
		}
	}
	return NewInitializer(name, onnxpb.TensorProto_INT64, []int64{int64(len(v))}, raw)
}
