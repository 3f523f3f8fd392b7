package quant

import (
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// elemTypes infers the element type of every tensor in the main graph by
// forward propagation: graph inputs and initializers are declared, Shape
// yields int64, Cast its `to`, Constant its value's type, comparisons bool,
// and every other op the type of its first typed input. It is enough to tell
// float activations from the integer shape arithmetic that YOLO exports carry
// (Shape → Gather → Concat → Reshape); unknown tensors are absent.
func elemTypes(g *onnx.Graph, order []*onnxpb.NodeProto) map[string]int32 {
	types := map[string]int32{}
	gp := g.Model.GetGraph()
	for _, vi := range gp.GetInput() {
		if tt := vi.GetType().GetTensorType(); tt != nil {
			types[vi.GetName()] = tt.GetElemType()
		}
	}
	for _, t := range gp.GetInitializer() {
		types[t.GetName()] = t.GetDataType()
	}
	for _, vi := range gp.GetValueInfo() {
		if tt := vi.GetType().GetTensorType(); tt != nil && tt.GetElemType() != 0 {
			types[vi.GetName()] = tt.GetElemType()
		}
	}
	i64 := int32(onnxpb.TensorProto_INT64)
	boolean := int32(onnxpb.TensorProto_BOOL)
	for _, n := range order {
		var t int32
		switch n.GetOpType() {
		case "Shape", "Size", "NonZero", "ArgMax", "ArgMin":
			t = i64
		case "Cast":
			for _, a := range n.GetAttribute() {
				if a.GetName() == "to" {
					t = int32(a.GetI())
				}
			}
		case "Constant", "ConstantOfShape":
			t = int32(onnxpb.TensorProto_FLOAT)
			for _, a := range n.GetAttribute() {
				if a.GetT() != nil {
					t = a.GetT().GetDataType()
				}
				switch a.GetName() {
				case "value_int", "value_ints":
					t = i64
				}
			}
		case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf":
			t = boolean
		case "Where":
			if len(n.GetInput()) > 1 {
				t = types[n.GetInput()[1]]
			}
		case "DequantizeLinear":
			t = int32(onnxpb.TensorProto_FLOAT)
		default:
			for _, in := range n.GetInput() {
				if v, ok := types[in]; ok && in != "" {
					t = v
					break
				}
			}
		}
		if t == 0 {
			continue
		}
		for i, out := range n.GetOutput() {
			if out == "" {
				continue
			}
			if i > 0 && (n.GetOpType() == "TopK" || n.GetOpType() == "MaxPool") {
				types[out] = i64 // indices
				continue
			}
			types[out] = t
		}
	}
	return types
}

func isFloat(types map[string]int32, name string) bool {
	return types[name] == int32(onnxpb.TensorProto_FLOAT)
}
